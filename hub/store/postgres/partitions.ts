/**
 * Daily partitions of the PostgreSQL `readings` table (declarative RANGE
 * partitioning on `ts`, ms since the Unix epoch, UTC days).
 *
 * - The hub creates partitions ahead: at start and every hour for yesterday
 *   up to `aheadDays` after today, and on demand before a commit whose
 *   readings fall on a day within [today - backfillDays, today + aheadDays]
 *   that has none yet (a gateway draining a week-old backlog).
 * - Readings outside that window (a gateway with its clock in 1970 or 2099)
 *   go to `readings_default` instead of creating a partition per odd day.
 *   When a partition is later wanted for a day that already has rows in the
 *   default partition, they are moved in one transaction.
 * - Retention drops whole partitions (no row-by-row DELETE, no bloat, no
 *   vacuum debt); only the default partition and the dedupe record are
 *   trimmed by DELETE.
 * - Creation and dropping hold a transaction-level advisory lock, so hubs
 *   sharing the database never race on them.
 */
import type { Logger } from '../../../lib/index.js';
import type pg from 'pg';
import type { PgPool } from './pg-pool.js';

/**
 * Adds the rows of `table` matching `where` (parameters `params`, numbered
 * from $1) to the rollups, inside the transaction of `c` (see
 * pg-telemetry-store.ts).
 */
export type RollUp = (c: pg.PoolClient, table: string, where: string, params: unknown[]) => Promise<void>;

export const DAY_MS = 86_400_000;

/** UTC day number of a timestamp (ms). */
export const dayOf = (ts: number): number => Math.floor(ts / DAY_MS);

/** `readings_dYYYYMMDD` of a day number. */
export function partitionName(day: number): string {
  return `readings_d${new Date(day * DAY_MS).toISOString().slice(0, 10).replace(/-/g, '')}`;
}

/** Day number of a partition name, or null for another table. */
export function dayOfPartition(name: string): number | null {
  const m = /^readings_d(\d{4})(\d{2})(\d{2})$/.exec(name);
  return m ? dayOf(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
}

/** Settings of {@link Partitions}. */
export interface PartitionOptions {
  /** Days after today that get a partition ahead of time (default 2). */
  aheadDays?: number;
  /** Oldest day (before today) for which a commit creates a partition on demand (default 35). */
  backfillDays?: number;
  clock?: () => number;
}

/** What the hub knows of the partitions (one instance per store). */
export class Partitions {
  private readonly known = new Set<number>();
  private readonly ahead: number;
  private readonly backfill: number;
  private readonly clock: () => number;

  constructor(private readonly db: PgPool, private readonly logger: Logger, opts: PartitionOptions = {}) {
    this.ahead = opts.aheadDays ?? 2;
    this.backfill = opts.backfillDays ?? 35;
    this.clock = opts.clock ?? Date.now;
  }

  /** Day numbers of the existing partitions, ascending (read from the catalogue). */
  async list(): Promise<number[]> {
    const r = await this.db.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'readings'::regclass",
    );
    const days = r.rows.map((x) => dayOfPartition(x.name)).filter((d): d is number => d !== null).sort((a, b) => a - b);
    this.known.clear();
    for (const d of days) this.known.add(d);
    return days;
  }

  /** Creates the partitions from yesterday to `aheadDays` after today (start, and hourly). */
  async ensureAhead(): Promise<void> {
    if (this.known.size === 0) await this.list();
    const today = dayOf(this.clock());
    const want: number[] = [];
    for (let d = today - 1; d <= today + this.ahead; d++) want.push(d);
    await this.ensure(want);
  }

  /**
   * Before a commit: creates the partitions of these timestamps' days that
   * are missing and inside the window; the others' readings go to the default
   * partition. Cheap when every day is known (one Set lookup per distinct day).
   */
  async ensureFor(minTs: number, maxTs: number): Promise<void> {
    const today = dayOf(this.clock());
    const lo = Math.max(dayOf(minTs), today - this.backfill);
    const hi = Math.min(dayOf(maxTs), today + this.ahead);
    const missing: number[] = [];
    for (let d = lo; d <= hi; d++) if (!this.known.has(d)) missing.push(d);
    if (missing.length > 0) await this.ensure(missing);
  }

  private async ensure(days: number[]): Promise<void> {
    for (const day of days) {
      if (this.known.has(day)) continue;
      await this.create(day);
      this.known.add(day);
    }
  }

  /** Creates one day's partition, moving that day's rows out of the default partition if it holds any. */
  private async create(day: number): Promise<void> {
    const name = partitionName(day);
    const from = day * DAY_MS;
    const to = from + DAY_MS;
    await this.db.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`ioc-edge partitions ${this.db.schema}`]);
      if ((await c.query('SELECT to_regclass($1) AS t', [name])).rows[0]?.t) return; // another hub made it
      const stray = await c.query('SELECT 1 FROM readings_default WHERE ts >= $1 AND ts < $2 LIMIT 1', [from, to]);
      if (stray.rowCount === 0) {
        await c.query(`CREATE TABLE ${name} PARTITION OF readings FOR VALUES FROM (${from}) TO (${to})`);
        return;
      }
      // Rows of that day wait in the default partition: detach it, create the day, move them, attach it again.
      await c.query('ALTER TABLE readings DETACH PARTITION readings_default');
      await c.query(`CREATE TABLE ${name} PARTITION OF readings FOR VALUES FROM (${from}) TO (${to})`);
      const moved = await c.query('WITH m AS (DELETE FROM readings_default WHERE ts >= $1 AND ts < $2 RETURNING *) INSERT INTO readings SELECT * FROM m', [from, to]);
      await c.query('ALTER TABLE readings ATTACH PARTITION readings_default DEFAULT');
      this.logger.info({ partition: name, rows: moved.rowCount }, 'readings moved from the default partition into their day');
    });
  }

  /**
   * Retention: drops every partition that ends at or before `cutoff` (ms),
   * deletes older rows of the default partition and the dedupe records of
   * gateway epochs last committed to before it. Returns what went.
   */
  async dropBefore(cutoff: number, rollUp: RollUp = async () => undefined): Promise<{ partitions: string[]; rows: number; defaultRows: number; batches: number }> {
    const days = await this.list();
    const dropped: string[] = [];
    let rows = 0;
    for (const day of days) {
      if ((day + 1) * DAY_MS > cutoff) break;
      const name = partitionName(day);
      await this.db.transaction(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`ioc-edge partitions ${this.db.schema}`]);
        if (!(await c.query('SELECT to_regclass($1) AS t', [name])).rows[0]?.t) return;
        rows += Number((await c.query<{ n: number }>(`SELECT count(*) AS n FROM ${name}`)).rows[0]?.n ?? 0);
        await rollUp(c, name, 'true', []); // in the DROP's transaction: either raw or rolled up, never both
        await c.query(`DROP TABLE ${name}`);
      });
      this.known.delete(day);
      dropped.push(name);
    }
    const def = await this.db.transaction(async (c) => {
      await rollUp(c, 'readings_default', 'ts < $1', [cutoff]);
      return c.query('DELETE FROM readings_default WHERE ts < $1', [cutoff]);
    });
    // Dedupe records of gateway epochs not committed to since (schema-v7-seq-ranges.ts).
    const batches = await this.db.query('DELETE FROM batch_seqs WHERE updated_at < $1', [cutoff]);
    return { partitions: dropped, rows: rows + (def.rowCount ?? 0), defaultRows: def.rowCount ?? 0, batches: batches.rowCount ?? 0 };
  }
}
