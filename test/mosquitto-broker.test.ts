/**
 * A gateway pointed at another broker (issue 14.9, docs/deploy.md "Another
 * MQTT broker"): a real Eclipse Mosquitto with a password file, the gateway
 * configured with hub.url, hub.username and hub.password only. A backlog made
 * while the broker is down drains on the broker's PUBACKs, and telemetry
 * (schema-valid batches, the backlog included) reaches an MQTT subscriber.
 */
import t from 'tap';
import mqtt from 'mqtt';
import { topics, validateTelemetryBatch } from '../contract/index.js';
import { freePort } from '../scripts/sim/free-port.js';
import { mosquittoMissing, startMosquitto } from './support/mosquitto.js';
import { gatewayConfig, startSim, startTestGateway } from './support/stack.js';
import { waitFor } from './support/wait.js';

t.test('gateway → Mosquitto with username/password: backlog drains on PUBACK, telemetry arrives', { skip: mosquittoMissing() }, async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  const port = await freePort();
  const config = gatewayConfig(dir, port, sim.port, {});
  (config.hub as Record<string, unknown>).username = 'gw-test-01';
  (config.hub as Record<string, unknown>).password = 'cabinet-secret';
  const gw = await startTestGateway(t, config);

  // The broker is not there yet: readings wait in the outbox.
  await waitFor(() => gw.outbox.stats().rows >= 200, 'a backlog in the outbox while the broker is down');
  // Counted before the broker starts: the backlog can drain within the moment it takes to see the login.
  const ackedBefore = gw.outbox.stats().acked;
  const brokerUpAt = Date.now();
  const mosq = await startMosquitto(t, { port, users: { 'gw-test-01': 'cabinet-secret', ioc: 'reader-secret' } });

  const ioc = await mqtt.connectAsync(mosq.url, { clientId: 'ioc-reader', username: 'ioc', password: 'reader-secret', reconnectPeriod: 0 });
  t.teardown(() => ioc.endAsync(true));
  const readings: Array<{ device: string; ts: number }> = [];
  ioc.on('message', (_topic, payload) => readings.push(...validateTelemetryBatch(JSON.parse(payload.toString())).readings));
  await ioc.subscribeAsync(topics.telemetry('gw-test-01'), { qos: 1 });

  await waitFor(() => gw.uplink.connected, 'the gateway logged in to Mosquitto');
  await waitFor(() => gw.outbox.stats().rows < 100 && gw.outbox.stats().acked >= 200, 'the backlog drained on Mosquitto\'s PUBACKs', 20_000);
  t.ok(gw.outbox.stats().acked - ackedBefore >= 200, 'at least the backlog was acknowledged and deleted');
  // Deleted only on PUBACK (the uplink counts PUBACKs before the outbox deletes: live polling goes on meanwhile).
  const deleted = gw.outbox.stats().acked;
  t.ok(deleted <= gw.uplink.stats().readingsAcked, `every deleted reading was acknowledged by the broker (${deleted} deleted)`);
  await waitFor(() => readings.some((r) => r.device === 'flood-1' && r.ts > brokerUpAt) && readings.some((r) => r.device === 'tsc-1'), 'live telemetry of both devices at the subscriber');
  t.match(mosq.log(), /New client connected .* as gw-test-01 .*u'gw-test-01'/, 'Mosquitto saw the configured username');
});

t.test('a wrong password is refused by Mosquitto and named in the uplink\'s last error', { skip: mosquittoMissing() }, async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  const mosq = await startMosquitto(t, { users: { 'gw-test-01': 'cabinet-secret' } });
  const config = gatewayConfig(dir, mosq.port, sim.port, {});
  (config.hub as Record<string, unknown>).username = 'gw-test-01';
  (config.hub as Record<string, unknown>).password = 'wrong';
  const gw = await startTestGateway(t, config);
  const err = await waitFor(() => gw.uplink.stats().lastError, 'a refused login');
  t.match(err, /Not authorized|Bad username or password/i);
  t.notOk(gw.uplink.connected);
});
