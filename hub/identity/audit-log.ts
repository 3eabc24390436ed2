/**
 * The audit log: who did what, to what, when, from where, and how it ended.
 * Every state-changing API call and every identity change made over MQTT
 * (provisioning) or on the hub machine (CLI) writes one row before its
 * answer goes out. Rows are never updated or deleted by the hub.
 */
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
}

/** What a caller records. */
export type AuditRecord = Omit<AuditEntry, 'n' | 'ts' | 'target' | 'source' | 'detail'> & { target?: string | null; source?: string | null; detail?: Record<string, unknown> | null };

/** Append-only audit rows in the registry database. */
export class AuditLog {
  constructor(private readonly deps: { db: RegistryDb }) {}

  /** Appends one entry; resolves once it is committed. */
  async record(e: AuditRecord): Promise<void> {
    const db = this.deps.db.db;
    await db.exclusive(() =>
      db.run('INSERT INTO audit(ts, actor, action, target, outcome, source, detail) VALUES (?,?,?,?,?,?,?)', [
        this.deps.db.clock(), e.actor, e.action, e.target ?? null, e.outcome, e.source ?? null, e.detail ? JSON.stringify(e.detail) : null,
      ]),
    );
  }

  /** Newest first, optionally filtered by actor, action prefix or time. */
  async list(q: { actor?: string; action?: string; since?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.actor !== undefined) {
      where.push('actor = ?');
      params.push(q.actor);
    }
    if (q.action !== undefined) {
      where.push("action LIKE ? ESCAPE '\\'");
      params.push(`${q.action.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    }
    if (q.since !== undefined) {
      where.push('ts >= ?');
      params.push(q.since);
    }
    params.push(q.limit ?? 100);
    const rows = await this.deps.db.db.all<Record<string, unknown>>(`SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY n DESC LIMIT ?`, params);
    return rows.map((r) => ({
      n: Number(r.n), ts: Number(r.ts), actor: String(r.actor), action: String(r.action), target: r.target === null ? null : String(r.target),
      outcome: r.outcome as AuditEntry['outcome'], source: r.source === null ? null : String(r.source), detail: r.detail === null ? null : (JSON.parse(String(r.detail)) as Record<string, unknown>),
    }));
  }
}
