/**
 * The foundation's guarantees under trouble, with real processes' parts on
 * loopback: the hub restarting while the gateway polls, a silent or refused
 * Modbus device, malformed telemetry at the hub.
 */
import t from 'tap';
import mqtt from 'mqtt';
import { topics } from '../contract/index.js';
import { gatewayConfig, startSim, startTestGateway, startTestHub } from './support/stack.js';
import { waitFor } from './support/wait.js';
import { freePort } from '../scripts/sim/free-port.js';

async function getJson<T>(port: number, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return (await res.json()) as T;
}

t.test('hub restarts while the gateway keeps polling: everything arrives exactly once', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t, { tickMs: 50 });
  const hub1 = await startTestHub(t, dir);
  const port = hub1.mqttPort;
  const gw = await startTestGateway(t, gatewayConfig(dir, port, sim.port));
  await waitFor(() => gw.uplink.stats().batchesAcked >= 3, 'first batches acknowledged');

  await hub1.stop();
  const appendedAtStop = gw.outbox.stats().appended;
  // The gateway keeps polling and buffering while the hub is away.
  await waitFor(() => gw.outbox.stats().appended > appendedAtStop + 20 && gw.outbox.stats().rows > 0, 'readings buffered while the hub is down');
  t.equal(gw.uplink.connected, false, 'uplink notices the hub is gone');

  const hub2 = await startTestHub(t, dir, { mqttPort: port });
  await waitFor(() => gw.uplink.connected, 'gateway reconnects to the restarted hub');
  sim.freeze(); // no more changes: the gateway stops producing readings (report by exception)
  await waitFor(async () => {
    await gw.outbox.flush();
    const s = gw.outbox.stats();
    return s.rows === 0 && s.appended === s.acked ? s : null;
  }, 'outbox drained');

  const appended = gw.outbox.stats().appended;
  const stored = await hub2.store.readingCounts('gw-test-01');
  t.equal(stored.total, appended, `the hub stored every reading the gateway produced (${appended})`);
  t.equal(stored.distinct, stored.total, 'no reading stored twice');
  t.equal(gw.outbox.stats().dropped, 0, 'nothing was dropped by a budget');
});

t.test('a silent device goes down with an event and stale points; the other device keeps being polled', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  const hub = await startTestHub(t, dir);
  const gw = await startTestGateway(t, gatewayConfig(dir, hub.mqttPort, sim.port));
  await waitFor(() => gw.devices()['flood-1'] === 'up' && gw.devices()['tsc-1'] === 'up', 'both devices up');

  sim.silent(true, 1);
  const down = await waitFor(async () => (await hub.store.events({ gateway: 'gw-test-01', limit: 50 })).find((e) => e.type === 'device.down'), 'device.down event at the hub');
  t.equal(down.device, 'flood-1');
  t.equal(down.code, 'GW_ERR_MODBUS_TIMEOUT', 'the event carries the error code');
  t.match(down.message, /flood-1.*stopped answering/);
  t.equal(gw.devices()['tsc-1'], 'up', 'the other device on the same endpoint is still up');

  const stale = await waitFor(async () => {
    const items = await hub.store.latest({ gateway: 'gw-test-01', device: 'flood-1' });
    return items.length > 0 && items.every((r) => r.quality === 'stale') ? items : null;
  }, 'flood-1 points stale at the hub');
  t.ok(stale.some((r) => typeof r.value === 'number'), 'stale points keep their last known value');

  const tscBefore = Math.max(...(await hub.store.latest({ gateway: 'gw-test-01', device: 'tsc-1' })).map((r) => r.ts));
  await waitFor(async () => Math.max(...(await hub.store.latest({ gateway: 'gw-test-01', device: 'tsc-1' })).map((r) => r.ts)) > tscBefore, 'tsc-1 readings keep arriving');

  sim.silent(false, 1);
  const up = await waitFor(async () => (await hub.store.events({ gateway: 'gw-test-01', limit: 50 })).find((e) => e.type === 'device.up'), 'device.up event');
  t.equal(up.device, 'flood-1');
  await waitFor(async () => (await hub.store.latest({ gateway: 'gw-test-01', device: 'flood-1' })).every((r) => r.quality === 'good'), 'flood-1 good again');

  const res = await getJson<{ items: Array<{ id: string; devices?: Record<string, string> }> }>(hub.httpPort, '/api/v1/gateways');
  t.ok(res.items[0]?.devices, 'gateway status lists its devices');
});

t.test('a refused Modbus connection marks the device down and backs off; the gateway keeps running', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  const hub = await startTestHub(t, dir);
  const deadPort = await freePort();
  const cfg = gatewayConfig(dir, hub.mqttPort, sim.port);
  (cfg.buses as unknown[]).push({ id: 'dead', type: 'modbus-tcp', host: '127.0.0.1', port: deadPort, timeoutMs: 200, reconnectMinMs: 200, reconnectMaxMs: 2000 });
  (cfg.devices as unknown[]).push({ id: 'ups-1', bus: 'dead', unitId: 1, profile: 'flood-level-sensor', pollIntervalMs: 100 });
  const gw = await startTestGateway(t, cfg);
  const down = await waitFor(async () => (await hub.store.events({ gateway: 'gw-test-01', limit: 50 })).find((e) => e.type === 'device.down' && e.device === 'ups-1'), 'ups-1 down');
  t.equal(down.code, 'GW_ERR_MODBUS_CONNECT');
  t.match(down.message, new RegExp(`127\\.0\\.0\\.1:${deadPort}`), 'names the endpoint');
  t.equal(gw.devices()['flood-1'], 'up');
  t.equal(gw.devices()['tsc-1'], 'up');
  // Backoff: the dead device is not hammered at its 100 ms poll interval.
  const polls0 = gw.pollStats()['ups-1']!.polls;
  await new Promise((r) => setTimeout(r, 1500));
  const polls = gw.pollStats()['ups-1']!.polls - polls0;
  t.ok(polls < 10, `dead device polled ${polls} times in 1.5 s (interval 100 ms would be 15)`);
});

t.test('malformed telemetry is acknowledged, quarantined with an event, and the client stays connected', async (t) => {
  const dir = t.testdir();
  const hub = await startTestHub(t, dir);
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: 'gw-bad', reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  let closed = false;
  client.on('close', () => (closed = true));

  await client.publishAsync(topics.telemetry('gw-bad'), '{not json', { qos: 1 });
  await client.publishAsync(topics.telemetry('gw-bad'), JSON.stringify({ v: 1, epoch: 'e', seq: 1, readings: [{ device: 'd', point: 'p', ts: -5, value: 1, quality: 'great' }] }), { qos: 1 });
  await client.publishAsync(topics.events('gw-bad'), JSON.stringify({ v: 1, hello: 'world' }), { qos: 1 });
  t.equal(closed, false, 'still connected after three bad payloads');

  const q = await hub.store.quarantined();
  t.equal(q.length, 3, 'three payloads quarantined');
  t.match(q.map((x) => x.code).sort(), ['CONTRACT_ERR_BAD_JSON', 'CONTRACT_ERR_INVALID_PAYLOAD', 'CONTRACT_ERR_INVALID_PAYLOAD']);
  t.ok(q.some((x) => /\/readings\/0\/ts/.test(x.error) && /\/readings\/0\/quality/.test(x.error)), 'the reason names every bad JSON pointer');
  const evs = await hub.store.events({ gateway: 'gw-bad', limit: 10 });
  // At most one such event per gateway per minute (issue 13: a gateway sending garbage must not fill the events table); the next counts the others.
  t.equal(evs.filter((e) => e.type === 'ingest.quarantined').length, 1, 'one event for the three quarantined payloads');
  t.equal((await hub.store.readingCounts('gw-bad')).total, 0, 'nothing malformed reached the store');

  // A valid batch afterwards is stored, and its replay is not.
  const good = JSON.stringify({ v: 1, epoch: 'e', seq: 7, readings: [{ device: 'd', point: 'p', ts: 1, value: 2.5, quality: 'good' }] });
  await client.publishAsync(topics.telemetry('gw-bad'), good, { qos: 1 });
  await client.publishAsync(topics.telemetry('gw-bad'), good, { qos: 1 });
  t.equal((await hub.store.readingCounts('gw-bad')).total, 1, 'valid batch stored once');
  const api = await getJson<{ items: unknown[] }>(hub.httpPort, '/api/v1/quarantine');
  t.equal(api.items.length, 3, 'quarantine visible through the API');
});
