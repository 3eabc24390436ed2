/**
 * The audit log: who did what, to what, when, from where, and how it ended.
 * Every state-changing API call and every identity change made over MQTT
 * (provisioning) or on the hub machine (CLI) writes one row before its
 * answer goes out. Rows are never updated or deleted by the hub.
 *
 * Tamper-evident: each row carries `hash = sha256(previous row's hash ‖ the
 * row's own fields)`, so changing or removing any row breaks the chain from
 * there on, and {@link AuditLog.verify} names the first row that no longer
 * fits. Removing the newest rows leaves a shorter chain that still fits:
 * that is caught only against a head (`n`, `hash`) kept elsewhere, which is
 * why verify returns the head and the hub logs it at start. Someone who can
 * rewrite the whole file can rebuild the whole chain; the chain makes
 * silent edits by a hand, a bug or a restored backup visible, it is not a
 * signature.
 *
 * This file is the SQLite backend of the audit port (`AuditLog`, in
 * registry.sqlite) and holds what both backends share: the row hash, the
 * listing filter and the verification walk. The PostgreSQL backend is
 * hub/store/postgres/pg-audit.ts; chains written by either verify alike.
 */
import { createHash } from 'node:crypto';
import type { SqliteDb } from '../../../lib/index.js';
import type { RegistryDb } from './registry-db.js';
import { type AuditEntry, auditEntry, auditListFilter, type AuditQuery, type AuditRecord, type AuditRow, auditRow, type AuditVerification, chainHash, GENESIS, verifyAuditChain } from '../model/audit.js';

/**
 * Gives every row without a hash (written before the chain existed) its
 * chain hash, in order; at start, in one transaction. Returns how many.
 */
export async function sealAuditRows(db: SqliteDb): Promise<number> {
  const open = await db.get<{ n: number }>('SELECT count(*) AS n FROM audit WHERE hash IS NULL');
  if (!open?.n) return 0;
  await db.exec('BEGIN IMMEDIATE');
  try {
    let prev = GENESIS;
    let after = 0;
    for (;;) {
      const rows = await db.all<AuditRow>('SELECT * FROM audit WHERE n > ? ORDER BY n LIMIT 1000', [after]);
      if (rows.length === 0) break;
      for (const r of rows) {
        const h = r.hash ?? chainHash(prev, r);
        if (r.hash === null) await db.run('UPDATE audit SET hash = ? WHERE n = ?', [h, r.n]);
        prev = h;
        after = r.n;
      }
    }
    await db.exec('COMMIT');
  } catch (err) {
    await db.exec('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return open.n;
}

/**
 * Appends one entry inside the caller's write transaction (AuditLog.record,
 * and claim redemption, whose audit entry commits with it). The predecessor
 * is read in the same transaction, so a CLI process on the hub machine
 * writing to the same file cannot fork the chain.
 */
export async function appendAuditRow(db: SqliteDb, e: AuditRecord, ts: number): Promise<void> {
  const last = await db.get<{ n: number; hash: string | null }>('SELECT n, hash FROM audit ORDER BY n DESC LIMIT 1');
  const row = auditRow(e, (last?.n ?? 0) + 1, ts);
  const hash = chainHash(last?.hash ?? GENESIS, row);
  await db.run('INSERT INTO audit(n, ts, actor, action, target, outcome, source, detail, hash) VALUES (?,?,?,?,?,?,?,?,?)', [
    row.n, row.ts, row.actor, row.action, row.target, row.outcome, row.source, row.detail, hash,
  ]);
}

/** Append-only, hash-chained audit rows in the registry database. */
export class AuditLog {
  constructor(private readonly deps: { db: RegistryDb }) {}

  /**
   * Appends one entry; resolves once it is committed. The predecessor is read
   * inside the same write transaction, so a CLI process on the hub machine
   * writing to the same file cannot fork the chain.
   */
  async record(e: AuditRecord): Promise<void> {
    const db = this.deps.db.db;
    await db.transaction(() => appendAuditRow(db, e, this.deps.db.clock()));
  }

  /** Newest first, optionally filtered by actor, action prefix or time. */
  async list(q: AuditQuery = {}): Promise<AuditEntry[]> {
    const { where, params } = auditListFilter(q, () => '?');
    const rows = await this.deps.db.db.all<AuditRow>(`SELECT * FROM audit ${where} ORDER BY n DESC LIMIT ?`, [...params, q.limit ?? 100]);
    return rows.map(auditEntry);
  }

  /**
   * Walks the whole chain from the first entry; stops at the first entry that
   * does not fit. With `expect` (a head recorded earlier), also checks that
   * this entry is still there with the same hash.
   */
  verify(expect?: { n: number; hash: string }): Promise<AuditVerification> {
    const db = this.deps.db.db;
    return verifyAuditChain((from) => db.all<AuditRow>('SELECT * FROM audit WHERE n >= ? ORDER BY n LIMIT 2000', [from]), expect);
  }
}

