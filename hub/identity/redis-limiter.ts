/**
 * The failed-login limiter of a clustered hub (issue 16 item 3): the same
 * rules as {@link FailureLimiter} (rate-limiter.ts, whose file says why the
 * keys are what they are), but the counts and lockouts live in Redis, so a
 * guesser who spreads attempts over several nodes behind the load balancer
 * is locked out at the same count as on one node.
 *
 * - `fail` is one Lua script (atomic on Redis): window, count, lockout and
 *   its doubling in one hash per key, with the Redis server's clock, so the
 *   nodes' clocks do not matter; the hash expires once it can no longer
 *   affect anything (lockout + `maxLockoutMs` + `windowMs`).
 * - `blockedFor` asks Redis (one read) unless this node already knows a
 *   lockout of the key that has not run out: a lockout set on any node is
 *   seen by the next check on every node. Positive answers are cached.
 * - **Redis away** (error or no answer within `redisTimeoutMs`): the node
 *   falls back to its own in-memory {@link FailureLimiter} — fail *open to
 *   per-node limits*, not closed and not unlimited. Failing closed would
 *   make Redis a single point of failure for every login (gateways could not
 *   reconnect, operators could not use the API to see what is wrong) at the
 *   moment the cluster is already degraded; failing fully open would let
 *   guessing run unbounded. With the fallback a guesser gets at most
 *   `nodes × maxFailures` tries per window while Redis is away (each one
 *   costing the hub an scrypt check), and lockouts set locally during the
 *   outage stay in force after Redis returns. docs/deploy.md says the same.
 *
 * hub/hub.ts builds this one when the hub runs clustered (`--redis`) and
 * passes it where the in-memory one goes (mqtt-auth.ts, api-auth.ts).
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { IocError } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import { DEFAULT_RATE_LIMIT, FailureLimiter, type LoginLimiter, type RateLimitOptions } from './rate-limiter.js';

/** Records one failure; returns the lockout in force now (ms, 0 if none). Clock: Redis `TIME`. */
const FAIL = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'c', 'w', 'b', 'l')
local count = tonumber(h[1]) or 0
local ws = tonumber(h[2]) or now
local bu = tonumber(h[3]) or 0
local lk = tonumber(h[4]) or 0
local maxF, win, lock0, lockMax = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if lk > 0 and now - bu > lockMax then lk = 0 end
if now - ws > win then count = 0; ws = now end
count = count + 1
if count >= maxF then
  bu = now + math.min(lockMax, lock0 * (2 ^ lk))
  lk = lk + 1
  count = 0
  ws = now
end
redis.call('HSET', KEYS[1], 'c', count, 'w', ws, 'b', bu, 'l', lk)
redis.call('PEXPIRE', KEYS[1], math.max(0, bu - now) + lockMax + win)
return math.max(0, bu - now)`;

/** Milliseconds the key stays locked out (Redis `TIME`), 0 if not. */
const BLOCKED = `
local b = tonumber(redis.call('HGET', KEYS[1], 'b') or '0') or 0
if b == 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return math.max(0, b - now)`;

type LimiterRedis = Redis & {
  iocLimiterFail(key: string, maxFailures: number, windowMs: number, lockoutMs: number, maxLockoutMs: number): Promise<number>;
  iocLimiterBlocked(key: string): Promise<number>;
};

/** Dependencies of {@link RedisFailureLimiter}. */
export interface RedisLimiterDeps {
  /**
   * The connection (its `keyPrefix` is the cluster's: keys are
   * `<prefix>limiter:<key>`). Make it with {@link limiterRedis}; the
   * limiter connects it at start and quits it at stop.
   */
  redis: Redis;
  logger: Logger;
  limits?: Partial<RateLimitOptions>;
  /** A Redis call not answered within this is treated as Redis away (ms, default 500). */
  redisTimeoutMs?: number;
  /** Local clock (cache and fallback; the counts in Redis use Redis' clock). */
  clock?: () => number;
}

/**
 * An ioredis connection for the limiter: commands fail at once while Redis
 * is away (no offline queue, no retries), so a login never waits for Redis
 * to return; it reconnects on its own.
 */
export function limiterRedis(url: string, keyPrefix: string, nodeId: string): Redis {
  return new Redis(url, {
    keyPrefix,
    connectionName: `ioc-edge:${nodeId}:limiter`,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(100 * times, 1000),
  });
}

function checkLimits(o: RateLimitOptions): void {
  for (const k of ['maxFailures', 'windowMs', 'lockoutMs', 'maxLockoutMs', 'maxEntries'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `failed-login limit ${k} = ${String(o[k])}: give a whole number ≥ 1`);
  }
  if (o.maxLockoutMs < o.lockoutMs) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `failed-login limit maxLockoutMs (${o.maxLockoutMs}) is below lockoutMs (${o.lockoutMs}): raise maxLockoutMs`);
}

/** Failed-login counts and lockouts shared by every node through Redis. */
export class RedisFailureLimiter implements LoginLimiter {
  private readonly opts: RateLimitOptions;
  private readonly redis: LimiterRedis;
  /** Lockouts this node knows of: key → local time they end. Bounded by `maxEntries`. */
  private readonly known = new Map<string, number>();
  /** Used while Redis is away; its lockouts keep applying after. */
  private readonly local: FailureLimiter;
  private readonly clock: () => number;
  private degradedSince: number | null = null;
  /** Redis calls answered, and calls that fell back to this node's own limiter. */
  readonly counters = { redisCalls: 0, fallbacks: 0 };

  constructor(private readonly deps: RedisLimiterDeps) {
    this.opts = { ...DEFAULT_RATE_LIMIT, ...deps.limits };
    checkLimits(this.opts);
    const t = deps.redisTimeoutMs ?? 500;
    if (!Number.isInteger(t) || t < 1) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `limiter Redis timeout ${String(t)} ms: give a whole number ≥ 1`);
    this.clock = deps.clock ?? Date.now;
    this.local = new FailureLimiter(this.opts, this.clock);
    this.redis = deps.redis as LimiterRedis;
    this.redis.defineCommand('iocLimiterFail', { numberOfKeys: 1, lua: FAIL });
    this.redis.defineCommand('iocLimiterBlocked', { numberOfKeys: 1, lua: BLOCKED });
    this.redis.on('error', () => undefined); // reported once per outage by degrade()
  }

  /** Connects to Redis; a Redis that is away at start is not fatal (the fallback applies until it answers). */
  async start(): Promise<void> {
    if (this.redis.status === 'wait') await this.redis.connect().catch((err: unknown) => this.degrade(err));
  }

  async stop(): Promise<void> {
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }

  get maxFailures(): number {
    return this.opts.maxFailures;
  }

  /** True while the last Redis call failed (this node counts alone). */
  get degraded(): boolean {
    return this.degradedSince !== null;
  }

  /** Milliseconds until `key` may try again (lockouts set on any node); 0 when not locked out. */
  async blockedFor(key: string): Promise<number> {
    const now = this.clock();
    const mine = this.local.blockedFor(key);
    const until = this.known.get(key);
    if (until !== undefined) {
      if (until > now) return Math.max(mine, until - now);
      this.known.delete(key);
    }
    const ms = await this.call(() => this.redis.iocLimiterBlocked(this.redisKey(key)));
    if (ms === null) return mine;
    if (ms > 0) this.remember(key, now + ms);
    return Math.max(mine, ms);
  }

  /**
   * Records a failure in Redis (every node's failures count together);
   * returns the lockout now in force (ms), 0 if none. `maxFailures`
   * overrides the limit for this key (the looser per-source bucket).
   */
  async fail(key: string, maxFailures = this.opts.maxFailures): Promise<number> {
    const o = this.opts;
    const ms = await this.call(() => this.redis.iocLimiterFail(this.redisKey(key), maxFailures, o.windowMs, o.lockoutMs, o.maxLockoutMs));
    if (ms === null) return this.local.fail(key, maxFailures);
    if (ms > 0) this.remember(key, this.clock() + ms);
    return ms;
  }

  /** Keys are addresses and user names: long ones are hashed, so a key never grows with its input. */
  private redisKey(key: string): string {
    return key.length <= 200 ? `limiter:${key}` : `limiter:#${createHash('sha256').update(key).digest('base64url')}`;
  }

  private remember(key: string, until: number): void {
    if (this.known.size >= this.opts.maxEntries) {
      const now = this.clock();
      for (const [k, u] of this.known) if (u <= now) this.known.delete(k);
      for (const k of this.known.keys()) {
        if (this.known.size < this.opts.maxEntries) break;
        this.known.delete(k); // forgotten here, still in Redis: the next check reads it again
      }
    }
    this.known.set(key, until);
  }

  /** A Redis call with a deadline; null when Redis is away (logged once per outage). */
  private async call(fn: () => Promise<number>): Promise<number | null> {
    if (this.redis.status !== 'ready') {
      this.degrade(new Error(`connection ${this.redis.status}`));
      return null;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const ms = this.deps.redisTimeoutMs ?? 500;
      const r = await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
        }),
      ]);
      this.counters.redisCalls++;
      if (this.degradedSince !== null) {
        this.deps.logger.info({ awayMs: this.clock() - this.degradedSince }, 'failed-login limiter: Redis answers again; counting cluster-wide');
        this.degradedSince = null;
      }
      return Number(r);
    } catch (err) {
      this.degrade(err);
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  private degrade(err: unknown): void {
    this.counters.fallbacks++;
    if (this.degradedSince !== null) return;
    this.degradedSince = this.clock();
    this.deps.logger.warn({ err: (err as Error)?.message ?? String(err), code: 'HUB_ERR_CLUSTER_UNAVAILABLE' }, 'failed-login limiter: Redis away; this node counts failed logins on its own until it returns');
  }
}
