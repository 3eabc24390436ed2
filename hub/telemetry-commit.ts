/**
 * One group commit of telemetry batches, and the state it keeps between
 * commits: the series ids it has seen, and the newest reading per series and
 * gateway last-seen times not yet written to `latest` / `gateways`.
 *
 * Why `latest` and `last_seen` are written behind (every second, and before
 * anything reads them) instead of in every group commit: at a thousand small
 * messages a second an upsert per commit cost about 15 % of the commit time,
 * for values that are only ever read by people. After a crash the store
 * recomputes them from the readings committed since the last write
 * ({@link recoverLatest}), so nothing is lost; `last_seen` may be up to a
 * second old.
 */
import type { Reading } from '../contract/index.js';
import { insertMany, type SqliteDb } from '../lib/index.js';
import { columnValue, packFlags } from './store-schema.js';

/** A telemetry batch to commit. */
export interface BatchToCommit {
  gateway: string;
  epoch: string;
  seq: number;
  historical: boolean;
  readings: Reading[];
}

interface LatestValue {
  ts: number;
  value: unknown;
  flags: number;
}

/** What the commit path remembers between transactions. */
export class TelemetryState {
  /** gateway \0 device \0 point → series id, for series known to be committed. */
  readonly series = new Map<string, number>();
  /** Newest committed reading per series not yet written to `latest`. */
  dirtyLatest = new Map<number, LatestValue>();
  /** Gateways with committed telemetry since `last_seen` was last written. */
  dirtySeen = new Map<string, number>();

  constructor(private readonly maxCachedSeries = 1_000_000) {}

  remember(key: string, id: number): void {
    if (this.series.size >= this.maxCachedSeries) this.series.delete(this.series.keys().next().value!);
    this.series.set(key, id);
  }

  mergeLatest(from: Map<number, LatestValue>): void {
    for (const [s, v] of from) {
      const prev = this.dirtyLatest.get(s);
      if (!prev || prev.ts <= v.ts) this.dirtyLatest.set(s, v);
    }
  }
}

const seriesKey = (gateway: string, device: string, point: string): string => `${gateway}\u0000${device}\u0000${point}`;

/**
 * Commits a group of batches in one transaction on `db` (the caller holds the
 * connection exclusively). Returns per batch whether it was stored or was a
 * replay. State is updated only after COMMIT succeeded.
 */
export async function commitTelemetryGroup(db: SqliteDb, state: TelemetryState, batches: BatchToCommit[], now: number): Promise<{ results: Array<'stored' | 'duplicate'>; readings: number }> {
  await db.run('BEGIN IMMEDIATE');
  try {
    const results = await dedupe(db, batches, now);
    // Series ids: from the cache, else looked up or created in this transaction (cached only after COMMIT).
    const created = new Map<string, number>();
    const missing = new Map<string, [string, string, string]>();
    for (let i = 0; i < batches.length; i++) {
      if (results[i] !== 'stored') continue;
      const b = batches[i]!;
      for (const r of b.readings) {
        const k = seriesKey(b.gateway, r.device, r.point);
        if (!state.series.has(k)) missing.set(k, [b.gateway, r.device, r.point]);
      }
    }
    if (missing.size > 0) await resolveSeries(db, missing, created);
    const rows: Array<[number, number, unknown, number]> = [];
    const latest = new Map<number, LatestValue>();
    const seen = new Set<string>();
    for (let i = 0; i < batches.length; i++) {
      if (results[i] !== 'stored') continue;
      const b = batches[i]!;
      seen.add(b.gateway);
      for (const r of b.readings) {
        const k = seriesKey(b.gateway, r.device, r.point);
        const s = state.series.get(k) ?? created.get(k)!;
        const value = columnValue(r.value);
        const flags = packFlags(r.value, r.quality, b.historical);
        rows.push([s, r.ts, value, flags]);
        const prev = latest.get(s);
        if (!prev || prev.ts <= r.ts) latest.set(s, { ts: r.ts, value, flags: flags & 15 });
      }
    }
    if (rows.length > 0) {
      // In index order: neighbouring index pages are touched together instead of at random.
      rows.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      await insertMany(db, 'INSERT INTO readings(series, ts, value, flags)', 4, rows, 2000);
    }
    await db.run('COMMIT');
    for (const [k, id] of created) state.remember(k, id);
    state.mergeLatest(latest);
    for (const gw of seen) state.dirtySeen.set(gw, now);
    return { results, readings: rows.length };
  } catch (err) {
    await db.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * One round trip for the whole group's dedupe: a multi-row INSERT OR IGNORE …
 * RETURNING names the batches that were new. A key seen twice in one group counts once.
 */
async function dedupe(db: SqliteDb, batches: BatchToCommit[], now: number): Promise<Array<'stored' | 'duplicate'>> {
  const key = (b: BatchToCommit): string => `${b.gateway}\u0000${b.epoch}\u0000${b.seq}`;
  const firstOf = new Map<string, number>();
  batches.forEach((b, i) => {
    if (!firstOf.has(key(b))) firstOf.set(key(b), i);
  });
  const candidates = [...firstOf.values()].map((i) => batches[i]!);
  const inserted = new Set<string>();
  for (let i = 0; i < candidates.length; i += 1000) {
    const part = candidates.slice(i, i + 1000);
    const ret = await db.all<{ gateway: string; epoch: string; seq: number }>(
      `INSERT OR IGNORE INTO batches(gateway, epoch, seq, received_at, count) VALUES ${part.map(() => '(?,?,?,?,?)').join(',')} RETURNING gateway, epoch, seq`,
      part.flatMap((b) => [b.gateway, b.epoch, b.seq, now, b.readings.length]),
    );
    for (const r of ret) inserted.add(`${r.gateway}\u0000${r.epoch}\u0000${r.seq}`);
  }
  return batches.map((b, i) => (firstOf.get(key(b)) === i && inserted.has(key(b)) ? 'stored' : 'duplicate'));
}

/** Finds or creates the series ids of `missing` (inside the caller's transaction) into `out`. */
async function resolveSeries(db: SqliteDb, missing: Map<string, [string, string, string]>, out: Map<string, number>): Promise<void> {
  const all = [...missing.values()];
  for (let i = 0; i < all.length; i += 1000) {
    const part = all.slice(i, i + 1000);
    const tuples = part.map(() => '(?,?,?)').join(',');
    await db.run(`INSERT OR IGNORE INTO series(gateway, device, point) VALUES ${tuples}`, part.flat());
    const got = await db.all<{ id: number; gateway: string; device: string; point: string }>(
      `SELECT id, gateway, device, point FROM series WHERE (gateway, device, point) IN (VALUES ${tuples})`,
      part.flat(),
    );
    for (const r of got) out.set(seriesKey(r.gateway, r.device, r.point), r.id);
  }
}

/**
 * Writes the pending newest-per-series values and gateway last-seen times, and
 * how far into `readings` they reach (for {@link recoverLatest}). The caller
 * holds the connection exclusively. On failure the pending values are kept.
 */
export async function flushLatest(db: SqliteDb, state: TelemetryState): Promise<void> {
  if (state.dirtyLatest.size === 0 && state.dirtySeen.size === 0) return;
  const latest = state.dirtyLatest;
  const seen = state.dirtySeen;
  state.dirtyLatest = new Map();
  state.dirtySeen = new Map();
  await db.run('BEGIN IMMEDIATE');
  try {
    const rows = [...latest].map(([s, v]) => [s, v.ts, v.value, v.flags]);
    for (let i = 0; i < rows.length; i += 2000) {
      const part = rows.slice(i, i + 2000);
      await db.run(
        `INSERT INTO latest(series, ts, value, flags) VALUES ${part.map(() => '(?,?,?,?)').join(',')}
         ON CONFLICT(series) DO UPDATE SET ts = excluded.ts, value = excluded.value, flags = excluded.flags WHERE excluded.ts >= latest.ts`,
        part.flat(),
      );
    }
    if (seen.size > 0) {
      await db.run(
        `INSERT INTO gateways(id, first_seen, last_seen) VALUES ${[...seen].map(() => '(?,?,?)').join(',')} ON CONFLICT(id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`,
        [...seen].flatMap(([gw, at]) => [gw, at, at]),
      );
    }
    await db.run("INSERT OR REPLACE INTO store_meta(key, value) VALUES ('latest_rowid', (SELECT coalesce(max(rowid), 0) FROM readings))");
    await db.run('COMMIT');
  } catch (err) {
    await db.run('ROLLBACK').catch(() => undefined);
    state.mergeLatest(latest);
    for (const [gw, at] of seen) if ((state.dirtySeen.get(gw) ?? 0) < at) state.dirtySeen.set(gw, at);
    throw err;
  }
}

/** At start: brings `latest` up to date with readings committed after its last write (a crash between writes). Returns how many readings that read. */
export async function recoverLatest(db: SqliteDb): Promise<number> {
  const from = (await db.get<{ value: number }>("SELECT value FROM store_meta WHERE key = 'latest_rowid'"))?.value ?? 0;
  const n = (await db.get<{ n: number }>('SELECT count(*) AS n FROM readings WHERE rowid > ?', [from]))?.n ?? 0;
  if (n === 0) return 0;
  await db.exec('BEGIN IMMEDIATE');
  try {
    await db.run(
      `INSERT INTO latest(series, ts, value, flags) SELECT series, ts, value, flags & 15 FROM readings WHERE rowid > ? ORDER BY rowid
       ON CONFLICT(series) DO UPDATE SET ts = excluded.ts, value = excluded.value, flags = excluded.flags WHERE excluded.ts >= latest.ts`,
      [from],
    );
    // Gateways seen in those readings (last_seen: their newest sample time, the best estimate left).
    await db.run(
      `INSERT INTO gateways(id, first_seen, last_seen) SELECT s.gateway, min(r.ts), max(r.ts) FROM readings r JOIN series s ON s.id = r.series WHERE r.rowid > ? GROUP BY s.gateway
       ON CONFLICT(id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`,
      [from],
    );
    await db.run("INSERT OR REPLACE INTO store_meta(key, value) VALUES ('latest_rowid', (SELECT coalesce(max(rowid), 0) FROM readings))");
    await db.exec('COMMIT');
  } catch (err) {
    await db.exec('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return n;
}
