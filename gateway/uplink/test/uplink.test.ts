/** The MQTT uplink against a real hub: rate cap, status and last will, acknowledgement-driven deletes. */
import t, { type Test } from 'tap';
import path from 'node:path';
import mqtt from 'mqtt';
import { topics, validateStatus, type GatewayStatus } from '../../../contract/index.js';
import { silentLogger } from '../../../lib/index.js';
import { startHub } from '../../../hub/index.js';
import { SqliteOutbox } from '../../outbox/sqlite-outbox.js';
import { Uplink } from '../uplink.js';
import { waitFor } from '../../../test/support/wait.js';

const limits = { maxRows: 1_000_000, maxBytes: 1 << 30, maxAgeMs: 86_400_000 };

async function setup(t: Test, opts: { clock?: () => number; maxReadingsPerSec?: number; rows?: number } = {}) {
  const dir = t.testdir();
  const hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  t.teardown(() => hub.stop());
  const outbox = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits });
  await outbox.start();
  t.teardown(() => outbox.stop());
  const now = Date.now();
  if (opts.rows) {
    outbox.append(Array.from({ length: opts.rows }, (_, i) => ({ device: 'd', point: `p${i % 10}`, ts: now - opts.rows! + i, value: i, quality: 'good' as const })));
    await outbox.flush();
  }
  const uplink = new Uplink({
    gatewayId: 'gw-up', url: `mqtt://127.0.0.1:${hub.mqttPort}`, logger: silentLogger(), outbox, version: '9.9.9',
    batchSize: 500, window: 4, statusIntervalMs: 60_000, keepaliveS: 30, reconnect: { minMs: 50, maxMs: 200 },
    statusExtra: () => ({ devices: { 'flood-1': 'up' } }),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.maxReadingsPerSec ? { maxReadingsPerSec: opts.maxReadingsPerSec } : {}),
  });
  t.teardown(() => uplink.stop());
  return { hub, outbox, uplink };
}

t.test('the rate cap holds readings back until tokens accrue (injected clock)', async (t) => {
  let now = 1_000_000;
  const { outbox, uplink } = await setup(t, { clock: () => now, maxReadingsPerSec: 1000, rows: 4000 });
  await uplink.start();
  await waitFor(() => outbox.stats().acked === 1000, 'the first second worth of readings');
  // Without the clock moving, nothing more is admitted, however long we wait.
  await new Promise((r) => setTimeout(r, 700));
  t.equal(outbox.stats().acked, 1000, 'capped at 1000 readings while no time passes');
  now += 1000;
  await waitFor(() => outbox.stats().acked === 2000, 'one more second, one more thousand');
  now += 10_000;
  await waitFor(() => outbox.stats().acked === 3000, 'a long pause buys only one burst (bucket size = rate)');
  now += 1000;
  await waitFor(() => outbox.stats().acked === 4000, 'the rest');
  t.equal(outbox.stats().rows, 0);
  t.equal(uplink.stats().readingsAcked, 4000);
});

t.test('status is retained with backlog and devices; an abrupt disconnect publishes the offline will', async (t) => {
  const { hub, uplink } = await setup(t, { rows: 10 });
  const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: 'watcher', reconnectPeriod: 0 });
  t.teardown(() => watcher.endAsync(true));
  const seen: GatewayStatus[] = [];
  watcher.on('message', (_topic, payload) => seen.push(validateStatus(JSON.parse(payload.toString()))));
  await watcher.subscribeAsync(topics.status('gw-up'), { qos: 1 });

  await uplink.start();
  const online = await waitFor(() => seen.find((s) => s.state === 'online'), 'online status');
  t.equal(online.version, '9.9.9');
  t.same(online.devices, { 'flood-1': 'up' });
  t.type(online.backlog?.rows, 'number');
  await waitFor(async () => (await hub.store.listGateways()).find((g) => g.id === 'gw-up' && g.online), 'registry marks the gateway online');

  // The broker drops the connection without a DISCONNECT: the last will speaks.
  const clients = (hub.broker.instance as unknown as { clients: Record<string, { conn: { destroy(): void } }> }).clients;
  clients['gw-up']!.conn.destroy();
  await waitFor(() => seen.some((s) => s.state === 'offline'), 'offline will');
  // mqtt.js reconnects by itself, and the status says online again.
  await waitFor(() => seen.filter((s) => s.state === 'online').length >= 2, 'online again after the reconnect');
  t.ok(uplink.stats().connects >= 2, 'reconnected');
  await waitFor(async () => (await hub.store.listGateways()).find((g) => g.id === 'gw-up')?.online === true, 'registry online again');
});

t.test('a clean stop publishes offline itself', async (t) => {
  const { hub, uplink } = await setup(t);
  await uplink.start();
  await waitFor(() => uplink.connected, 'connected');
  await uplink.stop();
  const gw = await waitFor(async () => (await hub.store.listGateways()).find((g) => g.id === 'gw-up' && !g.online), 'offline in the registry');
  t.equal(gw.status?.state, 'offline');
});
