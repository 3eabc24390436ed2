/**
 * Aedes' message bus (mqemitter) holds messages past its concurrency in a
 * queue and, each time one message is done, starts the next from inside that
 * one's callback. A message whose listeners all finish at once (the hub's own
 * services, or no listener at all) finishes inside that call, so a queue of
 * thousands of such messages was drained by recursion and overflowed the
 * stack: the hub's process died (seen in bench:hub at 64 × 64 in flight).
 *
 * The queue forms when a client stops reading: the messages for it wait on
 * its socket, and everyone else's publishes queue behind them.
 */
import t from 'tap';
import type { Socket } from 'node:net';
import type { Test } from 'tap';
import type { MqttClient } from 'mqtt';
import type { Hub } from '../hub.js';
import { topics } from '../../contract/index.js';
import { batch, consumerAccount, gateway } from './abuse-support.js';
import { connectPacket, rawSocket, remainingLength, startSecureHub } from './support.js';
import { pgSchema, skipUnlessPostgres } from '../../test/support/postgres.js';
import { waitFor } from '../../test/support/wait.js';
import { clusterNode, gatewayClient } from '../cluster/test/cluster-support.js';
import { redisPrefix, skipUnlessRedis } from '../cluster/test/redis-support.js';

/** A SUBSCRIBE of one filter at `qos`. */
function subscribePacket(id: number, filter: string, qos: 0 | 1): Buffer {
  const f = Buffer.from(filter);
  const body = Buffer.concat([Buffer.from([id >> 8, id & 0xff, f.length >> 8, f.length & 0xff]), f, Buffer.from([qos])]);
  return Buffer.concat([Buffer.from([0x82]), remainingLength(body.length), body]);
}

/** Resolves when the socket has received bytes starting with `type` (upper nibble). */
function awaitPacket(socket: Socket, type: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      if (d[0]! >> 4 !== type) return;
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed')));
  });
}

type Bus = { current: number; length: number };

/**
 * Calls `check` after each message the bus takes in, until the returned function is called (or the test ends).
 * A node's own bus takes them by `emit`; a cluster node's (mqemitter-redis) by `_emit`, from its Redis
 * subscription, its `emit` going to Redis.
 */
function onEmit(t: Test, mq: Bus, check: () => void): () => void {
  const bus = mq as unknown as Record<string, unknown>;
  const key = typeof bus._emit === 'function' ? '_emit' : 'emit';
  const own = Object.prototype.hasOwnProperty.call(bus, key);
  const original = bus[key] as (...args: unknown[]) => unknown;
  bus[key] = function (this: unknown, ...args: unknown[]): unknown {
    const r = original.apply(this, args);
    check();
    return r;
  };
  const stop = (): void => {
    if (own) bus[key] = original;
    else delete bus[key];
  };
  t.teardown(stop);
  return stop;
}

/**
 * Messages on the bus, at least, when the reader leaves. The bus fills by a socket's worth at a time: it
 * peaks at about 11,000 here (a node's socket reads of the gateways, or a cluster node's of its Redis
 * subscription); without the fix the stack overflowed every time.
 */
const ON_BUS = 3000;
/** Gateways sending results, and results each sends at once. */
const GATEWAYS = 32;
const PER_GATEWAY = 600;

/**
 * A reader of every command result, GATEWAYS gateways sending PER_GATEWAY results
 * each at once, and the reader leaving while ON_BUS are on the bus. Aedes
 * takes a socket's packets in one go, so far more than its bus's concurrency
 * (100 by default) are emitted in one turn; each is delivered to the reader on
 * a later turn. When the reader's subscription leaves the bus, what is still
 * queued reaches only the hub's own command service.
 */
async function readerLeaves(t: Test, hub: Hub, mq: Bus, connectReader: (socket: Socket) => void, gatewayOf: (id: string) => Promise<MqttClient>): Promise<void> {
  const reader = await rawSocket(t, hub.broker.port);
  const connack = awaitPacket(reader, 2);
  connectReader(reader);
  await connack;
  const suback = awaitPacket(reader, 9);
  reader.write(subscribePacket(1, 'ioc/v1/gw/+/cmd/+/result', 1));
  await suback;

  const gws = [];
  for (let g = 0; g < GATEWAYS; g++) gws.push(await gatewayOf(`gw-q${g}`));
  let closes = 0;
  for (const c of gws) c.on('close', () => closes++);
  // On the bus: being delivered, or queued behind the bus's concurrency. Counted as each message comes onto
  // the bus (a timer saw about half the peak, and 2,412 once on a faster CI machine, under the threshold).
  let most = 0;
  const left = new Promise<void>((resolve) => {
    const stop = onEmit(t, mq, () => {
      most = Math.max(most, mq.current + mq.length);
      if (mq.current + mq.length < ON_BUS) return;
      stop();
      reader.destroy();
      resolve();
    });
  });
  const acked = gws.flatMap((c, g) => Array.from({ length: PER_GATEWAY }, (_, i) => c.publishAsync(topics.cmdResult(`gw-q${g}`, 'bench'), JSON.stringify({ id: `r${i}`, ok: true }), { qos: 1 })));
  // Should the bus never hold that many (a machine that delivers faster than it reads), fail rather than wait.
  await Promise.race([left, Promise.all(acked)]);
  // Gone in any case, so that the checks below do not wait on it.
  reader.destroy();
  t.ok(most >= ON_BUS, `on the bus when the reader left: ${most} (at least ${ON_BUS})`);
  await Promise.all(acked);
  t.pass('every result was acknowledged');
  // On a cluster node the PUBACK follows Redis' answer, and the node's own delivery comes from Redis after it.
  await waitFor(() => mq.current + mq.length === 0, 'the bus to empty');
  t.pass('the bus is empty');
  t.equal(closes, 0, 'no gateway was disconnected');
  const probe = await gatewayOf('gw-probe');
  await probe.publishAsync(topics.telemetry('gw-probe'), batch(), { qos: 1 });
  t.pass('the hub still accepts and acknowledges telemetry');
  // Every client gone before the hub stops (its teardown): on a cluster node, disconnects during the stop
  // still wrote to Redis as its connections closed (an unhandled rejection in CI).
  await Promise.all([...gws, probe].map((c) => c.endAsync()));
  await waitFor(() => Object.keys((hub.broker.instance as unknown as { clients: object }).clients).length === 0, 'every client to leave');
}

const busOf = (hub: Hub): Bus => (hub.broker.instance as unknown as { mq: Bus }).mq;

t.test('SQLite hub: a subscriber leaves while thousands of messages are on the bus, and the hub does not overflow its stack', async (t) => {
  const hub = await startSecureHub(t, { brokerLimits: { publishRate: 1_000_000, publishBurst: 1_000_000 } });
  // A service that reads every command result, as the hub's own command service does in the process.
  const svc = await hub.identity.createAccount({ username: 'cfg-svc', kind: 'service' }, { actor: 'test' });
  await readerLeaves(t, hub, busOf(hub), (s) => s.write(connectPacket({ clientId: 'cfg-svc:1', clean: true, username: svc.username, password: svc.password })), (id) => gateway(t, hub, id));
});

const skipCluster = (await skipUnlessPostgres()) || (await skipUnlessRedis());

t.test('cluster node (PostgreSQL, Redis bus): the same', { skip: skipCluster }, async (t) => {
  const schema = pgSchema(t);
  const hub = await clusterNode(t, schema, redisPrefix(t), { brokerLimits: { publishRate: 1_000_000, publishBurst: 1_000_000 } });
  await readerLeaves(t, hub, busOf(hub), (s) => s.write(connectPacket({ clientId: 'reader', clean: true })), (id) => gatewayClient(t, hub.broker.port, id));
});
