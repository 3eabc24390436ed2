/**
 * Issue 14.1: an OPC UA server whose values never change must never look
 * lost. With nothing changing, the only traffic on the connection is one
 * keep-alive publish response per keep-alive period (publishing interval ×
 * max keep-alive count, OPC UA Part 4 §5.13.1.1); the bug was a transport
 * timeout (the bus `timeoutMs`) shorter than that period.
 *
 * Why a short period is equivalent to the field case: the failure depends only
 * on the ratio between the keep-alive period and the transport timeout, not on
 * their absolute size. The field case was a 500 ms × 10 = 5 s keep-alive
 * against a 5 s timeout; here a 100 ms × 10 = 1 s keep-alive meets a bus
 * `timeoutMs` of 400 ms (shorter than the period, as in the field), and the
 * test waits for six keep-alives in a row — six quiet periods, where the old
 * code reconnected within the first — which is what 60 s of a steady camera
 * is at 5 s periods (twelve), at a sixth of the wall time. It waits on the
 * keep-alive messages themselves, not on a clock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { GatewayEvent, Reading } from '../../../../contract/index.js';
import { PROFILES_DIR, loadProfileFile, type OpcuaProfile } from '../../../../device-profiles/index.js';
import { OpcuaCameraServer } from '../../../../scripts/sim/opcua-camera-server.js';
import type { OpcuaBusConfig } from '../../../config.js';
import { OpcuaLine, transportTimeoutFor } from '../opcua-line.js';
import { captureLogger } from './log-capture.js';
import { until } from './rtu-harness.js';

const home = mkdtempSync(path.join(tmpdir(), 'ioc-edge-opcua-quiet-'));
process.env.HOME = home;
t.teardown(() => rmSync(home, { recursive: true, force: true }));

t.test('transport timeout is derived from the keep-alive period, not the request timeout', async (t) => {
  t.equal(transportTimeoutFor(5000, 5000), 15_000, 'the field case: 500 ms × 10 keep-alive, 5 s requests');
  t.ok(transportTimeoutFor(1000, 400) > 2 * 1000, 'always more than two keep-alive periods');
});

t.test('a server whose values never change: zero reconnects, zero device or bus events', async (t) => {
  const server = new OpcuaCameraServer({ pkiDir: path.join(home, 'server-pki') });
  await server.start();
  t.teardown(() => server.stop());
  server.silent(true); // values frozen from the start: no data change after the initial values

  const camera = (await loadProfileFile(path.join(PROFILES_DIR, 'camera-health-opcua.json'))) as OpcuaProfile;
  const quiet = { ...camera, opcua: { ...camera.opcua, publishingIntervalMs: 100, samplingIntervalMs: 50 } } as OpcuaProfile;
  const config: OpcuaBusConfig = {
    id: 'ua-quiet', type: 'opcua', endpointUrl: server.endpointUrl, securityMode: 'None', securityPolicy: 'None', trustList: [],
    pkiDir: path.join(home, 'client-pki'), devMode: false, timeoutMs: 400, reconnectMinMs: 100, reconnectMaxMs: 500,
  };
  const { logger, lines } = captureLogger('info');
  const readings: Reading[] = [];
  const events: GatewayEvent[] = [];
  const onEvent = (e: GatewayEvent): void => void events.push(e);
  const line = new OpcuaLine({ config, logger, onEvent });
  const device = line.addDevice({ device: { id: 'cam-quiet', bus: config.id, profile: quiet.model, unitId: 1, enabled: true }, profile: quiet, logger, onReadings: (r) => readings.push(...r), onEvent });
  await line.start();
  t.teardown(() => line.stop());

  await until(() => camera.points.every((p) => readings.some((r) => r.point === p.name)), 'the initial value of every point', 15_000);
  t.equal(device.health, 'up');
  const keepAliveMs = 100 * 10;
  t.ok(line.transportTimeoutMs > keepAliveMs, `transport timeout ${line.transportTimeoutMs} ms exceeds the keep-alive period ${keepAliveMs} ms`);
  const start = line.keepAlives;
  const readingsBefore = readings.length;
  // Six keep-alive periods with nothing but keep-alives on the wire (bounded: 6 s of keep-alives plus a margin for a loaded machine).
  await until(() => line.keepAlives >= start + 6 || line.sessions > 1 || events.length > 0, 'six keep-alives in a row', 30_000);
  t.equal(line.sessions, 1, 'no reconnection');
  t.same(events.map((e) => `${e.type} ${e.code ?? ''}`), [], 'no device.down / bus.down / bus.up / device.up');
  t.equal(device.health, 'up');
  t.same(readings.slice(readingsBefore).filter((r) => r.quality !== 'good'), [], 'no value re-stored as stale or bad');
  t.notOk(lines.some((l) => l.code === 'GW_ERR_OPCUA_SESSION'), 'no "connection lost" log line');
});

t.test('heartbeat: a subscription that says nothing still has its steady values re-sent (issue 14.4)', async (t) => {
  const server = new OpcuaCameraServer({ pkiDir: path.join(home, 'server-pki-hb') });
  await server.start();
  t.teardown(() => server.stop());
  server.silent(true);
  const camera = (await loadProfileFile(path.join(PROFILES_DIR, 'camera-health-opcua.json'))) as OpcuaProfile;
  const beating = { ...camera, heartbeatS: 1 } as OpcuaProfile;
  const config: OpcuaBusConfig = {
    id: 'ua-hb', type: 'opcua', endpointUrl: server.endpointUrl, securityMode: 'None', securityPolicy: 'None', trustList: [],
    pkiDir: path.join(home, 'client-pki-hb'), devMode: false, timeoutMs: 2000, reconnectMinMs: 100, reconnectMaxMs: 500,
  };
  const readings: Reading[] = [];
  const line = new OpcuaLine({ config, logger: captureLogger('info').logger, onEvent: () => undefined });
  line.addDevice({ device: { id: 'cam-hb', bus: config.id, profile: beating.model, unitId: 1, enabled: true }, profile: beating, logger: captureLogger('info').logger, onReadings: (r) => readings.push(...r), onEvent: () => undefined });
  await line.start();
  t.teardown(() => line.stop());
  const count = (p: string): number => readings.filter((r) => r.point === p).length;
  await until(() => camera.points.every((p) => count(p.name) >= 3), 'each point reported three times with nothing changing', 20_000);
  const online = readings.filter((r) => r.point === 'online');
  t.ok(online.every((r) => r.value === true && r.quality === 'good'), 'the same good value, re-sent');
  t.ok((online[2]?.ts ?? 0) > (online[0]?.ts ?? 0), 'each with its own time');
});
