/**
 * The live stream across nodes (hub/live/live-relay.ts, issue 16 item 3):
 * two "nodes" — each its own event bus, live stream, HTTP listener and
 * mqemitter-redis bus on one cluster prefix (as ClusterLink.mq) — and an SSE
 * client on node B sees what node A committed: batches (not replays),
 * events, gateway changes, filtered as on one node; a client on A sees A's
 * own batch once (the Redis echo is skipped); a node subscribes to the
 * others only while it has clients; a slow client on B is dropped by the
 * same bound; a malformed bus message is ignored. Real Redis; skipped with
 * one line where none answers.
 */
import { createRequire } from 'node:module';
import net from 'node:net';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { openSse, type SseClient } from '../../../test/support/sse.js';
import { HubEvents } from '../../hub-events.js';
import { LiveRelay, type LiveBus } from '../../live/live-relay.js';
import { LiveStream } from '../../live/live-stream.js';
import { REDIS_URL, redisPrefix, skipUnlessRedis } from './redis-support.js';

const require = createRequire(import.meta.url);
const { MQEmitterRedisPrefix } = require('mqemitter-redis') as { MQEmitterRedisPrefix: new (prefix: string, opts: object) => LiveBus & { close(cb: () => void): void; state: NodeJS.EventEmitter } };

interface Node {
  events: HubEvents;
  live: LiveStream;
  relay: LiveRelay;
  bus: LiveBus;
  url: string;
  port: number;
}

async function node(t: Test, prefix: string, name: string, maxBufferedBytes?: number): Promise<Node> {
  // Connected before the bus uses them, as ClusterLink does: a SUBSCRIBE queued before the
  // connection is ready makes ioredis' ready check fail ("Connection in subscriber mode").
  const pub = new Redis(REDIS_URL, { lazyConnect: true });
  const sub = new Redis(REDIS_URL, { lazyConnect: true });
  await Promise.all([pub.connect(), sub.connect()]);
  const bus = new MQEmitterRedisPrefix(`${prefix}mq/`, { pubConn: pub, subConn: sub, matchEmptyLevels: true });
  bus.state.on('error', (err: Error) => t.fail(`bus error: ${err.message}`));
  const events = new HubEvents();
  const relay = new LiveRelay({ bus: () => bus, events, logger: silentLogger(), nodeId: name });
  const live = new LiveStream({ events, logger: silentLogger(), remote: relay, ...(maxBufferedBytes ? { maxBufferedBytes } : {}) });
  const app = Fastify();
  live.register(app);
  await relay.start();
  await live.start();
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    await live.stop();
    await relay.stop();
    await app.close();
    await new Promise<void>((r) => bus.close(r));
  });
  const port = (app.server.address() as net.AddressInfo).port;
  return { events, live, relay, bus, port, url: `http://127.0.0.1:${port}/api/v1/stream` };
}

const batch = (gateway: string, seq: number, extra: { duplicate?: boolean; historical?: boolean; point?: string } = {}) => ({
  gateway, epoch: 'e', seq, historical: extra.historical ?? false, duplicate: extra.duplicate ?? false,
  readings: [{ device: 'd1', point: extra.point ?? 'p', ts: 1_700_000_000_000 + seq, value: seq, quality: 'good' as const }],
});

/** Waits until `pred` holds (the bus subscription is asynchronous). */
async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Opens a stream and waits until its node receives the other nodes' updates (Redis SUBSCRIBE done). */
async function open(n: Node, query = ''): Promise<SseClient> {
  const c = await openSse(`${n.url}${query}`);
  await until(() => n.relay.subscribed, 'the relay to subscribe');
  // The Redis subscription completes asynchronously: probe until a message from the bus comes back.
  const probe = new HubEvents();
  const r = new LiveRelay({ bus: () => n.bus, events: probe, logger: silentLogger(), nodeId: 'probe' });
  await r.start();
  const before = n.relay.counters.received;
  for (let i = 0; i < 200 && n.relay.counters.received === before; i++) {
    probe.emit('gateway', { gateway: `probe-${i}` });
    await new Promise((res) => setTimeout(res, 20));
  }
  await r.stop();
  return c;
}

const skip = await skipUnlessRedis();
if (skip) {
  t.pass(skip);
} else {
  t.test('a client on node B sees what node A committed: batches, events, gateway changes; filters hold', async (t) => {
    const prefix = redisPrefix(t);
    const a = await node(t, prefix, 'a');
    const b = await node(t, prefix, 'b');
    t.notOk(b.relay.subscribed, 'no clients: node B reads nothing of the others');
    const onB = await open(b, '?gateway=gw-1,gw-2');
    t.teardown(() => onB.close());
    const onA = await openSse(a.url);
    t.teardown(() => onA.close());
    await until(() => a.relay.subscribed, 'node A to subscribe');

    a.events.emit('batch', batch('gw-1', 7, { duplicate: true }));
    a.events.emit('batch', batch('gw-9', 8)); // filtered out on B
    a.events.emit('batch', batch('gw-1', 9, { historical: true })); // backlog: not streamed by default
    a.events.emit('batch', batch('gw-1', 10));
    const m = await onB.next((x) => x.event === 'readings');
    t.same(m.data, { gateway: 'gw-1', seq: 10, historical: false, readings: batch('gw-1', 10).readings }, 'the committed batch from node A, as A streams it');
    a.events.emit('event', { gateway: 'gw-2', event: { ts: 1, type: 'alarm.raise', severity: 'critical', device: 'd1', point: 'p', message: 'high' } as never });
    const ev = await onB.next((x) => x.event === 'event');
    t.equal(ev.data.gateway, 'gw-2');
    t.equal(ev.data.severity, 'critical');
    a.events.emit('gateway', { gateway: 'gw-1', online: false });
    const gwm = await onB.next((x) => x.event === 'gateway' && x.data.gateway === 'gw-1');
    t.same(gwm.data, { gateway: 'gw-1', online: false });
    t.equal(onB.messages.filter((x) => x.event === 'readings').length, 1, 'no replay, no other gateway, no backlog batch reached B');

    // Node A's own client got its batch once: straight from A's bus, the Redis echo skipped.
    await onA.next((x) => x.event === 'gateway' && x.data.gateway === 'gw-1');
    t.same(onA.messages.filter((x) => x.event === 'readings').map((x) => x.data.seq), [8, 10], 'A streams its own batches once each');

    // And the other way round.
    b.events.emit('batch', batch('gw-2', 3));
    const back = await onA.next((x) => x.event === 'readings' && x.data.gateway === 'gw-2');
    t.equal(back.data.seq, 3, 'node A sees node B\'s batch');
    t.ok(a.relay.counters.published >= 4 && b.relay.counters.received >= 3);
  });

  t.test('the remote feed closes with the last client; malformed bus messages are ignored', async (t) => {
    const prefix = redisPrefix(t);
    const a = await node(t, prefix, 'a');
    const b = await node(t, prefix, 'b');
    const c = await open(b);
    b.bus.emit({ topic: '$SYS/ioc-edge/live/x.1', payload: '{not json' });
    b.bus.emit({ topic: '$SYS/ioc-edge/live/x.2', payload: JSON.stringify({ k: 'nope', d: {} }) });
    a.events.emit('batch', batch('gw-1', 1));
    await c.next((x) => x.event === 'readings');
    await until(() => b.relay.counters.malformed === 2, 'both malformed messages counted');
    t.equal(c.messages.filter((x) => x.event === 'readings').length, 1, 'only the real batch was streamed');
    c.close();
    await until(() => !b.relay.subscribed, 'the relay to unsubscribe after the last client');
    t.pass('no clients, no subscription');
  });

  t.test('a slow client on node B is dropped by the per-client bound, whatever node the data came from', async (t) => {
    const prefix = redisPrefix(t);
    const a = await node(t, prefix, 'a');
    const b = await node(t, prefix, 'b', 128 * 1024);
    const reader = await open(b);
    t.teardown(() => reader.close());
    const stuck = net.connect(b.port, '127.0.0.1');
    t.teardown(() => stuck.destroy());
    await new Promise((r) => stuck.once('connect', r));
    stuck.write('GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
    await until(() => b.live.clientCount === 2, 'the stuck client to connect');
    stuck.pause();
    const readings = Array.from({ length: 100 }, (_, i) => ({ device: 'd', point: `p${i}`, ts: i, value: 'x'.repeat(200), quality: 'good' as const }));
    for (let seq = 1; seq <= 3000 && b.live.counters.dropped === 0; seq++) {
      a.events.emit('batch', { gateway: 'g', epoch: 'e', seq, historical: false, readings, duplicate: false });
      if (seq % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => b.live.counters.dropped === 1, 'the stuck client to be dropped');
    t.equal(b.live.clientCount, 1, 'the reading client stays');
    a.events.emit('batch', batch('g', 99_999, { point: 'last' }));
    await reader.next((m) => m.event === 'readings' && m.data.readings[0].point === 'last', 30_000);
  });
}
