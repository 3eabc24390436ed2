import { join } from 'node:path';
import t from 'tap';
import { IocError } from '../../contract/index.js';
import {
  LineFramer, PROFILES_DIR, checkLineFrame, decodeLine, lineChecksum, loadProfileFile, printable, validateProfile,
  type ProfileProblem, type SerialLineProfile,
} from '../index.js';

const FILE = 'profiles/line.json';

/** A valid serial-line profile named `line`; `serialLine` and `points` merge over the defaults. */
function doc(serialLine: Record<string, unknown> = {}, points?: Record<string, unknown>[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model: 'line', manufacturer: 'acme', protocol: 'serial-line',
    serialLine: { framing: { mode: 'delimiter', delimiter: '\r\n' }, fields: { mode: 'delimited', separator: ',' }, ...serialLine },
    points: points ?? [{ name: 'a', field: 1, type: 'float64' }],
    ...extra,
  };
}

function problems(fn: () => unknown): ProfileProblem[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof IocError && err.code === 'PROFILE_ERR_INVALID') return err.context.problems as ProfileProblem[];
    throw err;
  }
  throw new Error('expected PROFILE_ERR_INVALID');
}

/** NMEA sentence with its XOR checksum, computed here independently of the code under test. */
function nmea(body: string): string {
  let x = 0;
  for (const c of body) x ^= c.charCodeAt(0);
  return `$${body}*${x.toString(16).toUpperCase().padStart(2, '0')}`;
}

t.test('checksums match published check values', async (t) => {
  const ascii = Buffer.from('123456789', 'latin1');
  t.equal(lineChecksum('crc16-modbus', ascii), 0x4b37, 'CRC-16/MODBUS check value (reveng catalogue)');
  t.equal(lineChecksum('sum8', ascii), 0xdd, '0x31+…+0x39 = 477 = 0x1DD');
  t.equal(lineChecksum('nmea-xor', Buffer.from('GPGLL,5300.97914,N,00259.98174,E,125926,A', 'latin1')), 0x28, 'NMEA GLL example sentence');
  t.equal(lineChecksum('none', ascii), 0);
});

t.test('a serial-line profile gets its defaults and is frozen', async (t) => {
  const p = validateProfile(doc(), FILE) as SerialLineProfile;
  t.same(p.serialLine.checksum, { type: 'none', format: 'hex', separator: '*', from: 0 });
  t.equal(p.serialLine.maxFrameBytes, 512);
  t.equal(p.serialLine.staleAfterMs, 5000);
  t.equal(p.serialLine.trim, true);
  t.same(p.points[0], { name: 'a', field: 1, type: 'float64', scale: 1, offset: 0, writable: false, trueText: ['1', 'true', 'on', 'yes', 'y', 't'], falseText: ['0', 'false', 'off', 'no', 'n', 'f'] });
  t.ok(Object.isFrozen(p.serialLine.framing));
});

t.test('schema and second-pass problems name the pointer', async (t) => {
  t.same(problems(() => validateProfile(doc({ framing: { mode: 'delimiter' } }), FILE)).map((p) => [p.pointer, p.message]), [
    ['/serialLine/framing', "must have required property 'delimiter'"],
  ]);
  t.same(problems(() => validateProfile(doc({ framing: { mode: 'fixed', length: 10, delimiter: 'x' } }), FILE)).map((p) => p.pointer), ['/serialLine/framing/delimiter']);
  t.same(problems(() => validateProfile(doc({ checksum: { type: 'crc32' } }), FILE)).map((p) => p.pointer), ['/serialLine/checksum/type']);
  t.same(problems(() => validateProfile(doc({}, [{ name: 'a', field: 'level', type: 'float64' }]), FILE)).map((p) => [p.pointer, p.message]), [
    ['/points/0/field', "must be a field index (integer) with delimited fields, got 'level'"],
  ]);
  const regex = { fields: { mode: 'regex', pattern: '^L=(?<level>[0-9.]+)$' } };
  t.same(problems(() => validateProfile(doc(regex, [{ name: 'a', field: 'lvl', type: 'float64' }, { name: 'b', field: 2, type: 'float64' }, { name: 'c', field: 'level', type: 'float64', sentence: 'X' }]), FILE)).map((p) => [p.pointer, p.message]), [
    ['/points/0/field', "names group 'lvl', which serialLine.fields.pattern does not define (groups: level)"],
    ['/points/1/field', 'must be a named group of serialLine.fields.pattern with regex fields, got 2'],
    ['/points/2/sentence', 'applies only to delimited fields (the first field names the sentence)'],
  ]);
  t.match(problems(() => validateProfile(doc({ fields: { mode: 'regex', pattern: '(' } }, [{ name: 'a', field: 'x', type: 'float64' }]), FILE))[0], { pointer: '/serialLine/fields/pattern', message: /is not a valid regular expression/ });
  t.match(problems(() => validateProfile(doc({ checksum: { type: 'sum8', format: 'binary' } }), FILE))[0], { pointer: '/serialLine/checksum/format', message: /needs fixed-length framing/ });
  t.match(problems(() => validateProfile(doc({ framing: { mode: 'fixed', length: 3 }, checksum: { type: 'crc16-modbus', format: 'binary', from: 1 } }), FILE))[0], { pointer: '/serialLine/framing/length', message: /cannot hold/ });
  t.same(problems(() => validateProfile(doc({}, [{ name: 'a', field: 1, type: 'bool', scale: 2 }, { name: 'a', field: 2, type: 'float64', min: 3, max: 1 }]), FILE)).map((p) => p.pointer), [
    '/points/0/scale', '/points/1/name', '/points/1/min',
  ]);
  t.same(problems(() => validateProfile(doc({}, undefined, { modbus: {} }), FILE)).map((p) => [p.pointer, p.message]), [['/modbus', 'does not belong to this protocol']]);
  t.same(problems(() => validateProfile(doc({}, [{ name: 'a', field: 1, type: 'float64', writable: true }]), FILE)).map((p) => p.pointer), ['/points/0/writable']);
  t.same(problems(() => validateProfile(doc({ framing: { mode: 'delimiter', delimiter: '\u20ac' } }), FILE)).map((p) => p.pointer), ['/serialLine/framing/delimiter'], 'byte strings only');
});

t.test('framer: delimiter, split across chunks, overflow, empty lines', async (t) => {
  const f = new LineFramer({ mode: 'delimiter', delimiter: '\r\n' }, 16);
  t.same(f.push(Buffer.from('AB')), []);
  t.same(f.push(Buffer.from('C\r')).map(String), []);
  t.same(f.push(Buffer.from('\nDEF\r\n\r\nGH\r\n')).map(String), ['ABC', 'DEF', 'GH'], 'a delimiter split between chunks still ends the frame');
  t.same(f.push(Buffer.from('X'.repeat(40))), []);
  t.equal(f.stats.overflows, 1, 'a run without delimiter is dropped');
  t.same(f.push(Buffer.from('\r\nOK\r\n')).map(String), ['OK'], 'resynchronised on the next delimiter');
  t.equal(f.stats.frames, 4);
});

t.test('framer: start-end drops noise and truncated frames', async (t) => {
  const f = new LineFramer({ mode: 'start-end', start: '\u0002', end: '\u0003' }, 32);
  t.same(f.push(Buffer.from('noise\u0002A1\u0003junk\u0002B')).map(String), ['A1']);
  t.same(f.push(Buffer.from('2\u0002C3\u0003')).map(String), ['C3'], 'a start inside a frame restarts it (B2 was cut short)');
  t.equal(f.stats.noiseBytes, 5 + 4 + 3, 'noise before STX, between frames, and the cut-short frame with its STX');
  f.reset();
  t.same(f.push(Buffer.from('\u0002' + 'Z'.repeat(50))), []);
  t.equal(f.stats.overflows, 1);
});

t.test('framer: fixed length with and without a sync marker', async (t) => {
  const plain = new LineFramer({ mode: 'fixed', length: 4 }, 512);
  t.same(plain.push(Buffer.from('ABCDEF')).map(String), ['ABCD']);
  t.same(plain.push(Buffer.from('GH12')).map(String), ['EFGH']);
  const synced = new LineFramer({ mode: 'fixed', length: 3, start: '#' }, 512);
  t.same(synced.push(Buffer.from('xx#abc#de')).map(String), ['abc']);
  t.same(synced.push(Buffer.from('f')).map(String), ['def']);
  t.equal(synced.stats.noiseBytes, 2);
});

t.test('checkLineFrame: hex and binary checksums, from, missing or wrong checksums', async (t) => {
  const settings = (checksum: Record<string, unknown>, framing: Record<string, unknown> = { mode: 'delimiter', delimiter: '\n' }) =>
    (validateProfile(doc({ checksum, framing }), FILE) as SerialLineProfile).serialLine;
  const nmeaSettings = settings({ type: 'nmea-xor', from: 1 });
  t.equal(checkLineFrame(nmeaSettings, Buffer.from(nmea('WLRAD,1.5,A'))), 'WLRAD,1.5,A');
  t.equal(checkLineFrame(nmeaSettings, Buffer.from(`${nmea('WLRAD,1.5,A').toLowerCase()}`.replace('$wlrad,1.5,a', '$WLRAD,1.5,A'))), 'WLRAD,1.5,A', 'lower-case hex accepted');
  t.throws(() => checkLineFrame(nmeaSettings, Buffer.from(nmea('WLRAD,1.5,A').replace('1.5', '1.6'))), { code: 'GW_ERR_LINE_CHECKSUM', message: /nmea-xor checksum mismatch: frame says [0-9a-f]{2}, computed [0-9a-f]{2}/ });
  t.throws(() => checkLineFrame(nmeaSettings, Buffer.from('$WLRAD,1.5,A')), { code: 'GW_ERR_LINE_CHECKSUM', message: /no 2-digit hex checksum after '\*'/ });
  t.throws(() => checkLineFrame(nmeaSettings, Buffer.from('$WLRAD,1.5,A*G1')), { code: 'GW_ERR_LINE_CHECKSUM' });
  t.throws(() => checkLineFrame(nmeaSettings, Buffer.from('$')), { code: 'GW_ERR_LINE_FORMAT', message: /too short/ });
  const crcHex = settings({ type: 'crc16-modbus', separator: '' });
  t.equal(checkLineFrame(crcHex, Buffer.from('1234567894B37')), '123456789', 'CRC as the last 4 hex digits');
  const bin = settings({ type: 'crc16-modbus', format: 'binary' }, { mode: 'fixed', length: 11 });
  t.equal(checkLineFrame(bin, Buffer.concat([Buffer.from('123456789'), Buffer.from([0x37, 0x4b])])), '123456789', 'binary CRC, low byte first');
  t.throws(() => checkLineFrame(bin, Buffer.concat([Buffer.from('123456789'), Buffer.from([0x4b, 0x37])])), { code: 'GW_ERR_LINE_CHECKSUM', message: /frame says 374b, computed 4b37/ });
  const sum = settings({ type: 'sum8', format: 'binary' }, { mode: 'fixed', length: 10 });
  t.equal(checkLineFrame(sum, Buffer.concat([Buffer.from('123456789'), Buffer.from([0xdd])])), '123456789');
  t.equal(printable(Buffer.from('A\x02\\B')), 'A\\x02\\x5cB');
});

t.test('decodeLine: delimited fields, sentences, types, bad fields', async (t) => {
  const p = (await loadProfileFile(join(PROFILES_DIR, 'water-level-radar.json'))) as SerialLineProfile;
  // The framer hands over what lies between '$' and CR LF.
  const values = (line: string): Record<string, unknown> =>
    Object.fromEntries(decodeLine(p, Buffer.from(line.slice(1), 'latin1')).map((v) => [v.point.name, v.quality === 'good' ? v.value : `bad: ${v.error}`]));
  t.same(values(nmea('WLRAD,2.345,4.655,87,12.5,A')), { level: 2.345, distance: 4.655, signal_quality: 87, sensor_temp: 12.5, valid: true });
  t.same(values(nmea('WLALM,2')), { flood_stage: 2 }, 'a second sentence type carries other points');
  t.same(values(nmea('GPGGA,1,2,3')), {}, 'unknown sentences are ignored');
  t.same(values(nmea('WLRAD,abc,4.655,187,12.5,X')), {
    level: "bad: 'abc' is not a number", distance: 4.655, signal_quality: 'bad: 187 is above the plausible maximum 100', sensor_temp: 12.5,
    valid: "bad: 'X' is neither true (A) nor false (V)",
  });
  t.same(values(nmea('WLRAD, 2.5 ,1,2,3,V')), { level: 2.5, distance: 1, signal_quality: 2, sensor_temp: 3, valid: false }, 'fields trimmed');
  t.same(values(nmea('WLRAD,1.5,1,2.5,3,A')).signal_quality, "bad: '2.5' is not a uint16");
  t.throws(() => decodeLine(p, Buffer.from(nmea('WLRAD,1.5').slice(1))), { code: 'GW_ERR_LINE_FORMAT', message: /frame has 2 fields, the profile reads field 5/ });
});

t.test('decodeLine: regex groups and scaling (rain gauge telegram)', async (t) => {
  const p = (await loadProfileFile(join(PROFILES_DIR, 'rain-gauge-tipping.json'))) as SerialLineProfile;
  const body = 'RG07 T=000123 R=24.6 I=3.2 B=12.61';
  let sum = 0;
  for (const c of body) sum = (sum + c.charCodeAt(0)) & 0xff;
  const frame = Buffer.from(`${body};${sum.toString(16).padStart(2, '0').toUpperCase()}`);
  t.same(Object.fromEntries(decodeLine(p, frame).map((v) => [v.point.name, v.value])), { station: '07', tips: 123, rain_total: 24.6, intensity: 3.2, battery: 12.61 });
  const broken = Buffer.from(`RG07 T=12 R=x;${sum.toString(16)}`);
  t.throws(() => decodeLine(p, broken), { code: 'GW_ERR_LINE_CHECKSUM' });
  let s2 = 0;
  for (const c of 'hello') s2 = (s2 + c.charCodeAt(0)) & 0xff;
  t.throws(() => decodeLine(p, Buffer.from(`hello;${s2.toString(16).padStart(2, '0')}`)), { code: 'GW_ERR_LINE_FORMAT', message: /does not match the profile's pattern/ });
  const scaled = validateProfile(doc({}, [{ name: 'a', field: 0, type: 'int16', scale: 0.1, offset: -40 }]), FILE) as SerialLineProfile;
  t.equal(decodeLine(scaled, Buffer.from('653'))[0]?.value, 25.3);
});
