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
import type { SqliteDb } from '../../lib/index.js';
import type { RegistryDb } from '../registry/registry-db.js';

/** One audit entry. `outcome` is `ok`, `denied` or `error`; `detail` never holds a secret. */
export interface AuditEntry {
  n: number;
  ts: number;
  actor: string;
  action: string;
  target: string | null;
  outcome: 'ok' | 'denied' | 'error';
  source: string | null;
  detail: Record<string, unknown> | null;
  /** Chain hash of this entry (hex sha256). */
  hash: string;
}

/** What a caller records. */
export type AuditRecord = Omit<AuditEntry, 'n' | 'ts' | 'target' | 'source' | 'detail' | 'hash'> & { target?: string | null; source?: string | null; detail?: Record<string, unknown> | null };

/** The result of checking the chain. */
export interface AuditVerification {
  ok: boolean;
  /** Entries checked. */
  entries: number;
  /** The newest entry: keep it elsewhere to detect removal of the newest entries later. */
  head: { n: number; hash: string } | null;
  /** The first entry that does not fit, and why. */
  firstBad?: { n: number; reason: string };
}

/** An audit row as both backends store it. */
export interface AuditRow {
  n: number;
  ts: number;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  source: string | null;
  detail: string | null;
  hash: string | null;
}

/** The hash before the first entry. */
export const GENESIS = '0'.repeat(64);

/** Chain hash of a row given its predecessor's (the stored detail text, exactly as stored). */
export function chainHash(prev: string, r: Omit<AuditRow, 'hash'>): string {
  return createHash('sha256').update(JSON.stringify([prev, r.n, r.ts, r.actor, r.action, r.target, r.outcome, r.source, r.detail])).digest('hex');
}

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

/** The row values of an entry as stored (detail as JSON text); `chainHash` covers exactly these. */
export function auditRow(e: AuditRecord, n: number, ts: number): Omit<AuditRow, 'hash'> {
  return { n, ts, actor: e.actor, action: e.action, target: e.target ?? null, outcome: e.outcome, source: e.source ?? null, detail: e.detail ? JSON.stringify(e.detail) : null };
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

/** Filters of an audit listing. */
export type AuditQuery = { actor?: string; action?: string; since?: number; limit?: number };

/** The WHERE clause (or '') and its parameters of a listing; `ph(i)` writes the i-th placeholder (1-based: `?` or `$i`). */
export function auditListFilter(q: AuditQuery, ph: (i: number) => string): { where: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.actor !== undefined) {
    params.push(q.actor);
    where.push(`actor = ${ph(params.length)}`);
  }
  if (q.action !== undefined) {
    params.push(`${q.action.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    where.push(`action LIKE ${ph(params.length)} ESCAPE '\\'`);
  }
  if (q.since !== undefined) {
    params.push(q.since);
    where.push(`ts >= ${ph(params.length)}`);
  }
  return { where: where.length ? `WHERE ${where.join(' AND ')}` : '', params };
}

/** A stored row as the API shows it. */
export function auditEntry(r: AuditRow): AuditEntry {
  return {
    n: Number(r.n), ts: Number(r.ts), actor: String(r.actor), action: String(r.action), target: r.target === null ? null : String(r.target),
    outcome: r.outcome as AuditEntry['outcome'], source: r.source === null ? null : String(r.source), detail: r.detail === null ? null : (JSON.parse(String(r.detail)) as Record<string, unknown>),
    hash: String(r.hash),
  };
}

/**
 * Checks a chain read page by page (`page(n)`: rows with number >= n in
 * order, any page size, [] at the end) — the same walk for every backend.
 */
export async function verifyAuditChain(page: (fromN: number) => Promise<AuditRow[]>, expect?: { n: number; hash: string }): Promise<AuditVerification> {
  let prev = GENESIS;
  let expectN = 1;
  let entries = 0;
  let head: AuditVerification['head'] = null;
  for (;;) {
    const rows = await page(expectN);
    if (rows.length === 0) {
      if (expect && expect.n >= expectN) return { ok: false, entries, head, firstBad: { n: expect.n, reason: `the log ends at entry ${expectN - 1}: entries up to the expected head ${expect.n} were removed` } };
      return { ok: true, entries, head };
    }
    for (const r of rows) {
      if (r.n !== expectN) return { ok: false, entries, head, firstBad: { n: r.n, reason: `entries ${expectN}…${r.n - 1} are missing` } };
      if (r.hash === null || r.hash !== chainHash(prev, r)) {
        return { ok: false, entries, head, firstBad: { n: r.n, reason: r.hash === null ? 'entry has no chain hash' : 'entry was changed, or an entry before it was' } };
      }
      if (expect && expect.n === r.n && expect.hash !== r.hash) return { ok: false, entries, head, firstBad: { n: r.n, reason: 'not the expected head: the log was rewritten from here or before' } };
      prev = r.hash;
      head = { n: r.n, hash: r.hash };
      entries++;
      expectN++;
    }
  }
}
