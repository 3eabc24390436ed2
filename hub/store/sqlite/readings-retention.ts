/**
 * Retention of the hub store (issue 13 item 4), run by `HubStore` on a timer:
 *
 * - **raw readings** older than `retention.rawMs` — or, past the size cap
 *   `retention.maxBytes`, the oldest ones before their age — are first added
 *   to every rollup level still keeping their bucket, then deleted, in the
 *   same transaction. So each reading is either raw or inside the rollups,
 *   never both, and a history answer adds the two without counting anything
 *   twice (see {@link readRollups});
 * - **rollups** (`rollups(series, bucket_ms, ts, count, min, max, sum)`, good
 *   numeric readings only; booleans as 0/1) of level i are deleted before
 *   `boundary(i)`: `now − keepMs` rounded down to the next level's width, so
 *   the coarser level takes over exactly where the finer one stops;
 * - **readings stamped beyond the clock window** (stored before the hub
 *   refused them) are deleted, and `latest` of their points recomputed, so a
 *   far-future reading never pins `latest`;
 * - **events** older than `events.keepMs`, past `events.maxPerGateway` per
 *   gateway, and cleared alarms older than `events.keepMs`.
 *
 * Every delete runs in chunks of `retention.chunkRows` rows, one short
 * transaction each, queued on the store's connection like any commit: a
 * telemetry commit waits for one chunk at most, never for a whole run.
 * The PostgreSQL backend mirrors these rules (hub/store/postgres/).
 */
import type { SqliteDb } from '../../../lib/index.js';
import type { DataLimits } from '../../data-limits.js';
import { GOOD_NUMERIC } from '../model/readings.js';
import { levelBoundary, readRollupLevels, type BucketSums, type RollupSums } from '../model/rollups.js';

/** What one run dropped, by reason (readings for raw rows and last-level rollups; rows for events and alarms). */
export interface RetentionResult {
  /** Raw readings rolled up and deleted for their age. */
  age: number;
  /** Raw readings rolled up and deleted early for the size cap. */
  size: number;
  /** Readings stamped beyond the hub's clock window, deleted. */
  future: number;
  /** Readings that left the last rollup level (sum of the deleted buckets' counts). */
  rollupAge: number;
  events: number;
  alarms: number;
  /** Dedupe records of gateway epochs deleted past `maxEpochsPerGateway` (least recently used first). */
  epochs: number;
}

/** Series ids per retention transaction's index probe. */
const SERIES_PER_PROBE = 256;

/** Connections whose store is stopping: a pass ends at its next chunk boundary (a first pass over a large old store can take hours). */
const stopping = new WeakSet<SqliteDb>();

/** Thrown out of a pass that {@link stopRetention} ended. */
export class RetentionStopped extends Error {
  constructor() {
    super('retention pass stopped: the store is closing');
  }
}

/** Ends a running pass on `db` after its current chunk (the store calls it in stop()). */
export function stopRetention(db: SqliteDb): void {
  stopping.add(db);
}

/** Lets queued commits in between chunks; throws {@link RetentionStopped} when the store is closing. */
const tick = (db: SqliteDb): Promise<void> =>
  new Promise((resolve, reject) => setImmediate(() => (stopping.has(db) ? reject(new RetentionStopped()) : resolve())));

/** Runs one retention pass on `db` (the store's connection). */
export async function runRetention(db: SqliteDb, limits: DataLimits, now: number): Promise<RetentionResult> {
  const out: RetentionResult = { age: 0, size: 0, future: 0, rollupAge: 0, events: 0, alarms: 0, epochs: 0 };
  const series = (await db.all<{ id: number }>('SELECT id FROM series ORDER BY id')).map((r) => r.id);
  out.future = await dropFuture(db, series, now + limits.clock.futureMs, limits.retention.chunkRows);
  out.age = await retireRaw(db, limits, series, now - limits.retention.rawMs, now);
  if (limits.retention.maxBytes > 0) out.size = await enforceSize(db, limits, series, now);
  out.rollupAge = await dropRollups(db, limits, series, now);
  out.epochs = await dropEpochs(db, limits);
  const ev = await dropEvents(db, limits, now);
  out.events = ev.events;
  out.alarms = ev.alarms;
  return out;
}

/**
 * Rolls up and deletes raw readings with `ts < cutoff`, chunk by chunk.
 * Returns how many were deleted. The newest row (max rowid) is never
 * deleted: SQLite would hand its rowid out again, and the write-behind of
 * `latest` relies on rowids only growing (telemetry-commit.ts).
 */
async function retireRaw(db: SqliteDb, limits: DataLimits, series: number[], cutoff: number, now: number): Promise<number> {
  const { chunkRows, rollups } = limits.retention;
  const boundaries = rollups.map((_l, i) => levelBoundary(limits, i, now));
  let total = 0;
  for (let i = 0; i < series.length; i += SERIES_PER_PROBE) {
    const part = series.slice(i, i + SERIES_PER_PROBE);
    const marks = part.map(() => '?').join(',');
    for (;;) {
      const n = await db.exclusive(async () => {
        await db.run('BEGIN IMMEDIATE');
        try {
          await db.run('DELETE FROM temp.retire');
          const picked = await db.run(
            `INSERT INTO temp.retire(rid) SELECT rowid FROM readings WHERE series IN (${marks}) AND ts < ? AND rowid < (SELECT max(rowid) FROM readings) LIMIT ?`,
            [...part, cutoff, chunkRows],
          );
          if (picked.changes > 0) {
            for (let l = 0; l < rollups.length; l++) {
              const w = rollups[l]!.bucketMs;
              await db.run(
                `INSERT INTO rollups(series, bucket_ms, ts, count, min, max, sum)
                 SELECT series, ?, ts - ts % ? AS b, count(*), min(value), max(value), total(value) FROM readings
                 WHERE rowid IN (SELECT rid FROM temp.retire) AND ${GOOD_NUMERIC} AND ts - ts % ? >= ? GROUP BY series, b
                 ON CONFLICT(series, bucket_ms, ts) DO UPDATE SET count = count + excluded.count, min = min(min, excluded.min), max = max(max, excluded.max), sum = sum + excluded.sum`,
                [w, w, w, boundaries[l]],
              );
            }
            await db.run('DELETE FROM readings WHERE rowid IN (SELECT rid FROM temp.retire)');
          }
          await db.run('COMMIT');
          return picked.changes;
        } catch (err) {
          await db.run('ROLLBACK').catch(() => undefined);
          throw err;
        }
      });
      total += n;
      await tick(db);
      if (n < chunkRows) break;
    }
  }
  return total;
}

/** Bytes of the store's pages in use (free pages left by deletes are reused, so they do not count). */
export async function usedBytes(db: SqliteDb): Promise<number> {
  const pages = (await db.get<{ page_count: number }>('PRAGMA page_count'))?.page_count ?? 0;
  const free = (await db.get<{ freelist_count: number }>('PRAGMA freelist_count'))?.freelist_count ?? 0;
  const size = (await db.get<{ page_size: number }>('PRAGMA page_size'))?.page_size ?? 4096;
  return (pages - free) * size;
}

/**
 * Past the size cap: retires the oldest raw readings (rolled up like aged
 * ones) in growing slices of time from the oldest reading, until the store
 * is under the cap or no raw reading is left but the newest.
 */
async function enforceSize(db: SqliteDb, limits: DataLimits, series: number[], now: number): Promise<number> {
  let total = 0;
  let step = 0;
  for (let round = 0; round < 128 && (await usedBytes(db)) > limits.retention.maxBytes; round++) {
    // The oldest reading: one index probe per series instead of a scan of the table.
    const oldest = (await db.get<{ m: number | null }>('SELECT min((SELECT min(ts) FROM readings WHERE series = s.id)) AS m FROM series s'))?.m;
    if (oldest === null || oldest === undefined) break;
    // Slices of 1/64 of what is held (at least a minute): the cap is passed by a little, never by a lot.
    step = Math.max(step, 60_000, Math.ceil((now - oldest) / 64));
    const n = await retireRaw(db, limits, series, oldest + step, now);
    total += n;
    if (n === 0) step *= 2;
  }
  return total;
}

/** Deletes rollups past their level's boundary; returns the readings they held at the last level. */
async function dropRollups(db: SqliteDb, limits: DataLimits, series: number[], now: number): Promise<number> {
  const levels = limits.retention.rollups;
  const chunk = limits.retention.chunkRows;
  let lost = 0;
  for (let p = 0; p < series.length; p += SERIES_PER_PROBE) {
    const part = series.slice(p, p + SERIES_PER_PROBE);
    const marks = part.map(() => '?').join(',');
    for (let i = 0; i < levels.length; i++) {
      const b = levelBoundary(limits, i, now);
      const last = i === levels.length - 1;
      // Through the (series, bucket_ms, ts) key: an index probe per series, never a scan.
      const pick = `SELECT series, bucket_ms, ts, count FROM rollups WHERE series IN (${marks}) AND bucket_ms = ? AND ts < ? LIMIT ?`;
      const params = [...part, levels[i]!.bucketMs, b, chunk];
      for (;;) {
        const n = await db.exclusive(async () => {
          if (last) lost += (await db.get<{ n: number }>(`SELECT coalesce(sum(count), 0) AS n FROM (${pick})`, params))?.n ?? 0;
          return (await db.run(`DELETE FROM rollups WHERE (series, bucket_ms, ts) IN (SELECT series, bucket_ms, ts FROM (${pick}))`, params)).changes;
        });
        await tick(db);
        if (n < chunk) break;
      }
    }
  }
  return lost;
}

/**
 * Deletes readings stamped after `limit` (stored before the hub refused
 * them) and recomputes `latest` of their points from what is left.
 */
async function dropFuture(db: SqliteDb, series: number[], limit: number, chunkRows: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < series.length; i += SERIES_PER_PROBE) {
    const part = series.slice(i, i + SERIES_PER_PROBE);
    const marks = part.map(() => '?').join(',');
    const pinned = await db.all<{ series: number }>(`SELECT series FROM latest WHERE series IN (${marks}) AND ts > ?`, [...part, limit]);
    for (;;) {
      const n = await db.exclusive(async () => (await db.run(`DELETE FROM readings WHERE rowid IN (SELECT rowid FROM readings WHERE series IN (${marks}) AND ts > ? AND rowid < (SELECT max(rowid) FROM readings) LIMIT ?)`, [...part, limit, chunkRows])).changes);
      total += n;
      await tick(db);
      if (n < chunkRows) break;
    }
    if (pinned.length > 0) {
      const ids = pinned.map((p) => p.series);
      await db.exclusive(async () => {
        await db.run('BEGIN IMMEDIATE');
        try {
          const m = ids.map(() => '?').join(',');
          await db.run(`DELETE FROM latest WHERE series IN (${m}) AND ts > ?`, [...ids, limit]);
          await db.run(
            `INSERT INTO latest(series, ts, value, flags)
             SELECT r.series, r.ts, r.value, r.flags & 15 FROM readings r
             WHERE r.series IN (${m}) AND r.rowid = (SELECT rowid FROM readings x WHERE x.series = r.series AND x.ts <= ? ORDER BY x.ts DESC LIMIT 1)
             ON CONFLICT(series) DO NOTHING`,
            [...ids, limit],
          );
          await db.run('COMMIT');
        } catch (err) {
          await db.run('ROLLBACK').catch(() => undefined);
          throw err;
        }
      });
    }
  }
  return total;
}

/**
 * Dedupe records past `maxEpochsPerGateway` per gateway, least recently
 * updated first. A gateway opens a new epoch only when its outbox starts
 * afresh; one that invents an epoch per batch would otherwise grow
 * `seq_ranges` without bound. (Forgetting an old epoch only lets a replay of
 * that epoch be stored again.)
 */
async function dropEpochs(db: SqliteDb, limits: DataLimits): Promise<number> {
  const over = await db.all<{ gateway: string; n: number }>('SELECT gateway, count(*) AS n FROM seq_ranges GROUP BY gateway HAVING count(*) > ?', [limits.maxEpochsPerGateway]);
  let total = 0;
  for (const g of over) {
    const n = await db.exclusive(async () => (await db.run(
      'DELETE FROM seq_ranges WHERE (gateway, epoch) IN (SELECT gateway, epoch FROM seq_ranges WHERE gateway = ? ORDER BY updated_at LIMIT ?)',
      [g.gateway, Math.min(g.n - limits.maxEpochsPerGateway, limits.retention.chunkRows)],
    )).changes);
    total += n;
    await tick(db);
  }
  return total;
}

/** Events past their age or their gateway's count, and cleared alarms past the events' age. */
async function dropEvents(db: SqliteDb, limits: DataLimits, now: number): Promise<{ events: number; alarms: number }> {
  const { keepMs, maxPerGateway } = limits.events;
  const chunk = limits.retention.chunkRows;
  let events = 0;
  let alarms = 0;
  const edge = now - keepMs;
  for (;;) {
    const n = await db.exclusive(async () => (await db.run('DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE ts < ? LIMIT ?)', [edge, chunk])).changes);
    events += n;
    await tick(db);
    if (n < chunk) break;
  }
  // Per gateway: counted from the (gateway, ts) index.
  const over = await db.all<{ gateway: string; n: number }>('SELECT gateway, count(*) AS n FROM events GROUP BY gateway HAVING count(*) > ?', [maxPerGateway]);
  for (const g of over) {
    let excess = g.n - maxPerGateway;
    while (excess > 0) {
      const take = Math.min(excess, chunk);
      const n = await db.exclusive(async () => (await db.run('DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE gateway = ? ORDER BY ts LIMIT ?)', [g.gateway, take])).changes);
      events += n;
      excess -= take;
      await tick(db);
      if (n === 0) break;
    }
  }
  for (;;) {
    const n = await db.exclusive(async () => (await db.run('DELETE FROM alarms WHERE n IN (SELECT n FROM alarms WHERE cleared_at IS NOT NULL AND cleared_at < ? LIMIT ?)', [edge, chunk])).changes);
    alarms += n;
    await tick(db);
    if (n < chunk) break;
  }
  // Alarm history per gateway: a point flapping on and off adds a row per raise (cleared ones go oldest first; active ones stay).
  const busy = await db.all<{ gateway: string; n: number }>('SELECT gateway, count(*) AS n FROM alarms GROUP BY gateway HAVING count(*) > ?', [maxPerGateway]);
  for (const g of busy) {
    const n = await db.exclusive(async () => (await db.run(
      'DELETE FROM alarms WHERE n IN (SELECT n FROM alarms WHERE gateway = ? AND cleared_at IS NOT NULL ORDER BY raised_at LIMIT ?)',
      [g.gateway, Math.min(g.n - maxPerGateway, chunk)],
    )).changes);
    alarms += n;
    await tick(db);
  }
  return { events, alarms };
}

/** Adds the rollups of one point to `into` (see {@link readRollupLevels}), read from this store's `rollups` table. */
export function readRollups(db: SqliteDb, limits: DataLimits, seriesId: number, q: { from: number; to: number; bucketMs: number }, now: number, into: Map<number, BucketSums>): Promise<void> {
  return readRollupLevels(limits.retention.rollups, q, now, into, (w, lo, hi) => db.all<RollupSums>(
    `SELECT CAST((ts - ?) / ? AS INTEGER) AS b, sum(count) AS n, min(min) AS mn, max(max) AS mx, total(sum) AS s FROM rollups
     WHERE series = ? AND bucket_ms = ? AND ts >= ? AND ts <= ? GROUP BY b`,
    [q.from, q.bucketMs, seriesId, w, lo, hi],
  ));
}
