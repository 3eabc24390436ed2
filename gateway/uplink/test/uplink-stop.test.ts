/**
 * A clean stop (issue 14.6): the gateway publishes its offline status, then
 * sends MQTT DISCONNECT before its socket closes, so the broker discards the
 * last will and the retained status ends as the gateway's own offline message
 * (newer than the will's). Against our hub (Aedes) and a real Mosquitto.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import mqtt from 'mqtt';
import { topics, type GatewayStatus } from '../../../contract/index.js';
import { silentLogger } from '../../../lib/index.js';
import { startHub } from '../../../hub/index.js';
import { SqliteOutbox } from '../../outbox/sqlite-outbox.js';
import { Uplink } from '../uplink.js';
import { waitFor } from '../../../test/support/wait.js';
import { mosquittoMissing, startMosquitto } from '../../../test/support/mosquitto.js';

const GW = 'gw-stop';
const limits = { maxRows: 1_000_000, maxBytes: 1 << 30, maxAgeMs: 86_400_000 };

async function cleanStop(t: Test, url: string): Promise<void> {
  const dir = t.testdir();
  const outbox = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits });
  await outbox.start();
  t.teardown(() => outbox.stop());
  const now = Date.now();
  // A backlog, so batches are in flight around the stop.
  outbox.append(Array.from({ length: 5000 }, (_, i) => ({ device: 'd', point: `p${i % 10}`, ts: now - 5000 + i, value: i, quality: 'good' as const })));
  await outbox.flush();
  const uplink = new Uplink({
    gatewayId: GW, url, logger: silentLogger(), outbox, version: '9.9.9',
    batchSize: 100, window: 8, statusIntervalMs: 60_000, keepaliveS: 30, reconnect: { minMs: 50, maxMs: 200 },
  });
  t.teardown(() => uplink.stop());

  const watcher = await mqtt.connectAsync(url, { clientId: 'watcher-stop', reconnectPeriod: 0 });
  t.teardown(() => watcher.endAsync(true));
  const seen: GatewayStatus[] = [];
  let markers = 0;
  watcher.on('message', (topic, payload) => {
    if (topic === 'test/marker') markers++;
    else seen.push(JSON.parse(payload.toString()) as GatewayStatus);
  });
  await watcher.subscribeAsync([topics.status(GW), 'test/marker'], { qos: 1 });

  await uplink.start();
  await waitFor(() => seen.some((s) => s.state === 'online'), 'online status');
  await waitFor(() => outbox.stats().acked > 0, 'a first batch acknowledged');
  const stopAt = Date.now();
  await uplink.stop();
  // The gateway's socket is closed by now: a message through the broker after this is ordered after any will.
  await watcher.publishAsync('test/marker', 'after-stop', { qos: 1 });
  await waitFor(() => markers === 1, 'the marker back through the broker');
  await waitFor(() => seen.some((s) => s.state === 'offline'), 'offline status');
  const offline = seen.filter((s) => s.state === 'offline');
  t.equal(offline.length, 1, 'exactly one offline status: the gateway\'s own, no last will');
  t.ok(offline[0]!.ts >= stopAt, 'the offline status was written at stop (not the will, stamped at connect)');

  // A newcomer reads the retained status: the gateway's own offline message.
  const fresh = await mqtt.connectAsync(url, { clientId: 'fresh-stop', reconnectPeriod: 0 });
  t.teardown(() => fresh.endAsync(true));
  const retained: GatewayStatus[] = [];
  fresh.on('message', (_topic, payload, packet) => packet.retain && retained.push(JSON.parse(payload.toString()) as GatewayStatus));
  await fresh.subscribeAsync(topics.status(GW), { qos: 1 });
  const r = await waitFor(() => retained[0], 'the retained status');
  t.equal(r.state, 'offline');
  t.equal(r.ts, offline[0]!.ts, 'retained status is the stop\'s offline message, with its newer timestamp');
}

t.test('clean stop against our hub (Aedes): offline, DISCONNECT, no will', async (t) => {
  const hub = await startHub({ dataDir: path.join(t.testdir(), 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  t.teardown(() => hub.stop());
  await cleanStop(t, `mqtt://127.0.0.1:${hub.mqttPort}`);
});

t.test('clean stop against a real Mosquitto: offline, DISCONNECT, no will', { skip: mosquittoMissing() }, async (t) => {
  const mosq = await startMosquitto(t);
  await cleanStop(t, mosq.url);
  // Mosquitto logs a client that sent DISCONNECT as "disconnected", one whose socket just closed as "closed its connection".
  await waitFor(() => /Client gw-stop disconnected/.test(mosq.log()), 'mosquitto logs the gateway\'s DISCONNECT');
  t.notMatch(mosq.log(), /Client gw-stop closed its connection/, 'no connection closed without DISCONNECT');
});
