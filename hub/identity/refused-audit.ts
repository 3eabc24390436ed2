/**
 * Audit of refused API calls, aggregated (issue 13 item 4). Every refused
 * or failed state-changing call is audited (api-auth.ts), but one row per
 * call let an outsider grow the registry without bound: 200 unauthenticated
 * requests with a 15 KB query grew it fivefold. Here a refusal is keyed by
 * (actor, source, action, outcome, status, code): the first of a key in a
 * window of `windowMs` is written at once, as before (so an operator sees
 * it at once); the others are only counted, and one summary row with the
 * count is written when the window ends. So each key costs at most two rows
 * per window whatever the rate, and the target (URL with its query) is cut
 * to `maxTargetChars`. Past `maxKeys` keys in one window, further sources
 * share one key with source `*`, so many addresses cannot multiply the
 * rows either. Successful calls are still one row each (they need a token).
 */
import type { Logger } from '../../lib/index.js';
import type { AuditPort } from '../store/state-ports.js';
import type { AuditRecord } from '../store/model/audit.js';

/** Settings of {@link RefusedCallAudit}. */
export interface RefusedAuditOptions {
  /** Aggregation window (ms, default 60,000). */
  windowMs?: number;
  /** Keys (sources × reasons) tracked per window before further sources share one (default 1,000). */
  maxKeys?: number;
  /** Characters of the target (URL and query) kept (default 256). */
  maxTargetChars?: number;
}

interface Pending {
  record: AuditRecord;
  since: number;
  count: number;
}

/** Cuts a target (URL) to `max` characters, marking the cut. */
export function truncateTarget(target: string | null | undefined, max = 256): string | null {
  if (target === null || target === undefined) return null;
  return target.length > max ? `${target.slice(0, max)}… (${target.length} chars)` : target;
}

/** Aggregates audit rows of refused calls per source and reason per window. */
export class RefusedCallAudit {
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly maxTargetChars: number;
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  /** Refused calls recorded, and rows written for them (for tests and metrics). */
  readonly counters = { refused: 0, rows: 0 };

  constructor(private readonly deps: { audit: AuditPort; logger: Logger; clock?: () => number } & RefusedAuditOptions) {
    this.windowMs = deps.windowMs ?? 60_000;
    this.maxKeys = deps.maxKeys ?? 1000;
    this.maxTargetChars = deps.maxTargetChars ?? 256;
  }

  private now(): number {
    return (this.deps.clock ?? Date.now)();
  }

  /** Starts the timer that writes the summaries of ended windows. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(false), Math.max(1000, Math.floor(this.windowMs / 2)));
    this.timer.unref();
  }

  /** Stops the timer and writes every pending summary. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush(true);
  }

  /**
   * Records a refused call: written now when it is the first of its key in
   * the window, else counted into the window's summary. Resolves once any
   * row it wrote is committed. Never rejects (a failed write is logged).
   */
  async refused(r: AuditRecord): Promise<void> {
    this.counters.refused++;
    const record: AuditRecord = { ...r, target: truncateTarget(r.target, this.maxTargetChars) };
    const now = this.now();
    let key = JSON.stringify([r.actor, r.source ?? null, r.action, r.outcome, r.detail?.status ?? null, r.detail?.code ?? null]);
    let p = this.pending.get(key);
    if (p && now - p.since >= this.windowMs) {
      await this.summarise(key, p);
      p = undefined;
    }
    if (!p && this.pending.size >= this.maxKeys) {
      key = JSON.stringify(['*', r.action, r.outcome]);
      p = this.pending.get(key);
      record.source = '*';
      record.actor = r.actor === 'unauthenticated' ? r.actor : '*';
    }
    if (p) {
      p.count++;
      p.record = record; // the summary names the latest call's target
      return;
    }
    this.pending.set(key, { record, since: now, count: 0 });
    await this.write(record);
  }

  /** Writes summaries of windows that ended (all of them with `all`). */
  async flush(all: boolean): Promise<void> {
    const now = this.now();
    for (const [key, p] of [...this.pending]) if (all || now - p.since >= this.windowMs) await this.summarise(key, p);
    await this.writing;
  }

  private async summarise(key: string, p: Pending): Promise<void> {
    this.pending.delete(key);
    if (p.count === 0) return;
    await this.write({
      ...p.record,
      detail: { ...p.record.detail, repeated: p.count, from: p.since, to: this.now(), note: `${p.count} more such calls in this window, aggregated into this row` },
    });
  }

  private write(record: AuditRecord): Promise<void> {
    this.counters.rows++;
    const w = this.writing.then(() => this.deps.audit.record(record)).catch((err: unknown) => this.deps.logger.error({ err }, 'audit write failed'));
    this.writing = w;
    return w;
  }
}
