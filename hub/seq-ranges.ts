/**
 * The set of batch sequence numbers committed for one (gateway, epoch), kept as
 * sorted, disjoint, non-adjacent closed ranges. A gateway numbers its batches
 * 1, 2, 3 … and they arrive nearly in order (a window of a few in flight), so
 * the set is almost always one range: the hub's dedupe record per gateway is a
 * few bytes and one row update per group commit, instead of one row per batch
 * (which cost about 30 % of the commit time for small messages).
 */
export class SeqRanges {
  /** [lo0, hi0, lo1, hi1, …], ascending, with lo(k+1) > hi(k) + 1. */
  private constructor(private readonly r: number[]) {}

  static empty(): SeqRanges {
    return new SeqRanges([]);
  }

  /** Parses the stored form (JSON `[[lo, hi], …]`); throws on anything else. */
  static parse(text: string): SeqRanges {
    const v = JSON.parse(text) as unknown;
    if (!Array.isArray(v)) throw new Error('seq ranges: not an array');
    const flat: number[] = [];
    for (const p of v) {
      if (!Array.isArray(p) || p.length !== 2 || !Number.isSafeInteger(p[0]) || !Number.isSafeInteger(p[1]) || p[0] > p[1]) throw new Error(`seq ranges: bad range ${JSON.stringify(p)}`);
      if (flat.length > 0 && (p[0] as number) <= flat[flat.length - 1]! + 1) throw new Error('seq ranges: not sorted and disjoint');
      flat.push(p[0] as number, p[1] as number);
    }
    return new SeqRanges(flat);
  }

  /** Builds the set from ascending sequence numbers (duplicates allowed). */
  static fromSorted(seqs: Iterable<number>): SeqRanges {
    const s = SeqRanges.empty();
    for (const n of seqs) s.add(n);
    return s;
  }

  clone(): SeqRanges {
    return new SeqRanges(this.r.slice());
  }

  /** Number of ranges (1 for a gateway whose batches all arrived). */
  get size(): number {
    return this.r.length / 2;
  }

  /** Index of the last range whose lo ≤ n, or -1. */
  private find(n: number): number {
    let lo = 0;
    let hi = this.r.length / 2 - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.r[mid * 2]! <= n) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }

  has(n: number): boolean {
    const i = this.find(n);
    return i >= 0 && n <= this.r[i * 2 + 1]!;
  }

  /** Adds `n`; false when it was already there. */
  add(n: number): boolean {
    const r = this.r;
    const i = this.find(n);
    if (i >= 0 && n <= r[i * 2 + 1]!) return false;
    const joinsLeft = i >= 0 && r[i * 2 + 1]! === n - 1;
    const joinsRight = i + 1 < r.length / 2 && r[(i + 1) * 2]! === n + 1;
    if (joinsLeft && joinsRight) {
      r[i * 2 + 1] = r[(i + 1) * 2 + 1]!;
      r.splice((i + 1) * 2, 2);
    } else if (joinsLeft) r[i * 2 + 1] = n;
    else if (joinsRight) r[(i + 1) * 2] = n;
    else r.splice((i + 1) * 2, 0, n, n);
    return true;
  }

  /**
   * Keeps at most `max` ranges by closing the lowest gaps (issue 13): a
   * gateway numbering its batches 2, 4, 6 … would otherwise grow the set,
   * and the text rewritten at every commit, without bound. A batch that
   * fills a closed gap later is taken for a replay; a well-behaved gateway
   * has a handful of gaps at most. Returns how many gaps were closed.
   */
  closeLowestGaps(max: number): number {
    const over = this.r.length / 2 - Math.max(1, max);
    if (over <= 0) return 0;
    // Ranges 0 … over become one: lo of the first, hi of range `over`.
    this.r.splice(1, over * 2);
    return over;
  }

  /** The stored form: JSON `[[lo, hi], …]`. */
  toString(): string {
    const parts: string[] = [];
    for (let i = 0; i < this.r.length; i += 2) parts.push(`[${this.r[i]},${this.r[i + 1]}]`);
    return `[${parts.join(',')}]`;
  }
}
