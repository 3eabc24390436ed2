/**
 * Status on a significant change (issue 14.13): after a drain the hub's view
 * shows the new backlog at once, not at the next periodic status; a device
 * going down shows the same way; changes close together share one status.
 */
import t from 'tap';
import path from 'node:path';
import mqtt from 'mqtt';
import { topics, type GatewayStatus } from '../../../contract/index.js';
import { silentLogger } from '../../../lib/index.js';
import { startHub } from '../../../hub/index.js';
import { SqliteOutbox } from '../../outbox/sqlite-outbox.js';
import { Uplink } from '../uplink.js';
import { waitFor } from '../../../test/support/wait.js';
import { gatewayConfig, startSim, startTestGateway } from '../../../test/support/stack.js';

const limits = { maxRows: 1_000_000, maxBytes: 1 << 30, maxAgeMs: 86_400_000 };

t.test('after a drain the hub shows the new backlog without waiting for the periodic status', async (t) => {
  const dir = t.testdir();
  const hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  t.teardown(() => hub.stop());
  const outbox = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits });
  await outbox.start();
  t.teardown(() => outbox.stop());
  const now = Date.now();
  outbox.append(Array.from({ length: 20_000 }, (_, i) => ({ device: 'd', point: `p${i % 10}`, ts: now - 20_000 + i, value: i, quality: 'good' as const })));
  await outbox.flush();
  const uplink = new Uplink({
    gatewayId: 'gw-drain', url: `mqtt://127.0.0.1:${hub.mqttPort}`, logger: silentLogger(), outbox, version: '1.0.0',
    batchSize: 500, window: 4, statusIntervalMs: 3_600_000, keepaliveS: 30, reconnect: { minMs: 50, maxMs: 200 },
  });
  t.teardown(() => uplink.stop());
  await uplink.start();
  const before = await waitFor(async () => (await hub.store.listGateways()).find((g) => g.id === 'gw-drain' && g.online)?.status, 'the first status');
  t.ok((before.backlog?.rows ?? 0) >= 10_000, `the first status shows the backlog (${before.backlog?.rows})`);
  await waitFor(() => outbox.stats().rows === 0, 'the backlog drained');
  // The periodic status is an hour away: only a status sent for the change can show this.
  const after = await waitFor(async () => (await hub.store.listGateways()).find((g) => g.id === 'gw-drain' && g.status?.backlog?.rows === 0)?.status, 'the hub shows the drained backlog');
  t.equal(after.state, 'online');
  t.equal(after.backlog?.rows, 0);
});

t.test('changes close together share one status (rate limit, injected clock)', async (t) => {
  const dir = t.testdir();
  const hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  t.teardown(() => hub.stop());
  const outbox = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits });
  await outbox.start();
  t.teardown(() => outbox.stop());
  let now = 1_000_000_000;
  const uplink = new Uplink({
    gatewayId: 'gw-rate', url: `mqtt://127.0.0.1:${hub.mqttPort}`, logger: silentLogger(), outbox, version: '1.0.0', clock: () => now,
    batchSize: 500, window: 4, statusIntervalMs: 3_600_000, minStatusGapMs: 60_000, keepaliveS: 30, reconnect: { minMs: 50, maxMs: 200 },
  });
  t.teardown(() => uplink.stop());
  const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: 'watcher-rate', reconnectPeriod: 0 });
  t.teardown(() => watcher.endAsync(true));
  const seen: GatewayStatus[] = [];
  let markers = 0;
  watcher.on('message', (topic, payload) => (topic === 'test/marker' ? markers++ : seen.push(JSON.parse(payload.toString()) as GatewayStatus)));
  await watcher.subscribeAsync([topics.status('gw-rate'), 'test/marker'], { qos: 1 });
  const roundTrip = async (): Promise<void> => {
    const n = markers;
    await watcher.publishAsync('test/marker', 'x', { qos: 1 });
    await waitFor(() => markers > n, 'the marker back');
  };

  await uplink.start();
  await waitFor(() => seen.length === 1, 'the status at connect');
  for (let i = 0; i < 10; i++) uplink.statusChanged();
  await roundTrip();
  t.equal(seen.length, 1, 'within the gap after the last status: nothing sent at once');
  now += 60_000;
  for (let i = 0; i < 10; i++) uplink.statusChanged();
  await waitFor(() => seen.length === 2, 'one status for ten changes');
  await roundTrip();
  t.equal(seen.length, 2, 'exactly one');
});

t.test('a device going down shows in the hub\'s view without waiting for the periodic status', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  const hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  t.teardown(() => hub.stop());
  const gw = await startTestGateway(t, gatewayConfig(dir, hub.mqttPort, sim.port, { uplink: { statusIntervalS: 3600 } }));
  const view = async (): Promise<GatewayStatus | undefined> => (await hub.store.listGateways()).find((g) => g.id === 'gw-test-01')?.status ?? undefined;
  await waitFor(() => gw.devices()['flood-1'] === 'up' && gw.uplink.connected, 'device up, gateway connected');
  // (The status at connect may still say 'unknown': pollers start after the uplink.)
  await waitFor(async () => (await view())?.devices?.['flood-1'] !== undefined, 'the hub shows the gateway\'s devices');
  await sim.stop();
  await waitFor(async () => (await view())?.devices?.['flood-1'] === 'down', 'the hub shows the device down', 20_000);
  t.pass('device down reached the hub\'s view with the periodic status an hour away');
});
