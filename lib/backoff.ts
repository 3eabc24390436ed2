/**
 * Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS
 * Architecture Blog, 2015): a fleet of gateways that lost the hub at the same
 * moment must not come back in lock-step.
 */

/** Backoff settings, in milliseconds. */
export interface BackoffOptions {
  minMs: number;
  maxMs: number;
  /** Random source in [0, 1); injectable for tests. */
  random?: () => number;
  /**
   * `equal` (default): a delay between half the current cap and the cap.
   * `full`: anywhere between 0 and the cap, so a fleet that lost its hub at
   * the same moment spreads its retries over the whole interval (the
   * blog's "full jitter": fewest attempts for many clients competing).
   */
  jitter?: 'equal' | 'full';
}

/** Tracks consecutive failures and says how long to wait before the next try. */
export class Backoff {
  private failures = 0;

  constructor(private readonly opts: BackoffOptions) {}

  /** Delay before the next attempt after one more failure. */
  next(): number {
    const cap = Math.min(this.opts.maxMs, this.opts.minMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    const r = (this.opts.random ?? Math.random)();
    // Full jitter: the first retry comes within minMs, later ones within the growing cap (at least 50 ms apart).
    if (this.opts.jitter === 'full') return Math.max(50, Math.round(r * cap));
    return Math.max(this.opts.minMs, Math.round(cap / 2 + (r * cap) / 2));
  }

  /** Number of consecutive failures since the last success. */
  get attempts(): number {
    return this.failures;
  }

  /** Call on success. */
  reset(): void {
    this.failures = 0;
  }
}
