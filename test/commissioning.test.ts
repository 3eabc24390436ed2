/**
 * The commissioning walk-through of docs/technician.md, run as written: a
 * cabinet with two SDM120 meters on RS-485 (the RTU simulator behind a socat
 * pty pair) and a camera on OPC UA; a hub with authentication; the operator's
 * claim. Then the technician's five commands — scan --auto, device add (the
 * two meters), device add (the camera), provision, start the gateway — and the
 * IOC sees every point. Measures the time from the claim to the first
 * telemetry of all three devices at the IOC (target: five minutes; loopback,
 * so it is the gateway's and hub's share of it, not the typing).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { startGateway } from '../gateway/index.js';
import { gatewayCommands } from '../gateway/cli/index.js';
import { hubCommands } from '../hub/cli/index.js';
import { silentLogger } from '../lib/index.js';
import { api, startSecureHub, tempDir } from '../hub/test/support.js';
import { EastronSdm120 } from '../scripts/sim/rtu-devices.js';
import { RtuSlaveLine } from '../scripts/sim/rtu-slave.js';
import { PtyPair, attachToSerialPort } from '../scripts/sim/serial-adapters.js';
import { OpcuaCameraServer } from '../scripts/sim/opcua-camera-server.js';
import type { SimDevice } from '../scripts/sim/field-devices.js';
import { skipUnlessBinary } from './support/outside-binary.js';
import { waitFor } from './support/wait.js';

const socatSkip = skipUnlessBinary('socat', 'socat');

async function cli(line: string[]): Promise<{ code: number; out: string; err: string }> {
  const all = [...gatewayCommands, ...hubCommands].sort((a, b) => b.name.split(' ').length - a.name.split(' ').length);
  const cmd = all.find((c) => c.name.split(' ').every((w, i) => line[i] === w));
  if (!cmd) throw new Error(`no command ${line.join(' ')}`);
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void): Writable => new Writable({ write(chunk, _e, cb) { f(String(chunk)); cb(); } });
  const code = await cmd.run(line.slice(cmd.name.split(' ').length), { out: sink((s) => (out += s)), err: sink((s) => (err += s)) });
  return { code, out, err };
}

t.test('claim to telemetry at the IOC in five technician commands', { skip: socatSkip }, async (t) => {
  const dir = tempDir(t);
  const home = mkdtempSync(path.join(tmpdir(), 'ioc-edge-commissioning-'));
  process.env.HOME = home; // node-opcua's PKI
  t.teardown(() => rmSync(home, { recursive: true, force: true }));

  // The cabinet: two meters at 9600 8E1 on a pty, a camera server.
  const pair = new PtyPair(path.join(dir, 'ttyUSB0'), path.join(dir, 'ttySIM'));
  await pair.start();
  const line = new RtuSlaveLine(new Map<number, SimDevice>([[1, new EastronSdm120(0, 1)], [2, new EastronSdm120(0, 2)]]));
  const simLink = await attachToSerialPort(pair.b, line, 9600);
  const camera = new OpcuaCameraServer({ pkiDir: path.join(home, 'camera-pki') });
  await camera.start();
  t.teardown(async () => {
    line.close();
    await simLink.close();
    await pair.kill();
    await camera.stop();
  });

  // The IOC: a hub with authentication, an admin token, a claim for this gateway.
  const hub = await startSecureHub(t, { dataDir: path.join(dir, 'hub') });
  const apiUrl = `http://127.0.0.1:${hub.httpPort}`;
  const admin = /token \(shown once\): (\S+)/.exec((await cli(['token', 'create', '--data-dir', path.join(dir, 'hub'), '--name', 'ops', '--role', 'admin'])).out)![1]!;
  const claimOut = await cli(['claim', 'create', '--api', apiUrl, '--token', admin, '--site', 'riverside', '--gateway', 'gw-river-07', '--ttl', '2h']);
  t.equal(claimOut.code, 0, claimOut.err);
  const claim = /works once\): (\S+)/.exec(claimOut.out)![1]!;

  // The configuration the operator prepared: hub address and the two buses, no devices yet.
  const cfgFile = path.join(dir, 'gateway.json');
  await writeFile(cfgFile, JSON.stringify({
    gatewayId: 'gw-river-07', dataDir: path.join(dir, 'gw'),
    hub: { url: `mqtt://127.0.0.1:${hub.mqttPort}`, reconnectMinMs: 100, reconnectMaxMs: 500 },
    buses: [
      { id: 'rs485', type: 'modbus-rtu', path: pair.a, baudRate: 9600, parity: 'even' },
      { id: 'cams', type: 'opcua', endpointUrl: camera.endpointUrl, pkiDir: path.join(home, 'gw-pki'), devMode: true },
    ],
    devices: [],
    outbox: { flushIntervalMs: 50 },
  }, null, 2));

  const started = Date.now();
  const commands: string[][] = [
    ['scan', '--serial', pair.a, '--auto', '--baud', '9600', '--parity', 'even', '--units', '1-3'],
    ['device', 'add', '--config', cfgFile, '--bus', 'rs485', '--profile', 'eastron-sdm120', '--id', 'meter-1', '--unit-id', '1', '--id', 'meter-2', '--unit-id', '2'],
    ['device', 'add', '--config', cfgFile, '--bus', 'cams', '--profile', 'camera-health-opcua', '--id', 'cam-1'],
    ['provision', '--config', cfgFile, '--claim', claim],
  ];
  const outputs: string[] = [];
  for (const c of commands) {
    const r = await cli(c);
    t.equal(r.code, 0, `${c.slice(0, 2).join(' ')}: ${r.err}`);
    outputs.push(r.out);
  }
  t.match(outputs[0], /found 2 devices on .*ttyUSB0 at 9600 8E1: units 1, 2\nthis is the configured setting/);
  t.match(outputs[1], /added device meter-1 \(eastron-sdm120, unit 1 on bus rs485\)[\s\S]*added device meter-2/);
  t.match(outputs[2], /added device cam-1 \(camera-health-opcua, on OPC UA bus cams\)/);
  t.match(outputs[3], /OK: gateway gw-river-07 is registered at site riverside/);

  // Command 5: start the gateway (what `systemctl restart ioc-edge-gateway` runs).
  const gw = await startGateway({ config: JSON.parse(await readFile(cfgFile, 'utf8')) as Record<string, unknown>, source: cfgFile, logger: silentLogger() });
  t.teardown(() => gw.stop());
  const at = await waitFor(async () => {
    const items = (await api(hub, 'GET', '/api/v1/readings/latest?gateway=gw-river-07', { token: admin })).body.items as Array<{ device: string; quality: string }>;
    const good = new Set(items.filter((r) => r.quality === 'good').map((r) => r.device));
    return ['meter-1', 'meter-2', 'cam-1'].every((d) => good.has(d)) ? Date.now() : null;
  }, 'good values of all three devices at the IOC', 120_000);
  const seconds = (at - started) / 1000;
  t.comment(`claim to telemetry of three devices at the IOC: ${seconds.toFixed(1)} s of machine time (loaded machine), 5 commands`);
  t.ok(seconds < 300, 'within five minutes');
});
