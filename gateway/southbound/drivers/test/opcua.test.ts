/**
 * OPC UA: one camera server for the whole file (node-opcua's start-up is the
 * slow part), clients on separate PKI folders. HOME points at a temporary
 * folder so nothing lands in the user's home.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { GatewayEvent, Reading } from '../../../../contract/index.js';
import { PROFILES_DIR, loadProfileFile, type OpcuaProfile } from '../../../../device-profiles/index.js';
import { OpcuaCameraServer } from '../../../../scripts/sim/opcua-camera-server.js';
import type { OpcuaBusConfig } from '../../../config.js';
import { OpcuaLine } from '../opcua-line.js';
import { captureLogger, WARN } from './log-capture.js';
import { until } from './rtu-harness.js';
import { captureIo } from '../../../../test/support/capture-io.js';

const home = mkdtempSync(path.join(tmpdir(), 'ioc-edge-opcua-'));
process.env.HOME = home;
t.teardown(() => rmSync(home, { recursive: true, force: true }));

const USER = { username: 'gateway', password: 's3cret' };
const server = new OpcuaCameraServer({ pkiDir: path.join(home, 'server-pki'), cameras: 2, user: USER, tickMs: 50 });
await server.start();
t.teardown(() => server.stop());
const camera = (await loadProfileFile(path.join(PROFILES_DIR, 'camera-health-opcua.json'))) as OpcuaProfile;

let n = 0;
function bus(extra: Partial<OpcuaBusConfig> = {}): OpcuaBusConfig {
  n++;
  return {
    id: `ua${n}`, type: 'opcua', endpointUrl: server.endpointUrl, securityMode: 'None', securityPolicy: 'None', trustList: [], pkiDir: path.join(home, `client-pki-${n}`),
    devMode: false, timeoutMs: 3000, reconnectMinMs: 100, reconnectMaxMs: 500, username: USER.username, password: USER.password, ...extra,
  };
}

interface Rig {
  line: OpcuaLine;
  readings: Reading[];
  events: GatewayEvent[];
  lines: ReturnType<typeof captureLogger>['lines'];
}

async function rig(tt: Test, config: OpcuaBusConfig, profile: OpcuaProfile = camera, deviceId = 'cam-1'): Promise<Rig & { device: ReturnType<OpcuaLine['addDevice']> }> {
  const { logger, lines } = captureLogger('info');
  const readings: Reading[] = [];
  const events: GatewayEvent[] = [];
  const onEvent = (e: GatewayEvent): void => void events.push(e);
  const line = new OpcuaLine({ config, logger, onEvent });
  const device = line.addDevice({ device: { id: deviceId, bus: config.id, profile: profile.model, unitId: 1, enabled: true }, profile, logger, onReadings: (r) => readings.push(...r), onEvent });
  await line.start();
  tt.teardown(() => line.stop());
  return { line, device, readings, events, lines };
}

const latest = (readings: Reading[], point: string): Reading | undefined => readings.filter((r) => r.point === point).at(-1);

t.test('values flow through a subscription; a server restart re-creates it and values flow again', async (t) => {
  const { readings, events, device, line } = await rig(t, bus());
  await until(() => camera.points.every((p) => readings.some((r) => r.point === p.name)), 'a reading of every point', 10_000);
  t.equal(device.health, 'up');
  t.equal(latest(readings, 'online')?.value, true);
  t.equal(latest(readings, 'recording')?.quality, 'good');
  await until(() => readings.filter((r) => r.point === 'uptime').length >= 1 && readings.filter((r) => r.point === 'bitrate').length >= 3, 'changing values');

  await server.stop();
  await until(() => events.find((e) => e.type === 'device.down'), 'device.down after the server stopped', 10_000);
  t.match(events.find((e) => e.type === 'device.down'), { code: /GW_ERR_OPCUA_(SESSION|CONNECT)/, device: 'cam-1' });
  t.ok(readings.some((r) => r.point === 'online' && r.quality === 'stale' && r.value === true), 'points stale, last value kept');
  const before = readings.length;
  await server.start();
  await until(() => events.find((e) => e.type === 'device.up'), 'device.up after the restart', 10_000);
  await until(() => readings.slice(before).some((r) => r.point === 'bitrate' && r.quality === 'good'), 'values flowing again after the restart', 10_000);
  t.ok(events.find((e) => e.type === 'bus.up'), 'bus.up');
  t.equal(line.sessions, 2, 'a new session with re-created monitored items');
});

t.test('unknown nodes make only their point bad; reported changes respect the deadband', async (t) => {
  const profile = {
    ...camera,
    model: 'camera-bad-node',
    points: [...camera.points.filter((p) => p.name !== 'last_error'), { name: 'ghost', nodeId: 's=Camera.NoSuchNode', type: 'float64', scale: 1, offset: 0, writable: false }],
  } as OpcuaProfile;
  const { readings, events, lines } = await rig(t, bus(), profile, 'cam-ghost');
  await until(() => events.find((e) => e.type === 'driver.fault' && e.code === 'GW_ERR_OPCUA_NODE'), 'fault for the unknown node', 10_000);
  t.match(events.find((e) => e.code === 'GW_ERR_OPCUA_NODE'), { message: /point 'ghost'/ });
  t.ok(lines.some((l) => l.level === WARN && l.code === 'GW_ERR_OPCUA_NODE'), 'warn log line with the code');
  t.equal(latest(readings, 'ghost')?.quality, 'bad');
  await until(() => latest(readings, 'online')?.quality === 'good', 'the other points are good');
  await until(() => readings.filter((r) => r.point === 'bitrate').length >= 4, 'bitrate changes');
  const bitrates = readings.filter((r) => r.point === 'bitrate' && r.quality === 'good').map((r) => r.value as number);
  t.ok(bitrates.slice(1).every((v, i) => Math.abs(v - (bitrates[i] as number)) >= 50), `bitrate changes of at least the 50 kbit/s deadband: ${bitrates.join(', ')}`);
});

t.test('writes: writable points only, value checked, the server receives it', async (t) => {
  const { device } = await rig(t, bus());
  await until(() => device.health === 'up', 'up', 10_000);
  await device.write('heater_on', true);
  t.equal(server.cameras[0]?.heater, true);
  t.match(server.writes.at(-1), { nodeId: 's=Camera.Housing.Heater', value: true });
  await t.rejects(device.write('heater_on', 'on'), { code: 'GW_ERR_WRITE_VALUE' });
  await t.rejects(device.write('online', false), { code: 'GW_ERR_WRITE_REFUSED', message: /not writable/ });
  await t.rejects(device.write('nope', 1), { code: 'GW_ERR_WRITE_REFUSED' });
});

t.test('security: an untrusted server certificate is refused; trusted, SignAndEncrypt works; a bad password is refused', async (t) => {
  const untrusted = await rig(t, bus({ securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256' }), camera, 'cam-untrusted');
  await until(() => untrusted.events.find((e) => e.type === 'bus.down'), 'bus.down', 20_000);
  t.match(untrusted.events.find((e) => e.type === 'bus.down'), { code: 'GW_ERR_OPCUA_CERT_UNTRUSTED', message: /not trusted.*trustList/ });
  t.match(untrusted.events.find((e) => e.type === 'device.down'), { code: 'GW_ERR_OPCUA_CERT_UNTRUSTED' });
  t.ok(untrusted.lines.some((l) => l.level === WARN && l.code === 'GW_ERR_OPCUA_CERT_UNTRUSTED'), 'warn log line with the code');
  t.equal(untrusted.device.health, 'down');

  const trusted = await rig(t, bus({ securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', trustList: [server.certificateFile] }), camera, 'cam-secure');
  await until(() => latest(trusted.readings, 'online')?.quality === 'good', 'values over SignAndEncrypt with the server in the trust list', 20_000);

  // Sign mode with the gateway's own certificate files (the ones the previous client created).
  const pki = (trusted.line as unknown as { deps: { config: OpcuaBusConfig } }).deps.config.pkiDir;
  const signed = await rig(t, bus({
    securityMode: 'Sign', securityPolicy: 'Basic256Sha256', trustList: [server.certificateFile],
    certificateFile: path.join(pki, 'own', 'certs', 'client_certificate.pem'), privateKeyFile: path.join(pki, 'own', 'private', 'private_key.pem'),
  }), camera, 'cam-signed');
  await until(() => latest(signed.readings, 'online')?.quality === 'good', 'values over Sign with a configured client certificate', 20_000);

  const dev = await rig(t, bus({ securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', devMode: true }), camera, 'cam-devmode');
  await until(() => latest(dev.readings, 'online')?.quality === 'good', 'devMode trusts an unknown server', 20_000);
  t.ok(dev.lines.some((l) => l.level === WARN && /devMode/.test(l.msg)), 'devMode is logged as a warning');

  const wrong = await rig(t, bus({ password: 'guess' }), camera, 'cam-intruder');
  await until(() => wrong.events.find((e) => e.type === 'bus.down'), 'bus.down for a bad password', 10_000);
  t.match(wrong.events.find((e) => e.type === 'bus.down'), { code: 'GW_ERR_OPCUA_AUTH' });
  t.equal(untrusted.events.filter((e) => e.type === 'bus.down').length, 1, 'reported once, not at every retry');
});

t.test('through startGateway: the OPC UA bus is built lazily, readings and writePoint work', async (t) => {
  const { startGateway } = await import('../../../index.js');
  const { silentLogger } = await import('../../../../lib/index.js');
  const dir = t.testdir();
  const gw = await startGateway({
    source: '<test>',
    logger: silentLogger(),
    config: {
      gatewayId: 'gw-ua-01',
      dataDir: path.join(dir, 'gw'),
      hub: { url: 'mqtt://127.0.0.1:1', reconnectMinMs: 1000, reconnectMaxMs: 5000 },
      buses: [{ id: 'vms', type: 'opcua', endpointUrl: server.endpointUrl, username: USER.username, password: USER.password, reconnectMinMs: 100 }],
      devices: [{ id: 'cam-7', bus: 'vms', profile: 'camera-health-opcua' }],
    },
  });
  t.teardown(() => gw.stop());
  const readings: Reading[] = [];
  gw.bus.on('readings', (r: Reading[]) => readings.push(...r));
  await until(() => latest(readings, 'online')?.quality === 'good', 'readings from the OPC UA device', 10_000);
  t.equal(gw.devices()['cam-7'], 'up');
  await gw.writePoint('cam-7', 'heater_on', false);
  t.equal(server.cameras[0]?.heater, false);
  t.equal(gw.config.buses[0]?.type === 'opcua' && gw.config.buses[0].pkiDir, path.join(dir, 'gw', 'pki', 'vms'), 'PKI under the data folder by default');
});

t.test('CLI: scan --opcua browses the address space, probe --opcua reads a profile once', async (t) => {
  const { scan } = await import('../../../cli/scan.js');
  const { probe } = await import('../../../cli/probe.js');
  const auth = ['--user', USER.username, '--password', USER.password, '--pki-dir', path.join(home, 'cli-pki')];
  const s = captureIo();
  t.equal(await scan.run(['--opcua', server.endpointUrl, ...auth], s), 0, s.errText());
  t.match(s.text(), /ns=2 urn:ioc-edge:camera/);
  t.match(s.text(), /^Camera\/  ns=2;s=Camera$/m);
  t.match(s.text(), /^  Online  ns=2;s=Camera\.Online  Boolean = true$/m);
  t.match(s.text(), /^  FrameRate  ns=2;s=Camera\.Stream\.FrameRate  Double = [\d.]+$/m);
  const p = captureIo();
  t.equal(await probe.run(['--profile', 'camera-health-opcua', '--opcua', server.endpointUrl, ...auth], p), 0, p.errText());
  t.match(p.text(), /^online\s+true\s+Good\s+ns=2;s=Camera\.Online\s+true$/m);
  t.match(p.text(), /10\/10 points read from opc\.tcp:\/\/127\.0\.0\.1:\d+\/UA\/Camera with profile camera-health-opcua/);
  const denied = captureIo();
  t.equal(await scan.run(['--opcua', server.endpointUrl, '--user', 'x', '--password', 'y', '--pki-dir', path.join(home, 'cli-pki')], denied), 2);
  t.match(denied.errText(), /GW_ERR_OPCUA_AUTH/);
  // An untrusted server certificate: the message names probe's own --trust flag, not a configuration's trustList (issue 14.8).
  const untrusted = captureIo();
  t.equal(await probe.run(['--profile', 'camera-health-opcua', '--opcua', server.endpointUrl, ...auth, '--security-mode', 'SignAndEncrypt', '--pki-dir', path.join(home, 'cli-pki-untrusted')], untrusted), 2);
  t.match(untrusted.errText(), /GW_ERR_OPCUA_CERT_UNTRUSTED/);
  t.match(untrusted.errText(), /--trust FILE\.pem/);
  t.notMatch(untrusted.errText(), /trustList/);
  const trusted = captureIo();
  t.equal(await probe.run(['--profile', 'camera-health-opcua', '--opcua', server.endpointUrl, ...auth, '--security-mode', 'SignAndEncrypt', '--pki-dir', path.join(home, 'cli-pki-trusted'), '--trust', server.certificateFile], trusted), 0, trusted.errText());
});
