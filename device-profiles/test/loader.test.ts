import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { IocError } from '../../contract/index.js';
import { findProfile, loadProfileDir, loadProfileFile, validateProfile, type ModbusProfile, type ProfileProblem } from '../index.js';

const FILE = 'profiles/dev.json';

/** A valid one-point profile named `dev`; `points` replaces the point list. */
function doc(points: Record<string, unknown>[] = [{ name: 'a', table: 'holding', address: 0, type: 'uint16' }], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'dev', manufacturer: 'acme', protocol: 'modbus', points, ...extra };
}

/** The assertions expectProblems uses; any tap test object has them. */
type Asserts = Pick<typeof t, 'equal' | 'same' | 'match' | 'ok' | 'fail'>;

/** Asserts `fn` throws one PROFILE_ERR_INVALID listing exactly these [pointer, message] problems. */
function expectProblems(t: Asserts, fn: () => unknown, file: string, expected: [string, string | RegExp][]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof IocError)) {
    t.fail(`expected an IocError, got ${String(err)}`);
    return;
  }
  t.equal(err.code, 'PROFILE_ERR_INVALID');
  const problems = err.context.problems as ProfileProblem[];
  t.same(problems.map((p) => p.pointer), expected.map(([p]) => p), 'pointers');
  expected.forEach(([pointer, message], i) => {
    t.match(problems[i]?.message, message, `message at ${pointer}`);
    t.ok(err.message.includes(`\n${file}: ${pointer || '/'}: ${problems[i]?.message}\n`), `message has the line for ${pointer}`);
  });
  t.equal(err.context.file, file);
  t.equal(err.context.pointer, expected[0]?.[0]);
}

t.test('a valid profile comes back with defaults applied, deep-frozen, input untouched', async (t) => {
  const input = doc();
  const p = validateProfile(input, FILE) as ModbusProfile;
  t.same(p, {
    model: 'dev', manufacturer: 'acme', protocol: 'modbus', pollIntervalMs: 1000, heartbeatS: 60,
    modbus: { maxRegistersPerRead: 125, maxBitsPerRead: 2000, maxGap: 8 },
    points: [{ name: 'a', table: 'holding', address: 0, type: 'uint16', scale: 1, offset: 0, writable: false, wordOrder: 'big', byteSwap: false }],
  });
  t.ok(Object.isFrozen(p) && Object.isFrozen(p.points) && Object.isFrozen(p.points[0]) && Object.isFrozen(p.modbus));
  t.same(input, doc(), 'input not modified');
});

t.test('modbus.byteOrder sets the default word order and byte swap of each point', async (t) => {
  const points = [
    { name: 'a', table: 'holding', address: 0, type: 'uint32' },
    { name: 'b', table: 'holding', address: 2, type: 'uint32', wordOrder: 'big' },
    { name: 'c', table: 'holding', address: 4, type: 'uint32', byteSwap: false },
  ];
  const layout = (byteOrder: string): unknown => (validateProfile(doc(points, { modbus: { byteOrder } }), FILE) as ModbusProfile).points.map((p) => [p.wordOrder, p.byteSwap]);
  t.same(layout('ABCD'), [['big', false], ['big', false], ['big', false]]);
  t.same(layout('CDAB'), [['little', false], ['big', false], ['little', false]]);
  t.same(layout('BADC'), [['big', true], ['big', true], ['big', false]]);
  t.same(layout('DCBA'), [['little', true], ['big', true], ['little', false]]);
});

t.test('schema errors name the file, the pointer and the reason', async (t) => {
  expectProblems(t, () => validateProfile(doc([{ name: 'a', table: 'holding', address: 70000, type: 'uint16' }]), FILE), FILE, [
    ['/points/0/address', 'must be <= 65535'],
  ]);
  expectProblems(t, () => validateProfile(doc([{ name: 'a', table: 'holding', address: 0, type: 'int8' }]), FILE), FILE, [
    ['/points/0/type', 'must be one of "bool", "int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64", "string"'],
  ]);
  expectProblems(t, () => validateProfile(doc([{ name: 'a', table: 'coil', address: 0, type: 'uint16' }]), FILE), FILE, [
    ['/points/0/type', 'must be "bool" (coil and discrete tables hold single bits)'],
  ]);
  expectProblems(t, () => validateProfile(doc([{ name: 'a', table: 'coil', address: 0, type: 'bool', bit: 1 }]), FILE), FILE, [
    ['/points/0/table', /^must be one of "holding", "input" \('bit' reads one bit/],
  ]);
  expectProblems(t, () => validateProfile(doc([{ name: 'a', table: 'input', address: 0, type: 'uint16', length: 2 }]), FILE), FILE, [
    ['/points/0/type', `must be "string" ('length' is only for string points)`],
  ]);
  expectProblems(t, () => validateProfile(doc([{ name: 'a', table: 'input', address: 0, type: 'uint16', scale: 0, colour: 'red' }], { colour: 1 }), FILE), FILE, [
    ['/points/0/colour', 'is not a known property'],
    ['/points/0/scale', 'must not be 0'],
    ['/colour', 'is not a known property'],
  ]);
  expectProblems(t, () => validateProfile(doc([{ name: 'bad name', table: 'input', address: -1, type: 'uint16' }]), FILE), FILE, [
    ['/points/0/name', /^must match pattern/],
    ['/points/0/address', 'must be >= 0'],
  ]);
  expectProblems(t, () => validateProfile(doc([], { protocol: 'bacnet' }), FILE), FILE, [['/protocol', 'must be one of "modbus", "serial-line", "opcua"']]);
  expectProblems(t, () => validateProfile({ model: 'dev', manufacturer: 'acme', protocol: 'modbus' }, FILE), FILE, [['', "must have required property 'points'"]]);
  expectProblems(t, () => validateProfile(doc([]), FILE), FILE, [['/points', 'must NOT have fewer than 1 items']]);
  expectProblems(t, () => validateProfile(doc(undefined, { modbus: { maxRegistersPerRead: 126 } }), FILE), FILE, [['/modbus/maxRegistersPerRead', 'must be <= 125']]);
});

t.test('second-pass errors: overlaps', async (t) => {
  const reg = (name: string, address: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name, table: 'holding', address, type: 'uint16', ...extra });
  expectProblems(t, () => validateProfile(doc([reg('a', 0, { type: 'uint32' }), reg('b', 2, { type: 'float64' }), reg('c', 5)]), FILE), FILE, [
    ['/points/2/address', "'c' (holding register 5) overlaps 'b' at /points/1 (holding register 2..5)"],
  ]);
  expectProblems(t, () => validateProfile(doc([reg('a', 0, { type: 'uint32' }), reg('b', 1)]), FILE), FILE, [
    ['/points/1/address', "'b' (holding register 1) overlaps 'a' at /points/0 (holding register 0..1)"],
  ]);
  t.doesNotThrow(() => validateProfile(doc([reg('a', 0, { type: 'uint32' }), reg('b', 1, { table: 'input' })]), FILE), 'other tables do not overlap');
  t.doesNotThrow(() => validateProfile(doc([reg('a', 1, { type: 'bool', bit: 0 }), reg('b', 1, { type: 'bool', bit: 15 })]), FILE), 'bits of one register');
  expectProblems(t, () => validateProfile(doc([reg('a', 1, { type: 'bool', bit: 3 }), reg('b', 1, { type: 'bool', bit: 3 })]), FILE), FILE, [
    ['/points/1/address', "'b' (holding register 1 bit 3) overlaps 'a' at /points/0 (holding register 1 bit 3)"],
  ]);
  expectProblems(t, () => validateProfile(doc([reg('a', 1, { type: 'bool', bit: 3 }), reg('b', 1, { type: 'bool', bit: 4 }), reg('w', 0, { type: 'int32' })]), FILE), FILE, [
    ['/points/2/address', "'w' (holding register 0..1) overlaps 'a' at /points/0 (holding register 1 bit 3)"],
    ['/points/2/address', "'w' (holding register 0..1) overlaps 'b' at /points/1 (holding register 1 bit 4)"],
  ]);
  // A status word with its named bits (issue 14.5): both kept, in either order.
  t.doesNotThrow(() => validateProfile(doc([reg('status', 1), reg('flood_alarm', 1, { type: 'bool', bit: 3 }), reg('pump_on', 1, { type: 'bool', bit: 4 })]), FILE), 'bits of their own word');
  t.doesNotThrow(() => validateProfile(doc([reg('a', 1, { type: 'bool', bit: 3 }), reg('status', 1, { type: 'int16' })]), FILE), 'word after its bits');
  // Still refused: two words on one register, a bit twice beside its word, a wider value over bits.
  expectProblems(t, () => validateProfile(doc([reg('w', 1), reg('a', 1, { type: 'bool', bit: 3 }), reg('v', 1)]), FILE), FILE, [
    ['/points/2/address', "'v' (holding register 1) overlaps 'w' at /points/0 (holding register 1)"],
  ]);
  expectProblems(t, () => validateProfile(doc([reg('w', 1), reg('a', 1, { type: 'bool', bit: 3 }), reg('b', 1, { type: 'bool', bit: 3 })]), FILE), FILE, [
    ['/points/2/address', "'b' (holding register 1 bit 3) overlaps 'a' at /points/1 (holding register 1 bit 3)"],
  ]);
  expectProblems(t, () => validateProfile(doc([reg('f', 0, { type: 'float32' }), reg('a', 1, { type: 'bool', bit: 3 })]), FILE), FILE, [
    ['/points/1/address', "'a' (holding register 1 bit 3) overlaps 'f' at /points/0 (holding register 0..1)"],
  ]);
  expectProblems(t, () => validateProfile(doc([{ name: 'a', table: 'coil', address: 7, type: 'bool' }, { name: 'b', table: 'coil', address: 7, type: 'bool' }]), FILE), FILE, [
    ['/points/1/address', "'b' (coil address 7) overlaps 'a' at /points/0 (coil address 7)"],
  ]);
});

t.test('second-pass errors: names, bool/string shape, ranges, model', async (t) => {
  const reg = (name: string, address: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name, table: 'input', address, type: 'uint16', ...extra });
  expectProblems(t, () => validateProfile(doc([reg('a', 0), reg('b', 1), reg('a', 2)]), FILE), FILE, [['/points/2/name', "duplicate point name 'a' (first used at /points/0)"]]);
  expectProblems(t, () => validateProfile(doc([reg('a', 0, { type: 'bool' })]), FILE), FILE, [['/points/0', /^a bool point in the input table needs 'bit' \(0\.\.15\)/]]);
  expectProblems(t, () => validateProfile(doc([reg('a', 0, { type: 'string' })]), FILE), FILE, [['/points/0', "a string point needs 'length' (registers, 2 characters each)"]]);
  expectProblems(t, () => validateProfile(doc([reg('a', 0, { min: 10, max: 5 })]), FILE), FILE, [['/points/0/min', 'min (10) must be <= max (5)']]);
  expectProblems(t, () => validateProfile(doc([reg('a', 65535, { type: 'uint32' })]), FILE), FILE, [['/points/0/address', 'registers 65535..65536 run past the last address 65535']]);
  expectProblems(t, () => validateProfile(doc([reg('a', 0, { type: 'string', length: 10 })], { modbus: { maxRegistersPerRead: 8 } }), FILE), FILE, [
    ['/points/0/length', 'needs 10 registers but modbus.maxRegistersPerRead is 8 (a point must fit in one read)'],
  ]);
  expectProblems(t, () => validateProfile(doc([reg('a', 0, { type: 'bool', bit: 0, scale: 2, deadband: 1 })]), FILE), FILE, [
    ['/points/0/scale', 'scale applies only to numeric points, not bool'],
    ['/points/0/deadband', 'deadband applies only to numeric points, not bool'],
  ]);
  expectProblems(t, () => validateProfile(doc(), 'profiles/other.json'), 'profiles/other.json', [['/model', "model 'dev' must equal the file's base name 'other'"]]);
});

t.test('all problems are reported together, in one message', async (t) => {
  const bad = doc([
    { name: 'a', table: 'input', address: 0, type: 'bool' },
    { name: 'a', table: 'input', address: 0, type: 'uint16', min: 3, max: 1 },
  ], { model: 'nope' });
  expectProblems(t, () => validateProfile(bad, FILE), FILE, [
    ['/model', /must equal the file's base name 'dev'/],
    ['/points/0', /needs 'bit'/],
    ['/points/1/name', /duplicate point name 'a'/],
    ['/points/1/min', 'min (3) must be <= max (1)'],
    ['/points/1/address', /overlaps 'a' at \/points\/0/],
  ]);
  t.throws(() => validateProfile(bad, FILE), { message: /^device profile profiles\/dev\.json is invalid \(5 problems\):\nprofiles\/dev\.json: \/model: / });
});

t.test('files: bad JSON, unreadable, missing, BOM', async (t) => {
  const dir = t.testdir({
    'broken.json': '{ "model": "broken", ',
    'bom.json': '\uFEFF' + JSON.stringify(doc(undefined, { model: 'bom' })),
    'dir.json': {},
  });
  const broken = join(dir, 'broken.json');
  await t.rejects(loadProfileFile(broken), { code: 'PROFILE_ERR_INVALID', context: { file: broken, pointer: '' }, message: new RegExp(`${broken}: /: invalid JSON: `) });
  await t.rejects(loadProfileFile(join(dir, 'dir.json')), { code: 'PROFILE_ERR_READ', message: /cannot read device profile .*dir\.json: EISDIR/, context: { file: join(dir, 'dir.json') } });
  await t.rejects(loadProfileFile(join(dir, 'missing.json')), { code: 'PROFILE_ERR_NOT_FOUND', message: /ENOENT/ });
  t.equal((await loadProfileFile(join(dir, 'bom.json'))).model, 'bom');
});

t.test('loadProfileDir loads *.json in name order, skips schemas, stops at a bad file', async (t) => {
  const dir = t.testdir({
    'zeta.json': JSON.stringify(doc(undefined, { model: 'zeta' })),
    'alpha.json': JSON.stringify(doc(undefined, { model: 'alpha' })),
    'profile.schema.json': '{"not": "a profile"}',
    'README.md': 'not json',
    nested: { 'deep.json': 'ignored, not recursive' },
  });
  const profiles = await loadProfileDir(dir);
  t.same([...profiles.keys()], ['alpha', 'zeta']);
  t.equal(findProfile(profiles, 'zeta').model, 'zeta');
  t.throws(() => findProfile(profiles, 'gamma'), { code: 'PROFILE_ERR_NOT_FOUND', message: /no device profile for model 'gamma'; known models: alpha, zeta/ });
  writeFileSync(join(dir, 'mid.json'), JSON.stringify(doc([{ name: 'a', table: 'input', address: 0, type: 'int8' }], { model: 'mid' })));
  await t.rejects(loadProfileDir(dir), { code: 'PROFILE_ERR_INVALID', context: { file: join(dir, 'mid.json'), pointer: '/points/0/type' } });
  await t.rejects(loadProfileDir(join(dir, 'absent')), { code: 'PROFILE_ERR_NOT_FOUND' });
  mkdirSync(join(dir, 'empty'));
  t.same([...(await loadProfileDir(join(dir, 'empty'))).keys()], []);
});
