import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { isIocError } from '../../../../contract/index.js';
import { parseGatewayConfig, type ModbusRtuBusConfig, type OpcuaBusConfig, type SerialLineBusConfig } from '../../../config.js';
import { loadProfiles } from '../../../gateway.js';

const profiles = await loadProfiles();

function doc(buses: Record<string, unknown>[], devices: Record<string, unknown>[] = []): Record<string, unknown> {
  return { gatewayId: 'gw-1', hub: { url: 'mqtt://127.0.0.1:1883' }, buses, devices };
}

function problems(d: unknown): [string, string][] {
  try {
    parseGatewayConfig(d, '/etc/ioc-edge/gw.json', { profiles });
  } catch (err) {
    if (isIocError(err, 'CONFIG_ERR_INVALID')) return (err.context.problems as { pointer: string; message: string }[]).map((p) => [p.pointer, p.message]);
    throw err;
  }
  return [];
}

t.test('new bus types get their defaults', async (t) => {
  const cfg = parseGatewayConfig(doc([
    { id: 'rs485', type: 'modbus-rtu', path: '/dev/ttyUSB0' },
    { id: 'conv', type: 'modbus-rtu-tcp', host: '10.0.0.5', port: 4001 },
    { id: 'com1', type: 'serial-line', path: '/dev/ttyS1', baudRate: 4800 },
    { id: 'vms', type: 'opcua', endpointUrl: 'opc.tcp://10.0.0.9:4840', securityMode: 'SignAndEncrypt', trustList: ['pki/vms.pem'] },
  ]), '/etc/ioc-edge/gw.json', { profiles });
  const [rtu, conv, com1, vms] = cfg.buses as [ModbusRtuBusConfig, Record<string, unknown>, SerialLineBusConfig, OpcuaBusConfig];
  t.match(rtu, { baudRate: 9600, parity: 'even', dataBits: 8, stopBits: 1, timeoutMs: 1000, retries: 1, interFrameDelayMs: 0 }, 'Modbus serial line defaults: 9600 8E1 (Modbus over Serial Line v1.02 §2.5.1)');
  t.match(conv, { baudRate: 9600, timeoutMs: 1000, retries: 1, interFrameDelayMs: 0 });
  t.match(com1, { baudRate: 4800, parity: 'none', dataBits: 8, stopBits: 1 });
  t.match(vms, { securityPolicy: 'Basic256Sha256', devMode: false, pkiDir: '/etc/ioc-edge/data/gateway/pki/vms', trustList: ['/etc/ioc-edge/pki/vms.pem'], reconnectMaxMs: 2000 });
});

t.test('bus and device rules', async (t) => {
  t.same(problems(doc([{ id: 'vms', type: 'opcua', endpointUrl: 'opc.tcp://h:4840', securityMode: 'None', securityPolicy: 'Basic256Sha256' }])), [
    ['/buses/0/securityPolicy', 'securityPolicy Basic256Sha256 needs securityMode Sign or SignAndEncrypt'],
  ]);
  t.same(problems(doc([{ id: 'vms', type: 'opcua', endpointUrl: 'opc.tcp://h:4840', securityMode: 'Sign', securityPolicy: 'None' }])), [
    ['/buses/0/securityPolicy', 'securityMode Sign needs a securityPolicy other than None'],
  ]);
  t.same(problems(doc([{ id: 'vms', type: 'opcua', endpointUrl: 'http://h' }])).map(([p]) => p), ['/buses/0/endpointUrl']);
  t.same(problems(doc([{ id: 'vms', type: 'opcua', endpointUrl: 'opc.tcp://h:4840', password: 'x' }])).map(([p]) => p), ['/buses/0'], 'password needs username');
  t.same(problems(doc([{ id: 'rs485', type: 'modbus-rtu', path: '/dev/x', parity: 'mark' }])).map(([p]) => p), ['/buses/0/parity']);
  t.same(problems(doc([{ id: 'rs485', type: 'modbus-rtu', path: '/dev/x', host: 'h' }])).map(([p]) => p), ['/buses/0'], 'no TCP fields on a serial bus');
  t.same(problems(doc([{ id: 'rs485', type: 'modbus-rtu', path: '/dev/x' }, { id: 'com1', type: 'serial-line', path: '/dev/y' }, { id: 'vms', type: 'opcua', endpointUrl: 'opc.tcp://h:4840' }], [
    { id: 'a', bus: 'rs485', unitId: 1, profile: 'eastron-sdm120' },
    { id: 'b', bus: 'rs485', unitId: 1, profile: 'cabinet-environment' },
    { id: 'c', bus: 'rs485', unitId: 2, profile: 'water-level-radar' },
    { id: 'd', bus: 'com1', profile: 'water-level-radar' },
    { id: 'e', bus: 'com1', profile: 'rain-gauge-tipping' },
    { id: 'f', bus: 'vms', profile: 'camera-health-opcua' },
    { id: 'g', bus: 'vms', profile: 'camera-health-opcua' },
    { id: 'h', bus: 'vms', profile: 'eastron-sdm120' },
  ])), [
    ['/devices/1/unitId', "unit id 1 on bus 'rs485' is already used by /devices/0"],
    ['/devices/2/profile', "profile 'water-level-radar' speaks serial-line, but bus 'rs485' is modbus-rtu"],
    ['/devices/4/bus', "serial-line bus 'com1' already carries /devices/3 (one sensor per port)"],
    ['/devices/7/profile', "profile 'eastron-sdm120' speaks modbus, but bus 'vms' is opcua"],
  ], 'several OPC UA devices share a server without unit ids');
});

t.test('node-opcua is imported only by the lazily loaded OPC UA modules', async (t) => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name !== 'test' && name !== 'node_modules') walk(p);
      } else if (p.endsWith('.ts')) files.push(p);
    }
  };
  walk(root);
  const importers = files.filter((f) => /from 'node-opcua'|import\('node-opcua'\)/.test(readFileSync(f, 'utf8'))).map((f) => path.relative(root, f)).sort();
  t.ok(importers.every((f) => /^(southbound\/drivers\/opcua-line|cli\/opcua-[a-z-]+)\.ts$/.test(f)), `importers: ${importers.join(', ')}`);
  // The lazy modules may import each other; everything else reaches them only through import().
  const lazy = (rel: string): boolean => /^(southbound\/drivers\/opcua-line|cli\/opcua-[a-z-]+)\.ts$/.test(rel);
  for (const f of files) {
    const rel = path.relative(root, f);
    if (lazy(rel)) continue;
    const src = readFileSync(f, 'utf8');
    for (const m of src.matchAll(/^import [^;]*from '([^']*(opcua-line|opcua-tools)[^']*)'/gm)) {
      t.ok(/^import type /.test(m[0]), `${rel} imports ${m[1]} for types only`);
    }
  }
});
