import { join } from 'node:path';
import t from 'tap';
import { IocError } from '../../contract/index.js';
import {
  PROFILES_DIR, coerceOpcuaValue, decodeResponse, loadProfileDir, planReads, validateProfile,
  type ModbusProfile, type OpcuaPoint, type OpcuaProfile, type ProfileProblem,
} from '../index.js';

t.test('at least 8 shipped profiles cover every protocol and the field categories', async (t) => {
  const profiles = await loadProfileDir(PROFILES_DIR);
  t.ok(profiles.size >= 8, `${profiles.size} profiles`);
  t.same(new Set([...profiles.values()].map((p) => p.protocol)), new Set(['modbus', 'serial-line', 'opcua']));
  for (const model of ['eastron-sdm120', 'eastron-sdm630', 'cabinet-environment', 'water-level-radar', 'rain-gauge-tipping', 'camera-health-opcua', 'flood-level-sensor', 'traffic-signal-controller']) {
    t.ok(profiles.has(model), `${model} shipped`);
  }
  const real = [...profiles.values()].filter((p) => p.manufacturer !== 'ioc-edge reference');
  t.ok(real.length >= 2, `real devices: ${real.map((p) => p.model).join(', ')}`);
  const cabinet = profiles.get('cabinet-environment') as ModbusProfile;
  for (const name of ['temperature', 'door_open', 'ups_on_battery', 'ups_battery_charge']) t.ok(cabinet.points.some((p) => p.name === name), `cabinet has ${name}`);
});

t.test('eastron-sdm120: float32 input registers, reads within Eastron\'s 80-register limit', async (t) => {
  const p = (await loadProfileDir(PROFILES_DIR)).get('eastron-sdm120') as ModbusProfile;
  const plan = planReads(p.points, p.modbus);
  for (const r of plan) t.ok(r.count <= 80, `${r.table} @${r.address}×${r.count} ≤ 80 registers`);
  t.same(plan.filter((r) => r.table === 'input').map((r) => [r.address, r.count]), [[0, 38], [70, 18], [342, 4]], 'gaps of a few registers are bridged');
  const first = plan.find((r) => r.table === 'input' && r.address === 0)!;
  const words = new Array<number>(first.count).fill(0);
  words[0] = 0x4366; // 230.0 V
  words[6] = 0x40a0; // 5.0 A
  words[12] = 0x4489; words[13] = 0x8000; // 1100.0 W
  const values = Object.fromEntries(decodeResponse(first, words).map((v) => [v.point.name, v.value]));
  t.equal(values.voltage, 230);
  t.equal(values.current, 5);
  t.equal(values.active_power, 1100);
  t.equal(p.modbus.writeMode, 'multiple', 'Eastron meters accept FC 16 only');
});

t.test('opcua profiles: defaults, node ids, second-pass problems', async (t) => {
  const doc = (points: Record<string, unknown>[], extra: Record<string, unknown> = {}) => ({ model: 'cam', manufacturer: 'acme', protocol: 'opcua', points, ...extra });
  const p = validateProfile(doc([{ name: 'a', nodeId: 'ns=2;s=Cam.Online', type: 'bool' }]), 'cam.json') as OpcuaProfile;
  t.same(p.opcua, { publishingIntervalMs: 1000, samplingIntervalMs: 500, queueSize: 10 });
  t.same(p.points[0], { name: 'a', nodeId: 'ns=2;s=Cam.Online', type: 'bool', scale: 1, offset: 0, writable: false });
  const problems = (d: unknown): ProfileProblem[] => {
    try {
      validateProfile(d, 'cam.json');
    } catch (err) {
      if (err instanceof IocError) return err.context.problems as ProfileProblem[];
    }
    return [];
  };
  t.same(problems(doc([{ name: 'a', nodeId: 'Cam.Online', type: 'bool' }])).map((x) => x.pointer), ['/points/0/nodeId'], 'node id must have an identifier type');
  t.same(problems(doc([{ name: 'a', nodeId: 'i=1', type: 'bool' }, { name: 'b', nodeId: 'i=1', type: 'bool' }])).map((x) => x.message), ['node i=1 is already monitored by /points/0']);
  t.same(problems(doc([{ name: 'a', nodeId: 'i=1', type: 'bool', deadband: 1 }])).map((x) => x.pointer), ['/points/0/deadband']);
  t.same(problems(doc([{ name: 'a', nodeId: 'i=1', type: 'bool' }], { serialLine: {} })).map((x) => x.pointer), ['/serialLine']);
  for (const id of ['i=2258', 'ns=1;s=A.B C', 'ns=3;g=09087e75-8e5e-499b-954f-f2a9603db28a', 'ns=1;b=M/RbKBsRVkePCePcx24oRA==']) {
    t.same(problems(doc([{ name: 'a', nodeId: id, type: 'string' }])), [], `${id} accepted`);
  }
});

t.test('coerceOpcuaValue: variants to point types', async (t) => {
  const pt = (type: OpcuaPoint['type'], extra: Partial<OpcuaPoint> = {}): OpcuaPoint => ({ name: 'p', nodeId: 'i=1', type, scale: 1, offset: 0, writable: false, ...extra });
  t.equal(coerceOpcuaValue(pt('float64'), 12.5), 12.5);
  t.equal(coerceOpcuaValue(pt('float64', { scale: 0.1 }), 125), 12.5);
  t.equal(coerceOpcuaValue(pt('int32'), true), 1);
  t.equal(coerceOpcuaValue(pt('uint64'), [1, 0]), 2 ** 32, '[high, low] uint64');
  t.equal(coerceOpcuaValue(pt('int64'), [0xffffffff, 0xfffffffe]), -2, '[high, low] int64');
  t.equal(coerceOpcuaValue(pt('float32'), Number.NaN), null);
  t.equal(coerceOpcuaValue(pt('float64'), '3.5'), 3.5);
  t.equal(coerceOpcuaValue(pt('bool'), 0), false);
  t.equal(coerceOpcuaValue(pt('string'), { text: 'lens covered', locale: 'en' }), 'lens covered');
  t.equal(coerceOpcuaValue(pt('string'), new Date(0)), '1970-01-01T00:00:00.000Z');
  t.equal(coerceOpcuaValue(pt('string'), null), null);
  t.throws(() => coerceOpcuaValue(pt('float64'), 'abc'), { code: 'GW_ERR_DECODE', message: /point 'p': expected a number/ });
  t.throws(() => coerceOpcuaValue(pt('bool'), 'yes'), { code: 'GW_ERR_DECODE' });
  t.throws(() => coerceOpcuaValue(pt('string'), { x: 1 }), { code: 'GW_ERR_DECODE' });
});

t.test('camera-health-opcua resolves its node ids in its namespace', async (t) => {
  const p = (await loadProfileDir(join(PROFILES_DIR))).get('camera-health-opcua') as OpcuaProfile;
  t.equal(p.opcua.namespaceUri, 'urn:ioc-edge:camera');
  t.ok(p.points.every((x) => x.nodeId.startsWith('s=Camera.')), 'node ids without ns= use the namespace URI');
  t.ok(p.points.some((x) => x.writable), 'heater is writable');
});
