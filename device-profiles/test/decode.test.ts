import t from 'tap';
import { decodeBits, decodeRegisters, encodeValue, type ModbusPoint } from '../index.js';

/** A holding-register point with the loader's defaults; override what the case needs. */
function pt(p: Partial<ModbusPoint> & Pick<ModbusPoint, 'type'>): ModbusPoint {
  return { name: 'p', table: 'holding', address: 0, wordOrder: 'big', byteSwap: false, scale: 1, offset: 0, writable: false, ...p };
}

/** Hand-computed wire words; each case is decoded and encoded back. */
const roundTrips: { what: string; point: ModbusPoint; regs: number[]; value: number | string }[] = [
  { what: 'uint16', point: pt({ type: 'uint16' }), regs: [0x1234], value: 4660 },
  { what: 'uint16 max', point: pt({ type: 'uint16' }), regs: [0xffff], value: 65535 },
  { what: 'int16 -1', point: pt({ type: 'int16' }), regs: [0xffff], value: -1 },
  { what: 'int16 min', point: pt({ type: 'int16' }), regs: [0x8000], value: -32768 },
  { what: 'int16 max', point: pt({ type: 'int16' }), regs: [0x7fff], value: 32767 },
  { what: 'uint16 byteSwap', point: pt({ type: 'uint16', byteSwap: true }), regs: [0x3412], value: 0x1234 },
  { what: 'int32 big', point: pt({ type: 'int32' }), regs: [0xffff, 0xfffe], value: -2 },
  { what: 'int32 little', point: pt({ type: 'int32', wordOrder: 'little' }), regs: [0xfffe, 0xffff], value: -2 },
  { what: 'uint32 big', point: pt({ type: 'uint32' }), regs: [0x1234, 0x5678], value: 0x12345678 },
  { what: 'uint32 little', point: pt({ type: 'uint32', wordOrder: 'little' }), regs: [0x5678, 0x1234], value: 0x12345678 },
  { what: 'uint32 big byteSwap', point: pt({ type: 'uint32', byteSwap: true }), regs: [0x3412, 0x7856], value: 0x12345678 },
  { what: 'uint32 little byteSwap', point: pt({ type: 'uint32', wordOrder: 'little', byteSwap: true }), regs: [0x7856, 0x3412], value: 0x12345678 },
  { what: 'uint32 max', point: pt({ type: 'uint32' }), regs: [0xffff, 0xffff], value: 4294967295 },
  { what: 'float32 1.5 big', point: pt({ type: 'float32' }), regs: [0x3fc0, 0x0000], value: 1.5 },
  { what: 'float32 1.5 little', point: pt({ type: 'float32', wordOrder: 'little' }), regs: [0x0000, 0x3fc0], value: 1.5 },
  { what: 'float32 1.5 byteSwap', point: pt({ type: 'float32', byteSwap: true }), regs: [0xc03f, 0x0000], value: 1.5 },
  { what: 'float32 -2.5', point: pt({ type: 'float32' }), regs: [0xc020, 0x0000], value: -2.5 },
  { what: 'float32 12.5', point: pt({ type: 'float32' }), regs: [0x4148, 0x0000], value: 12.5 },
  { what: 'float64 1.5 big', point: pt({ type: 'float64' }), regs: [0x3ff8, 0, 0, 0], value: 1.5 },
  { what: 'float64 pi big', point: pt({ type: 'float64' }), regs: [0x4009, 0x21fb, 0x5444, 0x2d18], value: Math.PI },
  { what: 'float64 pi little', point: pt({ type: 'float64', wordOrder: 'little' }), regs: [0x2d18, 0x5444, 0x21fb, 0x4009], value: Math.PI },
  { what: 'float64 pi little byteSwap', point: pt({ type: 'float64', wordOrder: 'little', byteSwap: true }), regs: [0x182d, 0x4454, 0xfb21, 0x0940], value: Math.PI },
  { what: 'int64 -1', point: pt({ type: 'int64' }), regs: [0xffff, 0xffff, 0xffff, 0xffff], value: -1 },
  { what: 'int64 big', point: pt({ type: 'int64' }), regs: [1, 2, 3, 4], value: 281483566841860 },
  { what: 'int64 little', point: pt({ type: 'int64', wordOrder: 'little' }), regs: [4, 3, 2, 1], value: 281483566841860 },
  { what: 'int64 min', point: pt({ type: 'int64' }), regs: [0x8000, 0, 0, 0], value: -(2 ** 63) },
  { what: 'uint64 small', point: pt({ type: 'uint64' }), regs: [0, 0, 0, 42], value: 42 },
  { what: 'uint64 2^53', point: pt({ type: 'uint64' }), regs: [0x0020, 0, 0, 0], value: 2 ** 53 },
  { what: 'string', point: pt({ type: 'string', length: 4 }), regs: [0x7631, 0x2e32, 0x2e33, 0x0000], value: 'v1.2.3' },
  { what: 'string byteSwap', point: pt({ type: 'string', length: 4, byteSwap: true }), regs: [0x3176, 0x322e, 0x332e, 0x0000], value: 'v1.2.3' },
  { what: 'string full', point: pt({ type: 'string', length: 2 }), regs: [0x4142, 0x4344], value: 'ABCD' },
  { what: 'scaled uint16', point: pt({ type: 'uint16', scale: 0.001 }), regs: [1234], value: 1.234 },
  { what: 'scaled int16', point: pt({ type: 'int16', scale: 0.1 }), regs: [0xfffb], value: -0.5 },
  { what: 'scale and offset', point: pt({ type: 'uint16', scale: 0.1, offset: -273.15 }), regs: [3000], value: 26.85 },
  { what: 'scaled float32', point: pt({ type: 'float32', scale: 2, offset: 1 }), regs: [0x3fc0, 0x0000], value: 4 },
  { what: 'scaled int32 little', point: pt({ type: 'int32', wordOrder: 'little', scale: 0.01 }), regs: [0xff38, 0xffff], value: -2 },
];

t.test('decodes every type, word order and byte swap from hand-computed words', async (t) => {
  for (const c of roundTrips) t.equal(decodeRegisters(c.point, c.regs), c.value, c.what);
});

t.test('encodes every case back to the same words', async (t) => {
  for (const c of roundTrips) t.same(encodeValue(c.point, c.value), c.regs, c.what);
});

t.test('scaling removes binary noise: 3 × 0.1 is 0.3', async (t) => {
  t.equal(decodeRegisters(pt({ type: 'uint16', scale: 0.1 }), [3]), 0.3);
  t.equal(decodeRegisters(pt({ type: 'uint16', scale: 0.001 }), [0]), 0);
});

t.test('64-bit values beyond 2^53 lose precision (nearest double)', async (t) => {
  t.equal(decodeRegisters(pt({ type: 'int64' }), [0x0020, 0, 0, 1]), 2 ** 53, '2^53 + 1 reads as 2^53');
  t.equal(decodeRegisters(pt({ type: 'uint64' }), [0xffff, 0xffff, 0xffff, 0xffff]), 2 ** 64, '2^64 - 1 reads as 2^64');
});

t.test('NaN and infinities decode to null', async (t) => {
  t.equal(decodeRegisters(pt({ type: 'float32' }), [0x7fc0, 0x0000]), null, 'float32 NaN');
  t.equal(decodeRegisters(pt({ type: 'float32' }), [0x7f80, 0x0000]), null, 'float32 +Inf');
  t.equal(decodeRegisters(pt({ type: 'float32' }), [0xff80, 0x0000]), null, 'float32 -Inf');
  t.equal(decodeRegisters(pt({ type: 'float32', wordOrder: 'little' }), [0x0000, 0x7fc0]), null, 'float32 NaN little');
  t.equal(decodeRegisters(pt({ type: 'float64' }), [0x7ff8, 0, 0, 0]), null, 'float64 NaN');
  t.equal(decodeRegisters(pt({ type: 'float64', scale: 10 }), [0xfff0, 0, 0, 0]), null, 'float64 -Inf, scaled');
});

t.test('bit extraction from a register', async (t) => {
  const bit = (n: number, extra: Partial<ModbusPoint> = {}): ModbusPoint => pt({ type: 'bool', table: 'input', bit: n, ...extra });
  t.equal(decodeRegisters(bit(0), [0b101]), true);
  t.equal(decodeRegisters(bit(1), [0b101]), false);
  t.equal(decodeRegisters(bit(2), [0b101]), true);
  t.equal(decodeRegisters(bit(15), [0x8000]), true);
  t.equal(decodeRegisters(bit(15), [0x7fff]), false);
  t.equal(decodeRegisters(bit(0, { byteSwap: true }), [0x0100]), true, 'bit numbering applies after the byte swap');
  t.equal(decodeRegisters(bit(8, { byteSwap: true }), [0x0100]), false);
});

t.test('strings: cut at NUL, trailing spaces trimmed, non-ASCII replaced', async (t) => {
  const str = (length: number): ModbusPoint => pt({ type: 'string', length });
  t.equal(decodeRegisters(str(2), [0x4142, 0x2020]), 'AB');
  t.equal(decodeRegisters(str(2), [0x2041, 0x4220]), ' AB', 'leading spaces kept');
  t.equal(decodeRegisters(str(2), [0x4100, 0x4243]), 'A', 'stops at the first NUL');
  t.equal(decodeRegisters(str(1), [0x41c3]), 'A\uFFFD');
  t.equal(decodeRegisters(str(2), [0, 0]), '');
});

t.test('coils and discrete inputs', async (t) => {
  t.equal(decodeBits(pt({ type: 'bool', table: 'coil' }), [true]), true);
  t.equal(decodeBits(pt({ type: 'bool', table: 'discrete' }), [false]), false);
  t.equal(encodeValue(pt({ type: 'bool', table: 'coil' }), true), true);
  t.equal(encodeValue(pt({ type: 'bool', table: 'coil' }), false), false);
});

t.test('decode rejects wrong input with GW_ERR_DECODE naming the point', async (t) => {
  const u16 = pt({ name: 'level', type: 'uint16' });
  t.throws(() => decodeRegisters(u16, [1, 2]), { code: 'GW_ERR_DECODE', message: /^point 'level': expected 1 register\(s\), got 2/, context: { point: 'level' } });
  t.throws(() => decodeRegisters(pt({ type: 'float32' }), [1]), { code: 'GW_ERR_DECODE', message: /expected 2 register\(s\), got 1/ });
  t.throws(() => decodeRegisters(u16, [70000]), { code: 'GW_ERR_DECODE', message: /register value 70000 is not a 16-bit unsigned integer/ });
  t.throws(() => decodeRegisters(u16, [-1]), { code: 'GW_ERR_DECODE', message: /register value -1/ });
  t.throws(() => decodeRegisters(u16, [1.5]), { code: 'GW_ERR_DECODE', message: /register value 1.5/ });
  t.throws(() => decodeRegisters(pt({ type: 'bool', table: 'coil' }), [1]), { code: 'GW_ERR_DECODE', message: /decoded with decodeBits/ });
  t.throws(() => decodeBits(u16, [true]), { code: 'GW_ERR_DECODE', message: /decoded with decodeRegisters/ });
  t.throws(() => decodeBits(pt({ type: 'bool', table: 'coil' }), [true, false]), { code: 'GW_ERR_DECODE', message: /expected exactly 1 boolean/ });
  t.throws(() => decodeBits(pt({ type: 'bool', table: 'coil' }), []), { code: 'GW_ERR_DECODE' });
});

t.test('encode applies min/max, scale and the type range', async (t) => {
  const alarm = pt({ name: 'alarm_level', type: 'uint16', scale: 0.001, min: 0, max: 10 });
  t.same(encodeValue(alarm, 1.234), [1234]);
  t.same(encodeValue(alarm, 10), [10000]);
  t.same(encodeValue(alarm, 0.0016), [2], 'rounded to the nearest raw step');
  t.throws(() => encodeValue(alarm, 10.001), { code: 'GW_ERR_DECODE', message: /^point 'alarm_level': value 10.001 is above max 10/ });
  t.throws(() => encodeValue(alarm, -1), { code: 'GW_ERR_DECODE', message: /value -1 is below min 0/ });
  t.throws(() => encodeValue(pt({ type: 'uint16' }), 65536), { code: 'GW_ERR_DECODE', message: /outside the uint16 range 0..65535/ });
  t.throws(() => encodeValue(pt({ type: 'uint16' }), -1), { code: 'GW_ERR_DECODE', message: /outside the uint16 range/ });
  t.throws(() => encodeValue(pt({ type: 'int16' }), -32769), { code: 'GW_ERR_DECODE', message: /outside the int16 range -32768..32767/ });
  t.throws(() => encodeValue(pt({ type: 'int16', scale: 0.1 }), 3276.8), { code: 'GW_ERR_DECODE', message: /raw 32768(\.\d+)?, outside the int16 range/ });
  t.throws(() => encodeValue(pt({ type: 'uint32' }), 2 ** 32), { code: 'GW_ERR_DECODE', message: /outside the uint32 range/ });
  t.throws(() => encodeValue(pt({ type: 'int64' }), 2 ** 63), { code: 'GW_ERR_DECODE', message: /outside the int64 range/ });
  t.throws(() => encodeValue(pt({ type: 'uint64' }), -1), { code: 'GW_ERR_DECODE', message: /outside the uint64 range/ });
  t.throws(() => encodeValue(pt({ type: 'float32' }), 1e39), { code: 'GW_ERR_DECODE', message: /outside the float32 range/ });
  t.throws(() => encodeValue(pt({ type: 'float64', scale: 1e-300 }), 1e300), { code: 'GW_ERR_DECODE', message: /outside the float64 range/ });
});

t.test('encode rejects values of the wrong kind', async (t) => {
  t.throws(() => encodeValue(pt({ type: 'uint16' }), Number.NaN), { code: 'GW_ERR_DECODE', message: /expected a finite number, got null/ });
  t.throws(() => encodeValue(pt({ type: 'uint16' }), Infinity), { code: 'GW_ERR_DECODE', message: /expected a finite number/ });
  t.throws(() => encodeValue(pt({ type: 'uint16' }), '12'), { code: 'GW_ERR_DECODE', message: /expected a finite number, got "12"/ });
  t.throws(() => encodeValue(pt({ type: 'bool', table: 'coil' }), 1), { code: 'GW_ERR_DECODE', message: /expected a boolean, got 1/ });
  t.throws(() => encodeValue(pt({ type: 'string', length: 2 }), 5), { code: 'GW_ERR_DECODE', message: /expected a string, got 5/ });
  t.throws(() => encodeValue(pt({ type: 'string', length: 2 }), 'ABCDE'), { code: 'GW_ERR_DECODE', message: /5 characters does not fit in 2 registers \(4 characters\)/ });
  t.throws(() => encodeValue(pt({ type: 'string', length: 2 }), 'é'), { code: 'GW_ERR_DECODE', message: /must be ASCII/ });
});

t.test('encode of a bit point is a read-modify-write of its register', async (t) => {
  const bit = (n: number, extra: Partial<ModbusPoint> = {}): ModbusPoint => pt({ name: 'b', type: 'bool', bit: n, ...extra });
  t.same(encodeValue(bit(0), true, 0b100), [0b101]);
  t.same(encodeValue(bit(2), false, 0b101), [0b001]);
  t.same(encodeValue(bit(15), true, 0), [0x8000]);
  t.same(encodeValue(bit(15), false, 0xffff), [0x7fff]);
  t.same(encodeValue(bit(0, { byteSwap: true }), true, 0x0000), [0x0100], 'bit set in the swapped word');
  t.throws(() => encodeValue(bit(3), true), { code: 'GW_ERR_DECODE', message: /^point 'b': writing bit 3 needs the register's current value/ });
  t.throws(() => encodeValue(bit(3), true, 70000), { code: 'GW_ERR_DECODE', message: /register value 70000/ });
  t.throws(() => encodeValue(bit(3), 1, 0), { code: 'GW_ERR_DECODE', message: /expected a boolean/ });
});

t.test('strings are NUL-padded on encode', async (t) => {
  t.same(encodeValue(pt({ type: 'string', length: 3 }), 'AB'), [0x4142, 0, 0]);
  t.same(encodeValue(pt({ type: 'string', length: 1 }), ''), [0]);
});
