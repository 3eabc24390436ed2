/**
 * The audit chain as both store backends keep it: entries, rows, the chain hash, listing filters and the verification walk.
 */
import { createHash } from 'node:crypto';

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
/** The row values of an entry as stored (detail as JSON text); `chainHash` covers exactly these. */
export function auditRow(e: AuditRecord, n: number, ts: number): Omit<AuditRow, 'hash'> {
  return { n, ts, actor: e.actor, action: e.action, target: e.target ?? null, outcome: e.outcome, source: e.source ?? null, detail: e.detail ? JSON.stringify(e.detail) : null };
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
