/**
 * Abuse suite, broker side (issue 13 items 1, 3, 9; DESIGN.md "every
 * per-client resource has a bound"): a hostile but authenticated client tries
 * to freeze, fill or poison the hub, against a real hub with real mqtt.js
 * clients and raw sockets on loopback. Each test fails without its bound.
 */
import t from 'tap';
import { topics } from '../../contract/index.js';
import { waitFor } from '../../test/support/wait.js';
import type { Hub } from '../index.js';
import { batch, captureLogger, lastSeq, consumerAccount, gateway, retainedTopics, subscribeMany } from './abuse-support.js';
import { connectOk, connectPacket, exchange, mqttUrl, rawSocket, remainingLength, startSecureHub, tryConnect } from './support.js';


t.test('SUBSCRIBE flood: 5,000 filters from a persistent gateway and 3,000 from a consumer are bounded; the hub keeps answering', async (t) => {
  const cap = captureLogger();
  const hub = await startSecureHub(t, { logger: cap.logger });
  const gw = await gateway(t, hub, 'gw-1', { clean: false });
  const other = await gateway(t, hub, 'gw-2');
  const filters = Array.from({ length: 5000 }, (_, i) => `ioc/v1/gw/gw-1/x/${i}/${'y'.repeat(10)}`);
  // While the flood is processed, another gateway's QoS 1 publish and a health request get their answers.
  const [granted, puback, health] = await Promise.all([
    subscribeMany(gw, filters),
    other.publishAsync(topics.telemetry('gw-2'), batch(), { qos: 1 }),
    fetch(`http://127.0.0.1:${hub.httpPort}/healthz`).then((r) => r.status),
  ]);
  t.ok(puback, 'the other gateway got its PUBACK');
  t.equal(health, 200, 'health answered');
  const bound = hub.broker.limits.maxSubscriptions.gateway;
  t.equal(granted.filter((g) => g !== 128).length, bound, `a gateway holds at most ${bound} filters`);
  t.same(granted.slice(bound).filter((g) => g !== 128), [], 'every filter past the bound answered 0x80');
  t.equal(hub.broker.limitCounters.subscriptionsRefused, 5000 - bound);
  const warned = cap.lines().filter((l) => String(l.msg).startsWith('subscription bound reached'));
  t.equal(warned.length, 1, 'logged once for the client, not per filter');
  const stored = await (hub.broker.instance as unknown as { persistence: any }).persistence.subscriptionsByClient({ id: 'gw-1' } as never);
  t.equal(stored.length, bound, 'the persistent session stores only the granted filters');

  // The bound holds across a reconnect of the persistent session (its filters come back through the same hook).
  await gw.endAsync();
  const gwCred = await hub.identity.issueGatewayCredential('gw-1');
  const again = await connectOk(t, mqttUrl(hub), { clientId: 'gw-1', username: 'gw-1', password: gwCred.password, clean: false });
  const more = await subscribeMany(again, ['ioc/v1/gw/gw-1/more/1', 'ioc/v1/gw/gw-1/more/2']);
  t.same(more, [128, 128], 'a reconnected session at its bound gets 0x80');

  const acct = await consumerAccount(hub);
  const ioc = await connectOk(t, mqttUrl(hub), { clientId: 'ioc:1', username: acct.username, password: acct.password });
  const cf = Array.from({ length: 3000 }, (_, i) => `ioc/v1/gw/g${i}/telemetry`);
  const [cg, puback2] = await Promise.all([subscribeMany(ioc, cf), other.publishAsync(topics.telemetry('gw-2'), batch(), { qos: 1 })]);
  t.ok(puback2, 'PUBACK during the consumer flood');
  t.equal(cg.filter((g) => g !== 128).length, hub.broker.limits.maxSubscriptions.other, 'a consumer holds at most the configured bound');
});

t.test('a topic filter with U+0000 is refused with 0x80 [MQTT-4.7.3-2]', async (t) => {
  const hub = await startSecureHub(t);
  const gw = await gateway(t, hub, 'gw-1');
  const granted = await subscribeMany(gw, ['ioc/v1/gw/gw-1/a\u0000b', 'ioc/v1/gw/gw-1/cmd/+']);
  t.same(granted, [128, 1], 'NUL refused, the other filter granted');
  t.equal(hub.broker.limitCounters.nulFiltersRefused, 1);
});

t.test('retained flood: only contract topics are retained, small ones only', async (t) => {
  const hub = await startSecureHub(t);
  const gw = await gateway(t, hub, 'gw-1');
  for (let i = 0; i < 20; i++) await gw.publishAsync(topics.telemetry('gw-1'), batch(1000), { qos: 1, retain: true });
  await gw.publishAsync(topics.events('gw-1'), JSON.stringify({ v: 1, id: 'e1', ts: Date.now(), type: 'test.event', severity: 'info', message: 'm' }), { qos: 1, retain: true });
  const big = JSON.stringify({ v: 1, state: 'online', ts: Date.now(), pad: 'x'.repeat(70 * 1024) });
  await gw.publishAsync(topics.status('gw-1'), big, { qos: 1, retain: true });
  t.same(await retainedTopics(hub.broker.instance), [], 'telemetry, events and an oversized status are not retained');
  t.equal(hub.broker.limitCounters.retainRefused, 22);
  await gw.publishAsync(topics.status('gw-1'), JSON.stringify({ v: 1, state: 'online', ts: Date.now() }), { qos: 1, retain: true });
  t.same(await retainedTopics(hub.broker.instance), [topics.status('gw-1')], 'a normal status is retained');
  t.ok(gw.connected, 'the gateway was never disconnected: its messages were delivered, just not retained');
});

t.test('offline queue of a persistent consumer session is capped: oldest dropped and counted', async (t) => {
  const hub = await startSecureHub(t, { brokerLimits: { maxQueuedPerSession: 10 } });
  const acct = await consumerAccount(hub);
  const opts = { clientId: 'ioc:q', username: acct.username, password: acct.password, clean: false };
  const c1 = await connectOk(t, mqttUrl(hub), opts);
  await subscribeMany(c1, [topics.telemetry('gw-1')]);
  await c1.endAsync();
  const gw = await gateway(t, hub, 'gw-1');
  const sent: number[] = [];
  for (let i = 0; i < 30; i++) {
    await gw.publishAsync(topics.telemetry('gw-1'), batch(), { qos: 1 });
    sent.push(lastSeq());
  }
  t.match(hub.broker.queueOf('ioc:q'), { queued: 10, dropped: 20 }, '10 kept, 20 dropped');
  t.equal(hub.broker.limitCounters.queueDropped, 20);
  t.match(await hub.metrics.text(), /ioc_edge_hub_mqtt_queue_dropped_total 20\n/, 'the drop is a metric');
  const got: number[] = [];
  // Listening before CONNACK: the queued messages may arrive in the same segment as it.
  await connectOk(t, mqttUrl(hub), opts, (c2) => c2.on('message', (_topic, payload) => got.push((JSON.parse(payload.toString()) as { seq: number }).seq)));
  await waitFor(() => got.length >= 10 || null, 'the queued messages');
  t.same(got, sent.slice(-10), 'the newest 10 are delivered, in order');
});

t.test('offline queue bytes are capped too: big messages push the oldest out', async (t) => {
  const hub = await startSecureHub(t, { brokerLimits: { maxQueuedBytesPerSession: 100 * 1024 } });
  const acct = await consumerAccount(hub);
  const c1 = await connectOk(t, mqttUrl(hub), { clientId: 'ioc:b', username: acct.username, password: acct.password, clean: false });
  await subscribeMany(c1, [topics.telemetry('gw-1')]);
  await c1.endAsync();
  const gw = await gateway(t, hub, 'gw-1');
  for (let i = 0; i < 20; i++) await gw.publishAsync(topics.telemetry('gw-1'), batch(30 * 1024), { qos: 1 });
  const q = hub.broker.queueOf('ioc:b');
  t.match(q, { queued: 3, dropped: 17 }, 'three 30 KiB messages fit in 100 KiB');
  t.ok(q.bytes <= 100 * 1024, `${q.bytes} bytes queued`);
});

t.test('a returning session gets its whole queue without tripping the outgoing bound (queue bytes ≤ half of it)', async (t) => {
  const hub = await startSecureHub(t, { brokerLimits: { maxOutgoingBytes: 1024 * 1024 } });
  t.equal(hub.broker.limits.maxQueuedBytesPerSession, 512 * 1024, 'the queue byte cap is clamped to half the outgoing bound');
  const acct = await consumerAccount(hub);
  const opts = { clientId: 'ioc:r', username: acct.username, password: acct.password, clean: false };
  const c1 = await connectOk(t, mqttUrl(hub), opts);
  await subscribeMany(c1, [topics.telemetry('gw-1')]);
  await c1.endAsync();
  const gw = await gateway(t, hub, 'gw-1');
  for (let i = 0; i < 20; i++) await gw.publishAsync(topics.telemetry('gw-1'), batch(64 * 1024), { qos: 1 });
  const queued = hub.broker.queueOf('ioc:r').queued;
  t.ok(queued >= 7 && queued <= 8, `${queued} × 64 KiB kept`);
  let got = 0;
  const c2 = await connectOk(t, mqttUrl(hub), opts, (c) => c.on('message', () => got++));
  await waitFor(() => got >= queued || null, 'the whole queue');
  t.equal(hub.broker.limitCounters.slowReaders, 0, 'not mistaken for a client that does not read');
  t.ok(c2.connected);
});

t.test('a payload the hub quarantined is never forwarded nor queued', async (t) => {
  const hub = await startSecureHub(t);
  const acct = await consumerAccount(hub);
  const live = await connectOk(t, mqttUrl(hub), { clientId: 'ioc:live', username: acct.username, password: acct.password });
  const got: string[] = [];
  live.on('message', (_t, p) => got.push(p.toString()));
  await subscribeMany(live, [topics.events('gw-1')]);
  const off = await connectOk(t, mqttUrl(hub), { clientId: 'ioc:off', username: acct.username, password: acct.password, clean: false });
  await subscribeMany(off, [topics.events('gw-1')]);
  await off.endAsync();
  const gw = await gateway(t, hub, 'gw-1');
  await gw.publishAsync(topics.events('gw-1'), JSON.stringify({ v: 1, id: 'bad', ts: Date.now(), type: 'test.event', severity: 'info', message: { nested: 'object' } }), { qos: 1 });
  const good = JSON.stringify({ v: 1, id: 'good', ts: Date.now(), type: 'test.event', severity: 'info', message: 'm' });
  await gw.publishAsync(topics.events('gw-1'), good, { qos: 1 });
  await waitFor(() => got.length > 0 || null, 'the valid event');
  t.same(got, [good], 'the subscriber saw only the valid event (same publisher, same topic: order is kept)');
  t.equal(hub.broker.queueOf('ioc:off').queued, 1, 'the offline session queued only the valid event');
  t.ok(hub.broker.limitCounters.quarantinedNotForwarded >= 1);
});

t.test('a consumer that never reads is disconnected; the others keep receiving', async (t) => {
  const hub = await startSecureHub(t, { brokerLimits: { maxOutgoingBytes: 256 * 1024 } });
  const acct = await consumerAccount(hub);
  // The slow reader: a raw socket that subscribes, then never reads again.
  const raw = await rawSocket(t, hub.mqttPort);
  raw.write(connectPacket({ clientId: 'ioc:slow', clean: true, username: acct.username, password: acct.password }));
  const filter = Buffer.from(topics.telemetry('gw-1'));
  const body = Buffer.concat([Buffer.from([0x00, 0x01, filter.length >> 8, filter.length & 255]), filter, Buffer.from([0x00])]);
  raw.write(Buffer.concat([Buffer.from([0x82]), remainingLength(body.length), body]));
  await waitFor(() => (hub.broker.instance as unknown as { clients: Record<string, any> }).clients['ioc:slow']?.subscriptions?.[topics.telemetry('gw-1')] || null, 'the slow reader to subscribe');
  raw.pause();
  const good = await connectOk(t, mqttUrl(hub), { clientId: 'ioc:good', username: acct.username, password: acct.password });
  let received = 0;
  good.on('message', () => received++);
  await subscribeMany(good, [topics.telemetry('gw-1')]);
  const gw = await gateway(t, hub, 'gw-1');
  const n = 400; // 400 × 64 KiB = 25 MiB offered, past any loopback socket buffer
  for (let i = 0; i < n; i++) await gw.publishAsync(topics.telemetry('gw-1'), batch(64 * 1024), { qos: 1 });
  await waitFor(() => received >= n || null, 'the reading consumer to get every message', 30_000);
  t.equal(received, n, 'the consumer that reads got everything');
  t.equal(hub.broker.limitCounters.slowReaders, 1, 'the consumer that does not read was disconnected');
  t.notOk((hub.broker.instance as unknown as { clients: Record<string, any> }).clients['ioc:slow'], 'and is gone');
  t.ok(gw.connected && good.connected, 'nobody else was disconnected');
});

t.test('client id length and connections per account are bounded', async (t) => {
  const hub = await startSecureHub(t, { brokerLimits: { maxConnectionsPerAccount: 2 } });
  const acct = await consumerAccount(hub);
  const url = mqttUrl(hub);
  const long = await tryConnect(t, url, { clientId: `ioc:${'x'.repeat(200)}`, username: acct.username, password: acct.password });
  t.equal(long.ok, false, 'a 204-character client id is refused');
  await connectOk(t, url, { clientId: 'ioc:1', username: acct.username, password: acct.password });
  await connectOk(t, url, { clientId: 'ioc:2', username: acct.username, password: acct.password });
  t.match(await tryConnect(t, url, { clientId: 'ioc:3', username: acct.username, password: acct.password }), { ok: false, code: 3 }, 'a third connection of the account is refused');
  t.match(await tryConnect(t, url, { clientId: 'ioc:2', username: acct.username, password: acct.password }), { ok: true }, 'a takeover of an existing client id is not an extra connection');
  t.equal(hub.mqttAuth.counters.tooManyConnections, 1);
});

t.test('idle connections without CONNECT are bounded per source address', async (t) => {
  const hub = await startSecureHub(t, { brokerLimits: { maxPendingPerSource: 5 } });
  const idle = await Promise.all(Array.from({ length: 5 }, () => rawSocket(t, hub.mqttPort)));
  const sixth = await rawSocket(t, hub.mqttPort);
  await new Promise<void>((resolve) => (sixth.destroyed ? resolve() : sixth.once('close', () => resolve())));
  t.pass('the sixth idle connection from the address is closed');
  t.equal(hub.broker.limitCounters.connectionsRefused, 1);
  idle[0]!.destroy();
  await waitFor(async () => {
    const r = await tryConnect(t, mqttUrl(hub), { clientId: 'gw-1', username: 'gw-1', password: (await hub.identity.issueGatewayCredential('gw-1')).password });
    return r.ok || null;
  }, 'a slot to free up for a real client');
  // Four idle sockets remain; the connected client holds no slot, so a fifth pending one is served.
  const more = await rawSocket(t, hub.mqttPort);
  const answer = await exchange(more, connectPacket({ clientId: 'gw-2', clean: true, username: 'gw-2', password: 'x' }));
  t.same(answer, Buffer.from([0x20, 0x02, 0x00, 0x04]), 'a connected client does not hold a pending slot: the fifth is answered');
});
