/**
 * Rollups of expired raw readings (issue 13 item 4), the rules both store
 * backends share: level i keeps buckets of `bucketMs` from
 * {@link levelBoundary} on; a history answer adds raw readings and rollups,
 * each reading counted once ({@link readRollupLevels}).
 */
import type { RollupLevel } from '../../data-limits.js';

/** The start of the oldest bucket still kept at level `i` (ms): `now − keepMs` rounded down to the next level's width, so the coarser level takes over exactly where the finer one stops. */
export function levelBoundary(limits: { retention: { rollups: RollupLevel[] } }, i: number, now: number): number {
  const levels = limits.retention.rollups;
  const l = levels[i]!;
  const align = (levels[i + 1] ?? l).bucketMs;
  const edge = now - l.keepMs;
  return edge - (((edge % align) + align) % align);
}

/** One bucket of a downsampled history before its average is taken. */
export interface BucketSums {
  count: number;
  min: number;
  max: number;
  sum: number;
}

/** Rollup rows of one level summed per requested bucket `b` (as both backends' queries return them). */
export interface RollupSums {
  b: number;
  n: number;
  mn: number;
  mx: number;
  s: number;
}

/**
 * Adds the rollups of one point to `into` (bucket index → sums), bucketed
 * from `from` by `bucketMs`, for rows whose start lies in [from, to]. Uses
 * the largest level whose width is at most `bucketMs` (else the finest)
 * while it keeps the data, and each coarser level before the finer one's
 * boundary: no reading is counted twice, and none that a rollup holds is
 * left out. Only rollup buckets lying wholly in [from, to] count (an edge
 * bucket reaching outside the range is left out rather than bringing
 * readings from outside it), each in the requested bucket holding its start.
 * `query(width, lo, hi)` returns the level's rows with `lo <= ts <= hi`
 * summed per requested bucket.
 */
export async function readRollupLevels(levels: readonly RollupLevel[], q: { from: number; to: number; bucketMs: number }, now: number, into: Map<number, BucketSums>, query: (width: number, lo: number, hi: number) => Promise<RollupSums[]>): Promise<void> {
  if (levels.length === 0) return;
  let start = 0;
  for (let i = 0; i < levels.length; i++) if (levels[i]!.bucketMs <= q.bucketMs) start = i;
  let upper = Number.MAX_SAFE_INTEGER; // exclusive upper bound of the level's region
  for (let i = start; i < levels.length; i++) {
    const lower = i === levels.length - 1 ? 0 : levelBoundary({ retention: { rollups: [...levels] } }, i, now);
    const lo = Math.max(q.from, lower);
    const hi = Math.min(q.to, upper - 1);
    if (lo <= hi) {
      const w = levels[i]!.bucketMs;
      for (const r of await query(w, lo, Math.min(hi, q.to + 1 - w))) mergeBucket(into, Number(r.b), { count: Number(r.n), min: Number(r.mn), max: Number(r.mx), sum: Number(r.s) });
    }
    upper = Math.min(upper, lower);
    if (upper <= q.from) break;
  }
}

/** Adds `s` into bucket `b` of `into`. */
export function mergeBucket(into: Map<number, BucketSums>, b: number, s: BucketSums): void {
  const cur = into.get(b);
  if (!cur) into.set(b, { ...s });
  else {
    cur.count += s.count;
    cur.min = Math.min(cur.min, s.min);
    cur.max = Math.max(cur.max, s.max);
    cur.sum += s.sum;
  }
}
