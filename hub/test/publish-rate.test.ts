/**
 * Per-client publish-rate bound (issue 13 "also weak": a client could publish
 * as fast as it liked): a token bucket per connection (hub/broker/publish-rate.ts).
 * Past the rate a client's PUBLISHes are held (PUBACK later); past the hard
 * limit (too many held at once: a flood) it is disconnected with a log line
 * and a metric, while a well-behaved gateway's batches still commit.
 */
import t from 'tap';
import type { Client } from 'aedes';
import { topics } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import { waitFor } from '../../test/support/wait.js';
import { brokerLimits, limitCounters, parseBrokerLimits } from '../broker/broker-limits.js';
import { PublishRate } from '../broker/publish-rate.js';
import { batch, captureLogger, gateway } from './abuse-support.js';
import { closed, startSecureHub } from './support.js';

const client = (id: string): Client => ({ id }) as unknown as Client;

t.test('token bucket: the burst goes at once, then one message per 1/rate; past the held bound, refused once counted', async (t) => {
  let now = 0;
  const counters = limitCounters();
  const rate = new PublishRate({ logger: silentLogger(), limits: { publishRate: 10, publishBurst: 3, publishMaxHeld: 2 }, counters, clock: () => now });
  t.teardown(() => rate.stop());
  const c = client('a');
  let went = 0;
  const refusals: Error[] = [];
  const go = (): void => void went++;
  for (let i = 0; i < 3; i++) rate.admit(c, go, (e) => refusals.push(e));
  t.equal(went, 3, 'the burst goes at once');
  rate.admit(c, go, (e) => refusals.push(e));
  rate.admit(c, go, (e) => refusals.push(e));
  t.equal(went, 3, 'past the burst: held');
  t.equal(rate.heldFor(c), 2);
  t.equal(counters.publishesDelayed, 2);
  await waitFor(() => went === 5, 'the held messages to go when their tokens are due', 5000);
  t.equal(rate.heldFor(c), 0);
  t.same(refusals, [], 'nothing refused while within the held bound');
  // A flood: more held at once than the bound.
  const f = client('flood');
  for (let i = 0; i < 5; i++) rate.admit(f, go, (e) => refusals.push(e));
  t.equal(went, 8, 'the burst went; two held');
  rate.admit(f, go, (e) => refusals.push(e));
  t.equal(refusals.length, 1, 'a third held message is past the hard limit');
  t.match(refusals[0], { code: 'HUB_ERR_LIMIT', message: /client 'flood' has 2 messages waiting for the publish rate of 10\/s \(at most 2\)/ });
  rate.admit(f, go, (e) => refusals.push(e));
  t.equal(counters.publishRateDisconnects, 1, 'one disconnect counted, however many messages follow');
  await waitFor(() => refusals.length === 4, 'the held messages of the refused client to be refused', 5000);
  t.equal(went, 8, 'a held message of a refused client is refused, not run');
  // Another client has its own bucket; the hub's own publishes (no client) are never bounded.
  const b = client('b');
  for (let i = 0; i < 3; i++) rate.admit(b, go, () => t.fail('b is within its burst'));
  for (let i = 0; i < 100; i++) rate.admit(null, go, () => t.fail('no client: never bounded'));
  t.equal(went, 111);
  // Tokens come back with time, up to the burst.
  now += 10_000;
  const d = client('c');
  for (let i = 0; i < 3; i++) rate.admit(d, go, () => undefined);
  now += 10_000;
  for (let i = 0; i < 3; i++) rate.admit(d, go, () => undefined);
  t.equal(went, 117, 'refilled to the burst after a pause');
});

t.test('settings: --broker-limit publishRate/publishBurst/publishMaxHeld, checked; generous defaults', async (t) => {
  t.same(parseBrokerLimits(['publishRate=50', 'publishBurst=7', 'publishMaxHeld=3']), { publishRate: 50, publishBurst: 7, publishMaxHeld: 3 });
  t.throws(() => parseBrokerLimits(['publishRate=0']), /--broker-limit publishRate: '0' is not a whole number ≥ 1/);
  t.throws(() => parseBrokerLimits(['publishRate=fast']), /publishRate: 'fast'/);
  const d = brokerLimits();
  t.ok(d.publishRate >= 5_000 && d.publishBurst >= d.publishRate && d.publishMaxHeld >= 64, 'above what a gateway (8 batches in flight) or bench:hub needs');
});

t.test('a client over its rate is slowed (PUBACK later), not disconnected; every batch committed', async (t) => {
  const hub = await startSecureHub(t, { brokerLimits: { publishRate: 40, publishBurst: 10 } });
  const gw = await gateway(t, hub, 'gw-fast');
  let closes = 0;
  gw.on('close', () => closes++);
  let committed = 0;
  hub.events.on('batch', (b) => {
    if (b.gateway === 'gw-fast' && !b.duplicate) committed++;
  });
  // 50 QoS 1 batches at once: 10 within the burst, 40 held (at 40/s about a second).
  await Promise.all(Array.from({ length: 50 }, () => gw.publishAsync(topics.telemetry('gw-fast'), batch(), { qos: 1 })));
  t.equal(committed, 50, 'all committed and acknowledged');
  t.ok(hub.broker.limitCounters.publishesDelayed >= 35, `held past the burst (${hub.broker.limitCounters.publishesDelayed})`);
  t.equal(hub.broker.limitCounters.publishRateDisconnects, 0, 'not disconnected');
  t.equal(closes, 0);
  t.match(await hub.metrics.text(), /ioc_edge_hub_mqtt_publishes_delayed_total [1-9]\d*\n/, 'the delay is a metric');
});

t.test('a flooding client is disconnected with a log line and a metric, while a normal gateway\'s batches still commit', async (t) => {
  const log = captureLogger();
  const hub = await startSecureHub(t, { logger: log.logger, brokerLimits: { publishRate: 200, publishBurst: 200, publishMaxHeld: 100 } });
  const good = await gateway(t, hub, 'gw-good');
  const bad = await gateway(t, hub, 'gw-flood', { reconnectPeriod: 0 });
  let goodCloses = 0;
  good.on('close', () => goodCloses++);
  let committed = 0;
  hub.events.on('batch', (b) => {
    if (b.gateway === 'gw-good' && !b.duplicate) committed++;
  });
  const gone = closed(bad);
  // QoS 0 as fast as mqtt.js writes: thousands pipelined, far past the burst.
  const payload = batch(64);
  for (let i = 0; i < 5000 && bad.connected; i++) bad.publish(topics.telemetry('gw-flood'), payload, { qos: 0 });
  // Meanwhile the well-behaved gateway sends its batches one after another.
  for (let i = 0; i < 20; i++) await good.publishAsync(topics.telemetry('gw-good'), batch(), { qos: 1 });
  await gone;
  t.equal(committed, 20, 'the well-behaved gateway\'s batches all committed');
  t.equal(goodCloses, 0, 'and it was never disconnected');
  t.equal(hub.broker.limitCounters.publishRateDisconnects, 1, 'the flooder was disconnected, once');
  const line = log.lines().find((l) => l.msg === 'client publishes far past its rate: disconnected');
  t.match(line, { level: 40, client: 'gw-flood', code: 'HUB_ERR_LIMIT', publishRate: 200, publishMaxHeld: 100 }, 'one warning names the client and the bound');
  t.equal(log.lines().filter((l) => l.msg === 'client publishes far past its rate: disconnected').length, 1, 'logged once');
  t.match(await hub.metrics.text(), /ioc_edge_hub_mqtt_publish_rate_disconnects_total 1\n/, 'the disconnect is a metric');
});
