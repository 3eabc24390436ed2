/**
 * Tests against a real Redis (address from IOC_EDGE_TEST_REDIS, default
 * redis://127.0.0.1:6379), the counterpart of test/support/postgres.ts:
 * each test gets its own key prefix, whose keys are deleted at teardown;
 * where no Redis answers the test is skipped with one line saying what to
 * start, and under CI=true a missing server is a failure.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Test } from 'tap';

/** The server tests use. */
export const REDIS_URL = process.env.IOC_EDGE_TEST_REDIS ?? 'redis://127.0.0.1:6379';

let answered: Promise<string | null> | null = null;

/** null when Redis answers PING, else why not. Asked once per process. */
export function redisProblem(): Promise<string | null> {
  answered ??= (async () => {
    const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      return null;
    } catch (err) {
      return (err as Error).message;
    } finally {
      r.disconnect();
    }
  })();
  return answered;
}

/** For tap: false when Redis answers; otherwise the reason (printed once). Throws under CI=true. */
export async function skipUnlessRedis(): Promise<false | string> {
  const problem = await redisProblem();
  if (problem === null) return false;
  const line = `Redis does not answer at ${REDIS_URL.replace(/\/\/[^@/]*@/, '//***@')} (${problem}): start Redis 7 (systemctl start redis-server), or set IOC_EDGE_TEST_REDIS`;
  if (process.env.CI === 'true') throw new Error(`CI: ${line}`);
  process.stderr.write(`\n#### SKIPPED: ${line} ####\n\n`);
  return `SKIPPED: ${line}`;
}

/** A fresh key prefix (`t-<random>:`) whose keys are deleted at teardown of `t`. */
export function redisPrefix(t: Test, name = 't'): string {
  const prefix = `${name}-${randomBytes(6).toString('hex')}:`;
  t.teardown(async () => {
    const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 0 });
    try {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length) await r.del(...keys);
      } while (cursor !== '0');
    } finally {
      r.disconnect();
    }
  });
  return prefix;
}
