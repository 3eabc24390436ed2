/**
 * The failed-login limiter shared through Redis (hub/identity/redis-limiter.ts,
 * issue 16 item 3): two limiter instances on one key prefix stand for two hub
 * nodes. A guesser alternating between them is locked out at the same count
 * as on one; a lockout set on one node is known on the other; the looser
 * per-source bucket and the doubling lockouts behave as the in-memory
 * limiter's; with Redis away each node falls back to counting on its own
 * (fail open to per-node limits, docs/deploy.md). Real Redis; skipped with
 * one line where none answers.
 */
import type { EventEmitter } from 'node:events';
import { once } from 'node:events';
import net from 'node:net';
import t, { type Test } from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { captureLogger } from '../../test/abuse-support.js';
import { FailureLimiter } from '../../identity/rate-limiter.js';
import { limiterRedis, RedisFailureLimiter } from '../../identity/redis-limiter.js';
import { REDIS_URL, redisPrefix, skipUnlessRedis } from './redis-support.js';

const skip = await skipUnlessRedis();
if (skip) {
  t.pass(skip);
} else {
  /** One "node": a limiter on its own connection under the test's prefix. */
  const node = async (tt: Test, prefix: string, limits = {}, logger = silentLogger()): Promise<RedisFailureLimiter> => {
    const l = new RedisFailureLimiter({ redis: limiterRedis(REDIS_URL, prefix, `n${Math.random()}`), logger, limits: { maxFailures: 5, lockoutMs: 60_000, maxLockoutMs: 600_000, ...limits } });
    await l.start();
    tt.teardown(() => l.stop());
    return l;
  };

  t.test('a guesser spread over two nodes is locked out at the same count as on one', async (t) => {
    const prefix = redisPrefix(t);
    const a = await node(t, prefix);
    const b = await node(t, prefix);
    const one = new FailureLimiter({ maxFailures: 5, lockoutMs: 60_000, maxLockoutMs: 600_000 });
    const key = 'mqtt:10.0.0.9|gw-1';
    for (let i = 1; i <= 4; i++) {
      const lock = await (i % 2 ? a : b).fail(key);
      t.equal(lock, 0, `failure ${i} (node ${i % 2 ? 'a' : 'b'}): not locked yet`);
      t.equal(one.fail(key), 0, `failure ${i} on one node: not locked either`);
      t.equal(await a.blockedFor(key), 0);
      t.equal(await b.blockedFor(key), 0);
    }
    t.equal(await b.fail(key), 60_000, 'the fifth failure, on node b, locks the key for lockoutMs');
    t.equal(one.fail(key), 60_000, 'as the fifth does on one node');
    const onA = await a.blockedFor(key);
    t.ok(onA > 55_000 && onA <= 60_000, `node a knows the lockout set on node b (${onA} ms)`);
    t.equal(await a.blockedFor('mqtt:10.0.0.9|gw-2'), 0, 'another key is not locked');
    t.equal(a.degraded || b.degraded, false, 'Redis answered throughout');
    t.ok(a.counters.redisCalls > 0 && a.counters.fallbacks === 0);
  });

  t.test('per-key bound (looser source bucket), doubling lockouts, separate prefixes', async (t) => {
    const prefix = redisPrefix(t);
    const a = await node(t, prefix);
    const b = await node(t, prefix);
    const other = await node(t, redisPrefix(t));
    const src = 'api:10.0.0.7';
    for (let i = 1; i < 50; i++) t.equal(await (i % 2 ? a : b).fail(src, 50), 0, `source failure ${i} of 50: not locked`);
    t.equal(await a.fail(src, 50), 60_000, 'the 50th failure locks the looser bucket');
    t.equal(await other.blockedFor(src), 0, 'another cluster (prefix) does not see it');
    // Further failures while locked out count again; the next lockout doubles.
    let lock = 0;
    for (let i = 0; i < 50; i++) lock = await (i % 2 ? a : b).fail(src, 50);
    t.equal(lock, 120_000, 'second lockout is twice the first');
    for (let i = 0; i < 50 * 4; i++) lock = await b.fail(src, 50);
    t.equal(lock, 600_000, 'lockouts stop doubling at maxLockoutMs');
  });

  t.test('a long key (user name) is hashed, still shared', async (t) => {
    const prefix = redisPrefix(t);
    const a = await node(t, prefix, { maxFailures: 2 });
    const b = await node(t, prefix, { maxFailures: 2 });
    const key = `mqtt:10.0.0.1|${'u'.repeat(5000)}`;
    t.equal(await a.fail(key), 0);
    t.equal(await b.fail(key), 60_000);
    t.ok((await a.blockedFor(key)) > 0);
    t.ok((await a.blockedFor(`${key}x`)) === 0, 'a different long key is not locked');
  });

  t.test('Redis away: each node counts on its own (fail open to per-node limits), said once in the log', async (t) => {
    // A port that refuses connections: listen, note the port, close.
    const srv = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    const log = captureLogger();
    const l = new RedisFailureLimiter({ redis: limiterRedis(`redis://127.0.0.1:${port}`, 'x:', 'down'), logger: log.logger, limits: { maxFailures: 3 } });
    await l.start();
    t.teardown(() => l.stop());
    t.equal(await l.blockedFor('k'), 0, 'no answer from Redis is no lockout, not an error');
    t.equal(await l.fail('k'), 0);
    t.equal(await l.fail('k'), 0);
    t.equal(await l.fail('k'), 60_000, 'locked at the third failure by the local fallback');
    t.ok((await l.blockedFor('k')) > 0, 'the local lockout applies');
    t.ok(l.degraded, 'the limiter says it counts alone');
    t.ok(l.counters.fallbacks >= 4);
    const warns = log.lines().filter((x) => x.code === 'HUB_ERR_CLUSTER_UNAVAILABLE');
    t.equal(warns.length, 1, 'one warning per outage, not one per login');
  });

  t.test('lockouts made while Redis was away still apply once it answers again', async (t) => {
    const prefix = redisPrefix(t);
    const log = captureLogger();
    const a = await node(t, prefix, { maxFailures: 2 }, log.logger);
    const conn = (a as unknown as { redis: EventEmitter & { disconnect(reconnect?: boolean): void } }).redis;
    const back = once(conn, 'ready');
    conn.disconnect(true); // drop the connection; ioredis reconnects by itself
    t.equal(await a.fail('k'), 0, 'counted locally while the connection is down');
    t.equal(await a.fail('k'), 60_000, 'locked locally');
    t.ok(a.degraded);
    await back;
    t.ok((await a.blockedFor('k')) > 0, 'still locked after Redis returned');
    t.equal(await a.blockedFor('other'), 0);
    t.notOk(a.degraded, 'back to counting cluster-wide');
    t.ok(log.lines().some((x) => x.msg === 'failed-login limiter: Redis answers again; counting cluster-wide'));
  });

  t.test('bad settings are refused with HUB_ERR_CLUSTER_CONFIG', async (t) => {
    const redis = limiterRedis(REDIS_URL, 'x:', 'bad');
    t.teardown(() => redis.disconnect());
    const make = (limits: object, redisTimeoutMs?: number) => () => new RedisFailureLimiter({ redis, logger: silentLogger(), limits, ...(redisTimeoutMs === undefined ? {} : { redisTimeoutMs }) });
    t.throws(make({ maxFailures: 0 }), { code: 'HUB_ERR_CLUSTER_CONFIG', message: /maxFailures = 0: give a whole number/ });
    t.throws(make({ windowMs: 1.5 }), /windowMs = 1.5: give a whole number/);
    t.throws(make({ lockoutMs: 60_000, maxLockoutMs: 1000 }), /maxLockoutMs \(1000\) is below lockoutMs \(60000\)/);
    t.throws(make({}, 0), /limiter Redis timeout 0 ms/);
  });
}
