import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  MODBUS_TABLES, POINT_TYPES, PROFILES_DIR, PROTOCOLS, decodeResponse, encodeValue, loadProfileDir, loadProfileFile, planReads, profileSchema,
  type ModbusProfile, type ReadRequest,
} from '../index.js';

const shipped = readdirSync(PROFILES_DIR).filter((f) => f.endsWith('.json') && !f.endsWith('.schema.json')).sort();

t.test('every shipped profile loads and refers to the schema', async (t) => {
  t.ok(shipped.length >= 2, `found ${shipped.join(', ')}`);
  for (const file of shipped) {
    const profile = await loadProfileFile(join(PROFILES_DIR, file));
    t.equal(`${profile.model}.json`, file, `${file} loads`);
    t.equal((JSON.parse(readFileSync(join(PROFILES_DIR, file), 'utf8')) as { $schema?: string }).$schema, './profile.schema.json', `${file} has $schema for editors`);
    if (profile.protocol === 'modbus') t.ok(planReads(profile.points, profile.modbus).length > 0, `${file} plans reads`);
  }
  t.same([...(await loadProfileDir(PROFILES_DIR)).keys()], shipped.map((f) => f.replace(/\.json$/, '')));
});

t.test('the TypeScript enums follow the schema', async (t) => {
  const defs = profileSchema.$defs as Record<string, { properties: Record<string, { enum?: string[] }> }>;
  const point = (defs.modbusPoint as { properties: Record<string, { enum?: string[] }> }).properties;
  t.same([...(point.table?.enum ?? [])].sort(), [...MODBUS_TABLES].sort());
  t.same(point.type?.enum, [...POINT_TYPES]);
  t.same((profileSchema.properties as Record<string, { enum?: string[] }>).protocol?.enum, [...PROTOCOLS]);
  t.equal(profileSchema.$id, 'https://ioc-edge.dev/schemas/device-profile.schema.json');
});

function summary(plan: readonly ReadRequest[]): unknown[] {
  return plan.map((r) => [r.table, r.address, r.count, r.points.map((e) => `${e.point.name}@${e.offset}`)]);
}

/** Builds a response for `request` by encoding the given engineering values (unlisted registers stay 0). */
function respond(request: ReadRequest, values: Record<string, number | boolean | string>): number[] | boolean[] {
  if (request.table === 'coil' || request.table === 'discrete') return request.points.map((e) => values[e.point.name] as boolean);
  const words = new Array<number>(request.count).fill(0);
  for (const { point, offset } of request.points) {
    const encoded = encodeValue(point, values[point.name], words[offset]) as number[];
    encoded.forEach((w, i) => (words[offset + i] = w));
  }
  return words;
}

function readAll(profile: ModbusProfile, values: Record<string, number | boolean | string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const req of planReads(profile.points, profile.modbus)) {
    for (const { point, value } of decodeResponse(req, respond(req, values))) out[point.name] = value;
  }
  return out;
}

t.test('flood-level-sensor: register map and decoding (the simulator relies on these)', async (t) => {
  const p = (await loadProfileFile(join(PROFILES_DIR, 'flood-level-sensor.json'))) as ModbusProfile;
  t.same(summary(planReads(p.points, p.modbus)), [
    ['discrete', 0, 1, ['float_switch@0']],
    ['holding', 100, 1, ['alarm_level@0']],
    ['input', 0, 12, ['level@0', 'level_rate@1', 'water_temp@2', 'battery@4', 'sample_count@10']],
  ]);
  const values = { level: 1.234, level_rate: -2.5, water_temp: 12.5, battery: 3.61, sample_count: 70000, alarm_level: 2.5, float_switch: true };
  t.same(readAll(p, values), values);
  const input = planReads(p.points, p.modbus).find((r) => r.table === 'input') as ReadRequest;
  t.same(respond(input, values), [1234, 0xffe7, 0x4148, 0x0000, 361, 0, 0, 0, 0, 0, 0x1170, 0x0001], 'exact input register words');
  const alarm = p.points.find((x) => x.name === 'alarm_level');
  t.same(alarm && [alarm.writable, alarm.min, alarm.max, alarm.unit], [true, 0, 10, 'm']);
});

t.test('traffic-signal-controller: register map and decoding (the simulator relies on these)', async (t) => {
  const p = (await loadProfileFile(join(PROFILES_DIR, 'traffic-signal-controller.json'))) as ModbusProfile;
  t.same(summary(planReads(p.points, p.modbus)), [
    ['coil', 0, 1, ['flash_mode@0']],
    ['discrete', 0, 2, ['door_open@0', 'power_fail@1']],
    ['holding', 0, 8, ['phase@0', 'plan@1', 'cycle_time@2', 'cabinet_temp@3', 'uptime@4', 'detector_count@6']],
    ['holding', 20, 4, ['fw_version@0']],
    ['input', 0, 2, ['lamp_faults@0', 'red_lamp_ok@1', 'amber_lamp_ok@1', 'green_lamp_ok@1']],
  ]);
  const values = {
    phase: 3, plan: 7, cycle_time: 90, cabinet_temp: -4.2, uptime: 86400, detector_count: 123456, fw_version: 'v2.10.4',
    lamp_faults: 1, red_lamp_ok: true, amber_lamp_ok: false, green_lamp_ok: true, flash_mode: false, door_open: true, power_fail: false,
  };
  t.same(readAll(p, values), values);
  const lamps = planReads(p.points, p.modbus).find((r) => r.table === 'input') as ReadRequest;
  t.same(respond(lamps, values), [1, 0b101], 'lamp status bits 0 (red) and 2 (green)');
  const plan = p.points.find((x) => x.name === 'plan');
  t.same(plan && [plan.writable, plan.min, plan.max], [true, 1, 32]);
});
