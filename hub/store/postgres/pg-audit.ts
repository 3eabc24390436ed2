/**
 * The audit chain on PostgreSQL ({@link AuditPort}); the SQLite one is
 * hub/store/sqlite/audit-log.ts, whose hashing, listing filter and verification
 * walk this file reuses, so both backends chain entries identically (an
 * exported chain verifies after import).
 *
 * Appends from several hub processes take turns: each locks the single row
 * of `audit_chain` (`SELECT … FOR UPDATE`) before it reads the newest entry,
 * and holds it until COMMIT, so the next appender reads this entry as its
 * predecessor and the chain never forks. Under READ COMMITTED each statement
 * sees what committed before it started, which is what makes the read after
 * the lock current. `audit.n` is the primary key: a fork that slipped past
 * would fail on a duplicate key rather than be stored.
 */
import type pg from 'pg';
import { auditEntry, auditListFilter, auditRow, chainHash, GENESIS, verifyAuditChain, type AuditEntry, type AuditQuery, type AuditRecord, type AuditRow, type AuditVerification } from '../model/audit.js';
import type { AuditPort } from '../state-ports.js';
import type { PgPool } from './pg-pool.js';

/** Dependencies of the PostgreSQL state stores. */
export interface PgStateDeps {
  db: PgPool;
  /** Stamps rows (ms; default Date.now). */
  clock?: () => number;
}

/**
 * Appends one entry inside the caller's transaction (PgAudit.record, and
 * claim redemption, whose audit entry commits with it). Takes the chain lock:
 * call it last in a transaction that locks other rows, so locks are always
 * taken in one order.
 */
export async function appendAuditPg(c: pg.PoolClient, e: AuditRecord, ts: number): Promise<void> {
  await c.query('SELECT id FROM audit_chain WHERE id = 1 FOR UPDATE');
  const last = (await c.query<{ n: number; hash: string }>('SELECT n, hash FROM audit ORDER BY n DESC LIMIT 1')).rows[0];
  const row = auditRow(e, (last?.n ?? 0) + 1, ts);
  const hash = chainHash(last?.hash ?? GENESIS, row);
  await c.query('INSERT INTO audit(n, ts, actor, action, target, outcome, source, detail, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)', [
    row.n, row.ts, row.actor, row.action, row.target, row.outcome, row.source, row.detail, hash,
  ]);
}

/** Append-only, hash-chained audit rows in PostgreSQL. */
export class PgAudit implements AuditPort {
  private readonly clock: () => number;

  constructor(private readonly deps: PgStateDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  /** Appends one entry; resolves once it is committed. */
  async record(e: AuditRecord): Promise<void> {
    await this.deps.db.transaction((c) => appendAuditPg(c, e, this.clock()));
  }

  /** Newest first, optionally filtered by actor, action prefix or time. */
  async list(q: AuditQuery = {}): Promise<AuditEntry[]> {
    const { where, params } = auditListFilter(q, (i) => `$${i}`);
    const rows = await this.deps.db.query<AuditRow & pg.QueryResultRow>(`SELECT * FROM audit ${where} ORDER BY n DESC LIMIT $${params.length + 1}`, [...params, q.limit ?? 100]);
    return rows.rows.map(auditEntry);
  }

  /** Walks the whole chain (see AuditLog.verify). */
  verify(expect?: { n: number; hash: string }): Promise<AuditVerification> {
    return verifyAuditChain(async (from) => (await this.deps.db.query<AuditRow & pg.QueryResultRow>('SELECT * FROM audit WHERE n >= $1 ORDER BY n LIMIT 2000', [from])).rows, expect);
  }
}
