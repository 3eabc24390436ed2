/**
 * Tests against a real Redis (address from IOC_EDGE_TEST_REDIS, default
 * redis://127.0.0.1:6379): each test gets its own key prefix, whose keys are
 * deleted at teardown. Where no Redis answers the test is skipped with one
 * line saying what to start; under CI=true that is a failure. For tests
 * that kill Redis, {@link ownRedis} runs a private `redis-server` on a free
 * port as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { Redis } from 'ioredis';
import type { Test } from 'tap';

/** The shared server tests use. */
export const REDIS_URL = process.env.IOC_EDGE_TEST_REDIS ?? 'redis://127.0.0.1:6379';

let answered: Promise<string | null> | null = null;

async function ping(url: string): Promise<string | null> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
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
}

/**
 * For tap's `{ skip }`: false when Redis answers; otherwise the reason
 * (printed once). Under CI=true it throws instead, failing the test file.
 */
export async function skipUnlessRedis(): Promise<false | string> {
  answered ??= ping(REDIS_URL);
  const problem = await answered;
  if (problem === null) return false;
  const line = `Redis does not answer at ${REDIS_URL} (${problem}): start Redis 7 (systemctl start redis-server), or set IOC_EDGE_TEST_REDIS`;
  if (process.env.CI === 'true') throw new Error(`CI: ${line}`);
  process.stderr.write(`\n#### SKIPPED: ${line} ####\n\n`);
  return `SKIPPED: ${line}`;
}

/** A fresh key prefix (`t<hex>:`); every key under it is deleted at teardown of `t`. */
export function redisPrefix(t: Test, url = REDIS_URL): string {
  const prefix = `t${randomBytes(5).toString('hex')}:`;
  t.teardown(async () => {
    const r = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length) await r.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } catch {
      // a private server that is already gone
    } finally {
      r.disconnect();
    }
  });
  return prefix;
}

/** Keys under a prefix now (for leak checks). */
export async function redisKeys(prefix: string, url = REDIS_URL): Promise<string[]> {
  const r = new Redis(url);
  try {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      out.push(...keys);
      cursor = next;
    } while (cursor !== '0');
    return out;
  } finally {
    r.disconnect();
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** A private redis-server (no persistence) that the test may kill and start again on the same port. */
export async function ownRedis(t: Test): Promise<{ url: string; kill: () => Promise<void>; start: () => Promise<void> }> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let out = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!/Ready to accept connections/.test(out)) {
      if (c.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start: ${out.slice(-300)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    c.kill('SIGKILL');
    await once(c, 'exit');
  };
  await start();
  t.teardown(kill);
  return { url: `redis://127.0.0.1:${port}`, kill, start };
}
