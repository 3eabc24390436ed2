/**
 * Failed-login limiter (MQTT CONNECT and API tokens), counting per key: the
 * callers choose the key — for API tokens a (source address, token id) pair
 * plus a looser per-source bucket (api-auth.ts), so one attacker behind a
 * NAT or load balancer cannot lock a correct token out of the same address.
 * `maxFailures` failures inside `windowMs` lock the key out for
 * `lockoutMs`, doubling with each further lockout up to `maxLockoutMs`.
 * A success does not clear the count: an attacker holding one valid
 * credential must not be able to interleave it to keep guessing others.
 * Memory is bounded: at most `maxEntries` addresses are tracked.
 */

/** Settings of {@link FailureLimiter}. */
export interface RateLimitOptions {
  maxFailures: number;
  windowMs: number;
  lockoutMs: number;
  maxLockoutMs: number;
  maxEntries: number;
}

/** 10 failures a minute, then 1 min, 2 min, 4 min … up to 15 min. */
export const DEFAULT_RATE_LIMIT: RateLimitOptions = { maxFailures: 10, windowMs: 60_000, lockoutMs: 60_000, maxLockoutMs: 15 * 60_000, maxEntries: 100_000 };

/**
 * What the login hooks (mqtt-auth.ts, api-auth.ts) need of a limiter: this
 * file's in-memory {@link FailureLimiter} on one node, the Redis-backed one
 * (redis-limiter.ts) on a cluster, where the answers take a Redis round trip.
 */
export interface LoginLimiter {
  /** Milliseconds until `key` may try again; 0 when it is not locked out. */
  blockedFor(key: string): number | Promise<number>;
  /** Records a failure; returns the lockout now in force (ms), 0 if none. */
  fail(key: string, maxFailures?: number): number | Promise<number>;
  /** Failures that lock a key out. */
  readonly maxFailures: number;
}

interface Entry {
  count: number;
  windowStart: number;
  blockedUntil: number;
  lockouts: number;
}

/** Counts failures per key; answers whether a key is locked out. */
export class FailureLimiter implements LoginLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly opts: RateLimitOptions;

  constructor(opts: Partial<RateLimitOptions> = {}, private readonly clock: () => number = Date.now) {
    this.opts = { ...DEFAULT_RATE_LIMIT, ...opts };
  }

  /** Milliseconds until `key` may try again; 0 when it is not locked out. */
  blockedFor(key: string): number {
    const e = this.entries.get(key);
    if (!e) return 0;
    return Math.max(0, e.blockedUntil - this.clock());
  }

  /**
   * Records a failure; returns the lockout now in force (ms), 0 if none.
   * `maxFailures` overrides the limiter's setting for this key (a looser bucket).
   */
  fail(key: string, maxFailures = this.opts.maxFailures): number {
    const now = this.clock();
    let e = this.entries.get(key);
    if (!e) {
      this.prune(now);
      e = { count: 0, windowStart: now, blockedUntil: 0, lockouts: 0 };
      this.entries.set(key, e);
    }
    if (e.lockouts > 0 && now - e.blockedUntil > this.opts.maxLockoutMs) e.lockouts = 0;
    if (now - e.windowStart > this.opts.windowMs) {
      e.count = 0;
      e.windowStart = now;
    }
    e.count++;
    if (e.count >= maxFailures) {
      const lock = Math.min(this.opts.maxLockoutMs, this.opts.lockoutMs * 2 ** e.lockouts);
      e.blockedUntil = now + lock;
      e.lockouts++;
      e.count = 0;
      e.windowStart = now;
    }
    return Math.max(0, e.blockedUntil - now);
  }

  /** Failures that lock a key out (unless a call to {@link fail} says otherwise). */
  get maxFailures(): number {
    return this.opts.maxFailures;
  }

  /** Number of tracked keys (for metrics and tests). */
  get size(): number {
    return this.entries.size;
  }

  private prune(now: number): void {
    if (this.entries.size < this.opts.maxEntries) return;
    for (const [k, e] of this.entries) {
      if (e.blockedUntil <= now && now - e.windowStart > this.opts.windowMs) this.entries.delete(k);
    }
    // Still full (a flood of fresh addresses): forget the oldest.
    for (const k of this.entries.keys()) {
      if (this.entries.size < this.opts.maxEntries) break;
      this.entries.delete(k);
    }
  }
}
