/**
 * One group commit of telemetry batches, and the state it keeps between
 * commits: the series ids it has seen, the committed batch seqs per gateway
 * epoch (the dedupe record, see seq-ranges.ts), and the newest reading per series and
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
import type { SqliteDb } from '../../../lib/index.js';
import { SeqRanges } from '../../seq-ranges.js';
import { columnValue, packFlags } from '../model/readings.js';
import type { BatchToCommit, CoalescedGatewayState } from '../model/telemetry.js';

interface LatestValue {
  ts: number;
  value: unknown;
  flags: number;
}

/** What the commit path remembers between transactions. */
export class TelemetryState {
  /** gateway \0 device \0 point → series id, for series known to be committed. */
  readonly series = new Map<string, number>();
  /** gateway \0 epoch → committed batch seqs, as stored in `seq_ranges`. */
  readonly ranges = new Map<string, SeqRanges>();
  /** Newest committed reading per series not yet written to `latest`. */
  dirtyLatest = new Map<number, LatestValue>();
  /** Gateways with committed telemetry since `last_seen` was last written. */
  dirtySeen = new Map<string, number>();
  /** Points (series) one gateway may create; readings of further new points are refused (issue 13). */
  maxSeriesPerGateway = Number.MAX_SAFE_INTEGER;
  /** Series stored per gateway, for gateways that created one since the start (read from disk on first need). */
  readonly seriesPerGateway = new Map<string, number>();
  /** Most seq ranges (gaps + 1) kept per gateway epoch; past it the lowest gaps are closed (seq-ranges.ts). */
  maxSeqRanges = 1000;
  /** Gaps closed that way since the start (for the log and tests). */
  gapsClosed = 0;

  constructor(private readonly maxCachedSeries = 1_000_000) {}

  remember(key: string, id: number): void {
    if (this.series.size >= this.maxCachedSeries) this.series.delete(this.series.keys().next().value!);
    this.series.set(key, id);
  }

  rememberRanges(key: string, set: SeqRanges): void {
    if (!this.ranges.has(key) && this.ranges.size >= this.maxCachedSeries) this.ranges.delete(this.ranges.keys().next().value!);
    this.ranges.set(key, set);
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
 * The group goes to SQLite as ONE bound JSON text, split by `jsonb_each` on
 * SQLite's thread, instead of five bound parameters per row: node-sqlite3
 * converts each bound parameter on the main thread (measured ~280 ns each,
 * 0.6 ms for a 430-row group), and the main thread is the one the broker
 * needs. Rows: `[kind, a, b, c, d]` into the `ingest` view, kind 0 = reading
 * (series, ts, value, flags) to stage, kind 2 = reading straight into
 * `readings`, kind 1 = seq ranges (gateway, epoch, ranges,
 * updated_at).
 *
 * Values must come back bit for bit, and SQLite's decimal-to-double parsing
 * is not correctly rounded (measured: ~1 in 10,000 random doubles is one ulp
 * off). So a number that is not a safe integer travels as its exact binary
 * form `[m, e, sign]` (v = m · 2^e, |m| < 2^53) and SQL rebuilds it with
 * `m * pow(2.0, e)`: an integer-to-double conversion and a multiplication by
 * a power of two, both exact. `-0` keeps its sign. Safe integers, strings,
 * booleans (0/1) and null travel as themselves.
 */
const INGEST_JSON = `INSERT INTO ingest(kind, a, b, c, d)
  SELECT value->>0, value->>1, value->>2,
    CASE json_type(value, '$[3]') WHEN 'array' THEN
      CASE WHEN value->>'$[3][0]' = 0 THEN (CASE WHEN value->>'$[3][2]' = 1 THEN -0.0 ELSE 0.0 END)
      ELSE (value->>'$[3][0]') * pow(2.0, value->>'$[3][1]') END
    ELSE value->>3 END,
    value->>4
  FROM jsonb_each(?)`;

/** Rows per statement: bounds the JSON text of one statement (a group larger than this is several statements in one transaction). */
const ROWS_PER_STATEMENT = 50_000;

const bits = new DataView(new ArrayBuffer(8));

/**
 * A column value as the JSON text {@link INGEST_JSON} rebuilds exactly. The
 * group's JSON is written as text directly, row by row, rather than built as
 * arrays for JSON.stringify: that was two arrays per reading on the broker's
 * thread.
 */
function exactJsonText(v: unknown): string {
  if (typeof v !== 'number') return JSON.stringify(v) ?? 'null';
  if (Number.isSafeInteger(v) && !Object.is(v, -0)) return String(v);
  if (!Number.isFinite(v)) return 'null'; // the contract allows only finite numbers; JSON.stringify would write null too
  bits.setFloat64(0, v);
  const hi = bits.getUint32(0);
  const lo = bits.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let m = (hi & 0xfffff) * 2 ** 32 + lo;
  let e = -1074;
  if (biased !== 0) {
    m += 2 ** 52;
    e = biased - 1075;
  }
  while (m !== 0 && m % 2 === 0) {
    m /= 2;
    e++;
  }
  const negative = hi >>> 31;
  return `[${negative ? -m : m},${e},${negative}]`;
}

/**
 * Commits a group of batches atomically on `db` (the caller holds the
 * connection exclusively). Returns per batch whether it was stored or was a
 * replay. State is updated only after the commit succeeded.
 *
 * A group of up to {@link ROWS_PER_STATEMENT} rows (every live group, and
 * backlog groups of up to ~25,000 readings) is one autocommit statement into
 * the `ingest` view, whose INSTEAD OF triggers write the readings and the
 * seq-range updates: one trip to SQLite's thread instead of four (BEGIN,
 * ranges, readings, COMMIT). Each trip waits for the main thread, which the
 * broker keeps busy: measured with the main thread 70 % busy, 17,800 →
 * 40,700 messages/s. Larger groups are several such statements inside
 * BEGIN … COMMIT.
 *
 * Readings go to `readings_staged` (kind 0), an unindexed table that only
 * grows at its end, unless `direct` (kind 2: straight into `readings` and its
 * (series, ts) index, in which case nothing may be staged). The caller
 * moves staged rows into `readings` in bulk (HubStore.mergeStaged). Why: a
 * commit writes every page it changed to the WAL and fsyncs it, and a
 * group of 2-reading messages from a few gateways changed a leaf page of the
 * index per point, about 20 pages; staged, the same group changes one or two.
 * A merge writes each page once for thousands of readings. Measured, the
 * store alone (groups of 57 two-reading messages from 8 gateways,
 * synchronous=FULL): commit 1.33 → 1.00 ms, 36 → 31 µs CPU per message,
 * and the merge 0.8 µs per reading.
 */
export async function commitTelemetryGroup(db: SqliteDb, state: TelemetryState, batches: BatchToCommit[], now: number, direct = false): Promise<{ results: Array<'stored' | 'duplicate'>; readings: number; refused: number }> {
  const { results, changed } = await dedupe(db, state, batches);
  // One pass for the series ids the cache holds; the rest are looked up or created first.
  // A series row is only a name for an id: created by a commit that then fails, it does no harm.
  const ids: Array<number | undefined> = [];
  const missing = new Map<string, [string, string, string]>();
  for (let i = 0; i < batches.length; i++) {
    if (results[i] !== 'stored') continue;
    const b = batches[i]!;
    for (const r of b.readings) {
      const k = seriesKey(b.gateway, r.device, r.point);
      const id = state.series.get(k);
      ids.push(id);
      if (id === undefined && !missing.has(k)) missing.set(k, [b.gateway, r.device, r.point]);
    }
  }
  const created = new Map<string, number>();
  if (missing.size > 0) await resolveSeries(db, state, missing, created);
  for (const [k, id] of created) state.remember(k, id);
  let refused = 0;
  // Rows in parallel arrays (no arrays per reading); `newest`: series → row of its newest reading.
  const sid: number[] = [];
  const tss: number[] = [];
  const values: unknown[] = [];
  const texts: string[] = [];
  const flagsOf: number[] = [];
  const newest = new Map<number, number>();
  const seen = new Set<string>();
  let j = 0;
  for (let i = 0; i < batches.length; i++) {
    if (results[i] !== 'stored') continue;
    const b = batches[i]!;
    seen.add(b.gateway);
    for (const r of b.readings) {
      const s = ids[j++] ?? created.get(seriesKey(b.gateway, r.device, r.point));
      if (s === undefined) {
        // A new point past its gateway's cap (resolveSeries made no series for it).
        refused++;
        continue;
      }
      const row = sid.length;
      sid.push(s);
      tss.push(r.ts);
      const value = columnValue(r.value);
      values.push(value);
      texts.push(exactJsonText(value));
      flagsOf.push(packFlags(r.value, r.quality, b.historical));
      const prev = newest.get(s);
      if (prev === undefined || tss[prev]! <= r.ts) newest.set(s, row);
    }
  }
  const latest = new Map<number, LatestValue>();
  for (const [s, row] of newest) latest.set(s, { ts: tss[row]!, value: values[row], flags: flagsOf[row]! & 15 });
  // In index order: neighbouring index pages are touched together instead of at random.
  const order = Array.from(sid.keys()).sort((a, b) => sid[a]! - sid[b]! || tss[a]! - tss[b]!);
  const parts: string[] = [];
  for (const [k, set] of changed) if (set.size > 0) parts.push(JSON.stringify([1, ...k.split('\u0000'), set.toString(), now]));
  // Kind 0 stages the reading (readings_staged), kind 2 writes it into `readings` (see the doc comment above).
  const kind = direct ? 2 : 0;
  for (const i of order) parts.push(`[${kind},${sid[i]},${tss[i]},${texts[i]},${flagsOf[i]}]`);
  if (parts.length <= ROWS_PER_STATEMENT) {
    if (parts.length > 0) await db.runPrepared(INGEST_JSON, [`[${parts.join(',')}]`]);
  } else {
    await db.run('BEGIN IMMEDIATE');
    try {
      for (let i = 0; i < parts.length; i += ROWS_PER_STATEMENT) await db.runPrepared(INGEST_JSON, [`[${parts.slice(i, i + ROWS_PER_STATEMENT).join(',')}]`]);
      await db.run('COMMIT');
    } catch (err) {
      await db.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
  for (const [k, set] of changed) state.rememberRanges(k, set);
  state.mergeLatest(latest);
  for (const gw of seen) state.dirtySeen.set(gw, now);
  return { results, readings: sid.length, refused };
}

/**
 * Which batches of the group are new: a batch whose seq is in its (gateway,
 * epoch)'s committed set, or repeats an earlier batch of the group, is a
 * replay. Reads the sets it does not hold yet; returns the changed sets, to
 * be written with the readings and adopted after the commit.
 */
async function dedupe(db: SqliteDb, state: TelemetryState, batches: BatchToCommit[]): Promise<{ results: Array<'stored' | 'duplicate'>; changed: Map<string, SeqRanges> }> {
  const key = (b: BatchToCommit): string => `${b.gateway}\u0000${b.epoch}`;
  const unknown = new Map<string, [string, string]>();
  for (const b of batches) if (!state.ranges.has(key(b))) unknown.set(key(b), [b.gateway, b.epoch]);
  const loaded = new Map<string, SeqRanges>();
  const wanted = [...unknown.values()];
  for (let i = 0; i < wanted.length; i += 1000) {
    const part = wanted.slice(i, i + 1000);
    const rows = await db.all<{ gateway: string; epoch: string; ranges: string }>(
      `SELECT gateway, epoch, ranges FROM seq_ranges WHERE (gateway, epoch) IN (VALUES ${part.map(() => '(?,?)').join(',')})`,
      part.flat(),
    );
    for (const r of rows) loaded.set(`${r.gateway}\u0000${r.epoch}`, SeqRanges.parse(r.ranges));
  }
  const changed = new Map<string, SeqRanges>();
  const results = batches.map((b): 'stored' | 'duplicate' => {
    const k = key(b);
    let set = changed.get(k);
    if (!set) {
      set = (state.ranges.get(k) ?? loaded.get(k) ?? SeqRanges.empty()).clone();
      changed.set(k, set);
    }
    if (!set.add(b.seq)) return 'duplicate';
    state.gapsClosed += set.closeLowestGaps(state.maxSeqRanges);
    return 'stored';
  });
  return { results, changed };
}

/**
 * Finds the series ids of `missing` into `out`, creating those that do not
 * exist while their gateway stays within `state.maxSeriesPerGateway`; a
 * point past the cap gets no id (its readings are refused by the caller).
 */
async function resolveSeries(db: SqliteDb, state: TelemetryState, missing: Map<string, [string, string, string]>, out: Map<string, number>): Promise<void> {
  const select = async (part: Array<[string, string, string]>): Promise<void> => {
    for (let i = 0; i < part.length; i += 1000) {
      const p = part.slice(i, i + 1000);
      const got = await db.all<{ id: number; gateway: string; device: string; point: string }>(
        `SELECT id, gateway, device, point FROM series WHERE (gateway, device, point) IN (VALUES ${p.map(() => '(?,?,?)').join(',')})`,
        p.flat(),
      );
      for (const r of got) out.set(seriesKey(r.gateway, r.device, r.point), r.id);
    }
  };
  await select([...missing.values()]);
  const fresh = [...missing].filter(([k]) => !out.has(k)).map(([, v]) => v);
  if (fresh.length === 0) return;
  const allowed: Array<[string, string, string]> = [];
  const byGateway = new Map<string, Array<[string, string, string]>>();
  for (const f of fresh) {
    let l = byGateway.get(f[0]);
    if (!l) byGateway.set(f[0], (l = []));
    l.push(f);
  }
  for (const [gw, list] of byGateway) {
    let have = state.seriesPerGateway.get(gw);
    if (have === undefined) have = (await db.get<{ n: number }>('SELECT count(*) AS n FROM series WHERE gateway = ?', [gw]))?.n ?? 0;
    const room = Math.max(0, state.maxSeriesPerGateway - have);
    allowed.push(...list.slice(0, room));
    state.seriesPerGateway.set(gw, have + Math.min(room, list.length));
  }
  for (let i = 0; i < allowed.length; i += 1000) {
    const p = allowed.slice(i, i + 1000);
    await db.run(`INSERT OR IGNORE INTO series(gateway, device, point) VALUES ${p.map(() => '(?,?,?)').join(',')}`, p.flat());
  }
  await select(allowed);
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

/**
 * Writes coalesced gateway states on SQLite in one transaction (the caller
 * holds the connection exclusively). Rows travel as one JSON text, as the
 * readings do: new gateways are inserted offline, then one UPDATE … FROM
 * applies every change; `last_seen` only moves forward.
 */
export async function writeGatewayStates(db: SqliteDb, rows: CoalescedGatewayState[]): Promise<void> {
  if (rows.length === 0) return;
  const json = JSON.stringify(rows.map((r) => [r.gateway, r.online === null ? null : r.online ? 1 : 0, r.at, r.status]));
  await db.run('BEGIN IMMEDIATE');
  try {
    await db.run('INSERT OR IGNORE INTO gateways(id, online, first_seen, last_seen) SELECT value->>0, 0, value->>2, value->>2 FROM json_each(?)', [json]);
    await db.run(
      `UPDATE gateways SET online = coalesce(c.online, gateways.online), last_seen = max(gateways.last_seen, c.at), status = coalesce(c.status, gateways.status)
       FROM (SELECT value->>0 AS id, value->>1 AS online, value->>2 AS at, value->>3 AS status FROM json_each(?)) AS c WHERE gateways.id = c.id`,
      [json],
    );
    await db.run('COMMIT');
  } catch (err) {
    await db.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
