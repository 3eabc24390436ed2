/**
 * The retained messages of a SUBSCRIBE, read from Redis as Redis goes away
 * (hub/cluster/cluster-persistence.ts, endOnError). Aedes pipes that stream
 * without an 'error' listener on it, so an error from it ends the node with
 * an uncaught exception; the stream must end instead, and the failure must be
 * reported for the log. cluster-failure.test.ts met this fault only when a
 * read happened to be in flight as it killed Redis; here the kill comes
 * while the read is under way, every time: thousands of retained messages
 * are read in many HSCAN round trips, and Redis is killed at the first one.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import type { Readable } from 'node:stream';
import { limitCounters } from '../../broker/broker-limits.js';
import { SubscriptionBook } from '../../broker/subscription-book.js';
import { ClusterPersistence } from '../cluster-persistence.js';
import { ownRedis, skipUnlessRedis } from './redis-support.js';

const skip = await skipUnlessRedis();
const RETAINED = 5000;

/** A command connection as the cluster link makes it: one retry per command, reconnects with backoff. */
function connection(url: string): Redis {
  const r = new Redis(url, { keyPrefix: 'rs:', maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: (times) => Math.min(100 * times, 1000) });
  r.on('error', () => undefined);
  return r;
}

function persistence(redis: Redis, failures: Array<{ what: string; err: Error }>): ClusterPersistence {
  return new ClusterPersistence({
    redis, keyPrefix: 'rs:', maxQueuedPerSession: 100, maxQueuedBytesPerSession: 1 << 20, book: new SubscriptionBook(), counters: limitCounters(),
    onStreamError: (what, err) => failures.push({ what, err }),
  });
}

/** Reads the stream to its end as Aedes does (data events); settles with what came and any 'error' it emitted. */
function drain(stream: Readable, onFirst?: () => void): Promise<{ got: number; errors: Error[] }> {
  return new Promise((resolve) => {
    let got = 0;
    const errors: Error[] = [];
    stream.on('data', () => {
      if (got++ === 0) onFirst?.();
    });
    stream.on('error', (err: Error) => {
      errors.push(err);
      resolve({ got, errors });
    });
    stream.on('end', () => resolve({ got, errors }));
  });
}

t.test('a SUBSCRIBE reading retained messages while Redis goes away gets an ended stream, not an error', { skip }, async (t) => {
  const server = await ownRedis(t);
  const redis = connection(server.url);
  t.teardown(() => redis.disconnect());
  const failures: Array<{ what: string; err: Error }> = [];
  const p = persistence(redis, failures);
  // No setup(): that joins the cluster's subscription broadcast, which the retained messages do not use.
  for (let i = 0; i < RETAINED; i++) {
    await p.storeRetained({ cmd: 'publish', topic: `ioc/v1/gw/gw-${i}/status`, payload: Buffer.from(`{"online":true,"n":${i}}`), qos: 1, retain: true, dup: false, messageId: 0 } as never);
  }

  // With Redis up: every retained message comes, and nothing is reported.
  const whole = await drain(p.createRetainedStreamCombi(['ioc/v1/gw/+/status']));
  t.equal(whole.got, RETAINED, 'all retained messages are read while Redis is up');
  t.same(whole.errors, [], 'no error');
  t.same(failures, [], 'nothing reported');

  // Redis killed at the first message of the read: the stream ends part way, without an 'error' event.
  let killed: Promise<void> | null = null;
  const cut = await drain(p.createRetainedStreamCombi(['ioc/v1/gw/+/status']), () => (killed = server.kill()));
  await killed;
  t.same(cut.errors.map((e) => e.message), [], "the stream emits no 'error' (Aedes has no listener for one: it would end the node)");
  t.ok(cut.got >= 1 && cut.got < RETAINED, `the stream ended part way (${cut.got} of ${RETAINED} read before Redis went away)`);
  t.equal(failures.length, 1, 'the failure is reported once, for the log');
  t.equal(failures[0]?.what, 'retained messages', 'naming what was being read');
  t.match(failures[0]?.err.message ?? '', /retr|closed|ECONNREFUSED|Connection/i, `with Redis' error (${failures[0]?.err.message})`);
});
