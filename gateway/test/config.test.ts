/** Gateway configuration: schema + second-pass checks, errors naming file, pointer and reason. */
import t from 'tap';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { isIocError, type IocError } from '../../contract/index.js';
import { loadGatewayConfig, parseGatewayConfig, type ModbusTcpBusConfig } from '../config.js';
import { runCli } from '../../test/support/cli.js';

const base = () => ({
  gatewayId: 'gw-1',
  hub: { url: 'mqtt://127.0.0.1:1883' },
  buses: [{ id: 'lan', type: 'modbus-tcp', host: '10.0.0.5', port: 502 }],
  devices: [{ id: 'flood-1', bus: 'lan', unitId: 1, profile: 'flood-level-sensor' }],
});
const profiles = new Set(['flood-level-sensor', 'traffic-signal-controller']);

function problems(fn: () => unknown): Array<{ pointer: string; message: string }> {
  try {
    fn();
  } catch (err) {
    if (isIocError(err, 'CONFIG_ERR_INVALID')) return (err.context.problems as Array<{ pointer: string; message: string }>) ?? [];
    throw err;
  }
  throw new Error('expected CONFIG_ERR_INVALID');
}

t.test('a valid configuration gets its defaults and is frozen', async (t) => {
  const cfg = parseGatewayConfig(base(), '/etc/ioc-edge/gw.json', { profiles });
  t.equal(cfg.devices[0]!.enabled, true);
  t.equal((cfg.buses[0] as ModbusTcpBusConfig).timeoutMs, 1000, 'Modbus timeout defaults to 1 s, never infinite');
  t.equal(cfg.outbox.maxBytes, 1073741824, '1 GiB outbox by default');
  t.equal(cfg.outbox.maxAgeS, 7 * 86400, '7 days by default');
  t.equal(cfg.dataDir, path.resolve('/etc/ioc-edge', 'data/gateway'), 'dataDir relative to the file');
  t.ok(Object.isFrozen(cfg.hub), 'deep-frozen');
});

t.test('schema errors name the pointer and the reason', async (t) => {
  const doc = base() as Record<string, unknown>;
  (doc.hub as Record<string, unknown>).urll = 'x';
  (doc.buses as Array<Record<string, unknown>>)[0]!.port = 70000;
  (doc.devices as Array<Record<string, unknown>>)[0]!.unitId = 300;
  const p = problems(() => parseGatewayConfig(doc, 'gw.json'));
  const sorted = [...p].sort((a, b) => a.pointer.localeCompare(b.pointer));
  t.match(sorted, [
    { pointer: '/buses/0/port', message: /<= 65535/ },
    { pointer: '/devices/0/unitId', message: /<= 255/ },
    { pointer: '/hub', message: /additional properties 'urll'/ },
  ], 'all three problems reported');
  t.equal(p.length, 3);
  try {
    parseGatewayConfig(doc, 'gw.json');
  } catch (err) {
    t.match((err as IocError).message, /gw\.json: \/buses\/0\/port: must be <= 65535/, 'message lines read FILE: POINTER: REASON');
  }
});

t.test('cross-reference errors: unknown bus and profile, duplicate ids and unit ids', async (t) => {
  const doc = base();
  doc.devices.push({ id: 'flood-1', bus: 'lan', unitId: 1, profile: 'no-such-model' });
  doc.devices.push({ id: 'x', bus: 'rs485', unitId: 2, profile: 'flood-level-sensor' });
  doc.buses.push({ id: 'lan', type: 'modbus-tcp', host: 'h', port: 1 });
  const p = problems(() => parseGatewayConfig(doc, 'gw.json', { profiles }));
  t.same(p.map((x) => x.pointer).sort(), ['/buses/1/id', '/devices/1/id', '/devices/1/profile', '/devices/1/unitId', '/devices/2/bus']);
  t.match(p.find((x) => x.pointer === '/devices/2/bus')!.message, /unknown bus 'rs485'/);
  t.match(p.find((x) => x.pointer === '/devices/1/profile')!.message, /unknown device profile 'no-such-model'/);
});

t.test('files: unreadable and malformed JSON', async (t) => {
  const dir = t.testdir({ 'bad.json': '{ "gatewayId": ', 'ok.json': JSON.stringify(base()) });
  await t.rejects(loadGatewayConfig(path.join(dir, 'missing.json')), { code: 'CONFIG_ERR_READ' });
  await t.rejects(loadGatewayConfig(path.join(dir, 'bad.json')), { code: 'CONFIG_ERR_INVALID', message: /bad\.json: \/: not valid JSON/ });
  const cfg = await loadGatewayConfig(path.join(dir, 'ok.json'));
  t.equal(cfg.dataDir, path.join(dir, 'data/gateway'));
});


t.test('ioc-edge run refuses to start on a bad config or a bad profile, naming file, pointer and reason', async (t) => {
  const dir = t.testdir({
    profiles: { 'broken-model.json': JSON.stringify({ model: 'broken-model', manufacturer: 'x', protocol: 'modbus', points: [{ name: 'a', table: 'holding', address: 70000, type: 'uint16' }] }) },
  });
  const cfgFile = path.join(dir, 'gw.json');
  const doc = base() as Record<string, unknown>;
  (doc.devices as Array<Record<string, unknown>>)[0]!.bus = 'nope';
  await writeFile(cfgFile, JSON.stringify(doc));
  const r1 = await runCli(['run', '--config', cfgFile]);
  t.equal(r1.code, 1);
  t.match(r1.err, /gateway not started/);
  t.match(r1.err, new RegExp(`${cfgFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: /devices/0/bus: unknown bus 'nope'`));

  (doc.devices as Array<Record<string, unknown>>)[0]!.bus = 'lan';
  doc.profileDirs = ['profiles'];
  await writeFile(cfgFile, JSON.stringify(doc));
  const r2 = await runCli(['run', '--config', cfgFile]);
  t.equal(r2.code, 1);
  t.match(r2.err, /broken-model\.json: \/points\/0\/address: must be <= 65535/);

  const r3 = await runCli(['run']);
  t.equal(r3.code, 2, 'usage error');
  t.match(r3.err, /--config is required/);
  const r4 = await runCli(['frobnicate']);
  t.equal(r4.code, 2);
  t.match(r4.err, /unknown command 'frobnicate'/);
});

t.test('ioc-edge profile validate', async (t) => {
  const dir = t.testdir({ 'x.json': '{"model": 1}' });
  const ok = await runCli(['profile', 'validate', path.resolve('device-profiles/flood-level-sensor.json')]);
  t.equal(ok.code, 0);
  t.match(ok.out, /^ok .*flood-level-sensor/);
  const bad = await runCli(['profile', 'validate', path.join(dir, 'x.json')]);
  t.equal(bad.code, 1);
  t.match(bad.err, /x\.json: \/model: must be string/);
});
