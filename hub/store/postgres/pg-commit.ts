/**
 * One group commit of telemetry batches into PostgreSQL, as ONE statement
 * (autocommit, so atomic and durable when it returns; one round trip):
 *
 *   batch_seqs upsert of the group's seqs per gateway epoch RETURNING what it
 *              added — the dedupe (schema-v7-seq-ranges.ts)
 *   readings   INSERT … SELECT FROM unnest(arrays) of the batches added
 *   latest     upsert of the newest reading per series of the stored batches
 *              (a later one wins a tie; only if newer than the row's)
 *   gateways   upsert of last_seen
 *
 * Exactly-once across hub processes rests on the row lock of the upsert,
 * never on a read before the write: INSERT … ON CONFLICT DO UPDATE waits for
 * a concurrent commit of the same gateway epoch and then works on its
 * committed row, so when two hubs commit the same batch at the same moment
 * the second finds the seq already there (`added` leaves it out) and skips
 * the batch and its readings; if the first rolls back, the second stores it.
 * Rows are upserted in (gateway, epoch) order, so concurrent commits take
 * their locks in the same order.
 *
 * Bulk insert by arrays and `unnest` (one parameter per column, not per
 * value): see the commit message of this file for the figures against
 * multi-row VALUES. COPY would need `pg-copy-streams` (not a dependency) and
 * a temporary table, since COPY cannot skip rows on a conflict.
 */
import type { Reading } from '../../../contract/index.js';
import { packFlags } from '../model/readings.js';
import type { BatchToCommit } from '../model/telemetry.js';
import { SeqRanges } from '../../seq-ranges.js';
import type { PgPool } from './pg-pool.js';

const COMMIT_SQL = `
WITH u AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS u(g, e, s, i)),
k AS (SELECT g, e, range_agg(int8range(s, s, '[]')) AS m FROM u GROUP BY g, e),
d AS (
  INSERT INTO batch_seqs AS t (gateway, epoch, seqs, added, updated_at) SELECT g, e, m, m, $4::bigint FROM k ORDER BY g, e
  ON CONFLICT (gateway, epoch) DO UPDATE SET seqs = t.seqs + excluded.seqs, added = excluded.seqs - t.seqs, updated_at = excluded.updated_at
  RETURNING gateway, epoch, added, pg_column_size(seqs) AS size),
ok AS (SELECT u.i FROM u JOIN d ON d.gateway = u.g AND d.epoch = u.e WHERE d.added @> u.s),
r AS (
  INSERT INTO readings(series, ts, value, svalue, flags)
  SELECT x.series, x.ts, x.value, x.svalue, x.flags FROM unnest($5::int[], $6::int[], $7::bigint[], $8::float8[], $9::text[], $10::int2[]) AS x(bi, series, ts, value, svalue, flags)
  WHERE x.bi IN (SELECT i FROM ok)),
l AS (
  INSERT INTO latest(series, ts, value, svalue, flags)
  SELECT DISTINCT ON (series) series, ts, value, svalue, (flags & ~16)::int2
  FROM unnest($5::int[], $6::int[], $7::bigint[], $8::float8[], $9::text[], $10::int2[]) WITH ORDINALITY AS y(bi, series, ts, value, svalue, flags, o)
  WHERE y.bi IN (SELECT i FROM ok) ORDER BY series, ts DESC, o DESC
  ON CONFLICT (series) DO UPDATE SET ts = excluded.ts, value = excluded.value, svalue = excluded.svalue, flags = excluded.flags
  WHERE excluded.ts >= latest.ts),
gw AS (
  INSERT INTO gateways(id, first_seen, last_seen) SELECT DISTINCT gateway, $4::bigint, $4::bigint FROM d WHERE NOT isempty(added) ORDER BY 1
  ON CONFLICT (id) DO UPDATE SET last_seen = greatest(gateways.last_seen, excluded.last_seen))
SELECT i::int AS i, NULL AS g, NULL AS e FROM ok
UNION ALL SELECT NULL, gateway, epoch FROM d WHERE size > $11::int`;

/**
 * Bytes of an int8multirange per range it holds: n ranges take more than 21·n and at most 21·(n + 1) bytes
 * (measured for n = 1 … 60 and 1,000). A record larger than 21·(maxSeqRanges + 1) bytes has more than
 * maxSeqRanges ranges; one at the cap is not looked at again.
 */
const BYTES_PER_RANGE = 21;

/** A double as PostgreSQL's float8 input reads it back exactly (JS's shortest round-trip form; `-0` keeps its sign). */
export function float8Text(v: number): string | null {
  if (!Number.isFinite(v)) return null; // the contract allows finite numbers only
  return Object.is(v, -0) ? '-0' : String(v);
}

/**
 * Flag bit (beside vtype | quality << 2 | historical << 4) of a string value
 * kept JSON-encoded: PostgreSQL text cannot hold U+0000, which a reading's
 * string may contain.
 */
export const ESCAPED_STRING = 32;

/**
 * Appends a reading's column values as array-literal elements: the numeric column (as text) to `num`, the
 * string column (quoted) to `str`, `NULL` where there is none. Returns the extra flag bits (ESCAPED_STRING for a
 * string with U+0000, kept JSON-encoded). Appended rather than returned as a tuple: this runs for every reading
 * of every group.
 */
function pushColumns(value: Reading['value'], num: string[], str: string[]): number {
  if (value === null) {
    num.push('NULL');
    str.push('NULL');
  } else if (typeof value === 'boolean') {
    num.push(value ? '1' : '0');
    str.push('NULL');
  } else if (typeof value === 'string') {
    num.push('NULL');
    if (value.includes('\u0000')) {
      str.push(quoted(JSON.stringify(value)));
      return ESCAPED_STRING;
    }
    str.push(quoted(value));
  } else {
    num.push(float8Text(value) ?? 'NULL');
    str.push('NULL');
  }
  return 0;
}

/** A text element of an array literal: always double-quoted (so `NULL`, braces, commas and blanks are plain text), `\` and `"` escaped. */
const quoted = (v: string): string => (/[\\"]/.test(v) ? `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"` : `"${v}"`);

const seriesKey = (gateway: string, device: string, point: string): string => `${gateway}\u0000${device}\u0000${point}`;

/** Series ids: gateway/device/point → integer, cached (a series row never changes once made). */
export class SeriesIds {
  private readonly ids = new Map<string, number>();
  /** Points one gateway may create (the hub's `maxSeriesPerGateway`); readings of further new points are refused. */
  maxPerGateway = Number.MAX_SAFE_INTEGER;

  constructor(private readonly max = 1_000_000) {}

  get(gateway: string, device: string, point: string): number | undefined {
    return this.ids.get(seriesKey(gateway, device, point));
  }

  /**
   * Looks up (creating where needed) the ids of these series. Created in
   * their own autocommit statement: a series row is only a name for an id, so
   * one made by a commit that then fails does no harm.
   */
  async resolve(db: PgPool, wanted: Array<[string, string, string]>): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const missing = wanted.filter(([g, d, p]) => !this.ids.has(seriesKey(g, d, p)));
    const lookup = async (part: Array<[string, string, string]>): Promise<void> => {
      const cols = [part.map((x) => x[0]), part.map((x) => x[1]), part.map((x) => x[2])];
      const got = await db.query<{ id: number; gateway: string; device: string; point: string }>(
        'SELECT s.id, s.gateway, s.device, s.point FROM series s JOIN unnest($1::text[], $2::text[], $3::text[]) AS u(g, d, p) ON s.gateway = u.g AND s.device = u.d AND s.point = u.p',
        cols,
      );
      for (const r of got.rows) {
        if (this.ids.size >= this.max) this.ids.delete(this.ids.keys().next().value!);
        this.ids.set(seriesKey(r.gateway, r.device, r.point), r.id);
        out.set(seriesKey(r.gateway, r.device, r.point), r.id);
      }
    };
    for (let i = 0; i < missing.length; i += 10_000) await lookup(missing.slice(i, i + 10_000));
    // Series that do not exist yet: created while their gateway stays within its cap, counted in the
    // database under a per-gateway lock, so that hub processes sharing it never pass the cap together
    // (each counting only what it made itself let a gateway reach it once per hub it connected to).
    const fresh = missing.filter(([g, d, p]) => !out.has(seriesKey(g, d, p)));
    if (fresh.length === 0) return out;
    const allowed = await this.createWithinCap(db, fresh);
    for (let i = 0; i < allowed.length; i += 10_000) await lookup(allowed.slice(i, i + 10_000));
    return out;
  }

  /**
   * Creates the series of `fresh` whose gateway has room under
   * {@link maxPerGateway}; returns those it let through (some may have been
   * made by another hub at the same moment: ON CONFLICT, no harm). One
   * transaction: an advisory lock per gateway (taken in one order, so two
   * hubs never deadlock), then the count, read after the lock and so
   * including what another hub committed under it, then the insert.
   */
  private async createWithinCap(db: PgPool, fresh: Array<[string, string, string]>): Promise<Array<[string, string, string]>> {
    const byGateway = new Map<string, Array<[string, string, string]>>();
    for (const f of fresh) {
      const l = byGateway.get(f[0]);
      if (l) l.push(f);
      else byGateway.set(f[0], [f]);
    }
    const gateways = [...byGateway.keys()];
    const capped = this.maxPerGateway < Number.MAX_SAFE_INTEGER;
    return db.transaction(async (c) => {
      const allowed: Array<[string, string, string]> = [];
      if (capped) {
        await c.query(`SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended('ioc-edge series of ' || g, 0) AS k FROM unnest($1::text[]) AS g ORDER BY k) AS locks`, [gateways]);
        const have = new Map<string, number>();
        for (const r of (await c.query<{ gateway: string; n: string }>('SELECT gateway, count(*) AS n FROM series WHERE gateway = ANY($1::text[]) GROUP BY gateway', [gateways])).rows) have.set(r.gateway, Number(r.n));
        for (const [gw, list] of byGateway) allowed.push(...list.slice(0, Math.max(0, this.maxPerGateway - (have.get(gw) ?? 0))));
      } else {
        allowed.push(...fresh);
      }
      for (let i = 0; i < allowed.length; i += 10_000) {
        const part = allowed.slice(i, i + 10_000);
        await c.query('INSERT INTO series(gateway, device, point) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING', [part.map((x) => x[0]), part.map((x) => x[1]), part.map((x) => x[2])]);
      }
      return allowed;
    });
  }
}

/** What one group commit did. */
export interface GroupResult {
  results: Array<'stored' | 'duplicate'>;
  /** Readings stored. */
  readings: number;
  /** Readings of stored batches refused: new points past their gateway's cap. */
  refused: number;
  /** Gateways with stored batches. */
  gateways: Set<string>;
  /** Gaps closed in dedupe records grown past `maxSeqRanges` ranges. */
  gapsClosed: number;
}

/**
 * Commits a group atomically. `beforeCommit` runs before the statement with
 * the time range of its readings (the store creates missing partitions there).
 * A gateway epoch whose dedupe record holds more than `maxSeqRanges` ranges
 * after it (a gateway skipping seqs) has its lowest gaps closed, as the
 * SQLite store does (hub/seq-ranges.ts): a batch filling one of them later is
 * taken for a replay.
 */
export async function commitGroup(
  db: PgPool, series: SeriesIds, batches: BatchToCommit[], now: number,
  beforeCommit: (minTs: number, maxTs: number) => Promise<void>,
  maxSeqRanges: number,
): Promise<GroupResult> {
  const results: Array<'stored' | 'duplicate'> = batches.map(() => 'duplicate');
  // Within the group, a key's first copy is the candidate; later copies are duplicates.
  const firstOf = new Map<string, number>();
  batches.forEach((b, i) => {
    const k = `${b.gateway}\u0000${b.epoch}\u0000${b.seq}`;
    if (!firstOf.has(k)) firstOf.set(k, i);
  });
  const order = [...firstOf.values()].sort((x, y) => {
    const a = batches[x]!;
    const b = batches[y]!;
    return a.gateway < b.gateway ? -1 : a.gateway > b.gateway ? 1 : a.epoch < b.epoch ? -1 : a.epoch > b.epoch ? 1 : a.seq - b.seq;
  });
  const wanted = new Map<string, [string, string, string]>();
  // Series ids of the cached series, reading by reading in `order` (each key built once).
  const cachedIds: Array<number | undefined> = [];
  let minTs = Infinity;
  let maxTs = -Infinity;
  for (const i of order) {
    const b = batches[i]!;
    for (const r of b.readings) {
      const id = series.get(b.gateway, r.device, r.point);
      cachedIds.push(id);
      if (id === undefined) wanted.set(seriesKey(b.gateway, r.device, r.point), [b.gateway, r.device, r.point]);
      if (r.ts < minTs) minTs = r.ts;
      if (r.ts > maxTs) maxTs = r.ts;
    }
  }
  // Held here too: the cache may evict an id while a large group is resolved.
  const resolved = wanted.size > 0 ? await series.resolve(db, [...wanted.values()]) : new Map<string, number>();
  if (minTs <= maxTs) await beforeCommit(minTs, maxTs);
  // Array literals for the statement, built here in one pass: pg would quote and escape every element of a JS array.
  const bg: string[] = [];
  const be: string[] = [];
  const bs: number[] = [];
  const rb: number[] = [];
  const rs: number[] = [];
  const rt: number[] = [];
  const rv: string[] = [];
  const rx: string[] = [];
  const rf: number[] = [];
  const refusedIn = new Map<number, number>(); // batch ordinal - 1 → readings refused
  let j = 0;
  for (let k = 0; k < order.length; k++) {
    const b = batches[order[k]!]!;
    bg.push(quoted(b.gateway));
    be.push(quoted(b.epoch));
    bs.push(b.seq);
    for (const r of b.readings) {
      const id = cachedIds[j++] ?? resolved.get(seriesKey(b.gateway, r.device, r.point));
      if (id === undefined) {
        // A new point past its gateway's cap: refused, the rest of the batch is stored.
        refusedIn.set(k, (refusedIn.get(k) ?? 0) + 1);
        continue;
      }
      rb.push(k + 1); // ordinality of its batch in u
      rs.push(id);
      rt.push(r.ts);
      const extra = pushColumns(r.value, rv, rx);
      rf.push(packFlags(r.value, r.quality, b.historical) | extra);
    }
  }
  const res = await db.query<{ i: number | null; g: string | null; e: string | null }>(COMMIT_SQL, [
    `{${bg.join(',')}}`, `{${be.join(',')}}`, `{${bs.join(',')}}`, now,
    `{${rb.join(',')}}`, `{${rs.join(',')}}`, `{${rt.join(',')}}`, `{${rv.join(',')}}`, `{${rx.join(',')}}`, `{${rf.join(',')}}`,
    (maxSeqRanges + 1) * BYTES_PER_RANGE,
  ], 'ioc_edge_commit_group_v7');
  let readings = 0;
  let refused = 0;
  let gapsClosed = 0;
  const gateways = new Set<string>();
  for (const { i, g, e } of res.rows) {
    if (i === null) {
      gapsClosed += await closeLowestGaps(db, g!, e!, maxSeqRanges);
      continue;
    }
    const idx = order[i - 1]!;
    results[idx] = 'stored';
    const r = refusedIn.get(i - 1) ?? 0;
    readings += batches[idx]!.readings.length - r;
    refused += r;
    gateways.add(batches[idx]!.gateway);
  }
  return { results, readings, refused, gateways, gapsClosed };
}

/**
 * Closes the lowest gaps of one gateway epoch's dedupe record until it holds
 * `max` ranges (rare: a gateway skipping seqs). Under the row's lock, so a
 * commit of the same epoch waits for it. Returns the gaps closed.
 */
async function closeLowestGaps(db: PgPool, gateway: string, epoch: string, max: number): Promise<number> {
  return db.transaction(async (c) => {
    const got = await c.query<{ lo: string; hi: string }>(
      'SELECT lower(r) AS lo, upper(r) - 1 AS hi FROM (SELECT seqs FROM batch_seqs WHERE gateway = $1 AND epoch = $2 FOR UPDATE) t, unnest(t.seqs) AS r',
      [gateway, epoch],
    );
    const set = SeqRanges.parse(JSON.stringify(got.rows.map((r) => [Number(r.lo), Number(r.hi)])));
    const closed = set.closeLowestGaps(max);
    if (closed === 0) return 0;
    const ranges = JSON.parse(set.toString()) as Array<[number, number]>;
    await c.query(
      "UPDATE batch_seqs SET seqs = (SELECT range_agg(int8range(lo, hi, '[]')) FROM unnest($3::bigint[], $4::bigint[]) AS u(lo, hi)) WHERE gateway = $1 AND epoch = $2",
      [gateway, epoch, ranges.map((r) => r[0]), ranges.map((r) => r[1])],
    );
    return closed;
  });
}
