/**
 * Pure conversion between Modbus raw data and engineering values, driven by a
 * point's profile entry. No I/O.
 *
 * Register layout: Modbus transmits each 16-bit register most significant byte
 * first (Modbus Application Protocol v1.1b3 §4.2, "big-Endian"); it says
 * nothing about values wider than one register, hence `wordOrder` (which word
 * comes first) and `byteSwap` (devices that also swap bytes inside a word).
 * Decoding undoes `byteSwap` on each word, then puts the words in big-endian
 * order, then reads the value with Buffer (IEEE 754 for floats), then applies
 * `engineering = raw × scale + offset`. Encoding is the exact reverse.
 */
import { IocError, type ReadingValue } from '../contract/index.js';
import { registerCount } from './register-count.js';
import { isBitTable, type ModbusPoint, type PointType } from './types.js';

/** Scratch space for decoding up to 4 registers (64-bit values). */
const SCRATCH = Buffer.alloc(8);

/** Largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** Raw integer range of each integer type. */
const INT_RANGES: Partial<Record<PointType, readonly [bigint, bigint]>> = {
  int16: [-0x8000n, 0x7fffn],
  uint16: [0n, 0xffffn],
  int32: [-0x8000_0000n, 0x7fff_ffffn],
  uint32: [0n, 0xffff_ffffn],
  int64: [-0x8000_0000_0000_0000n, 0x7fff_ffff_ffff_ffffn],
  uint64: [0n, 0xffff_ffff_ffff_ffffn],
};

function fail(point: Pick<ModbusPoint, 'name'>, reason: string): IocError {
  return new IocError('GW_ERR_DECODE', `point '${point.name}': ${reason}`, { context: { point: point.name } });
}

function swapBytes(word: number): number {
  return ((word & 0xff) << 8) | (word >>> 8);
}

function checkWords(point: ModbusPoint, regs: readonly number[], expected: number): void {
  if (regs.length !== expected) throw fail(point, `expected ${expected} register(s), got ${regs.length}`);
  for (const w of regs) {
    if (!Number.isInteger(w) || w < 0 || w > 0xffff) throw fail(point, `register value ${String(w)} is not a 16-bit unsigned integer`);
  }
}

/** Applies scale/offset; rounds to 15 significant digits to drop binary noise (0.1 × 3 = 0.3, not 0.30000000000000004). */
function toEngineering(point: ModbusPoint, raw: number): number {
  if (point.scale === 1 && point.offset === 0) return raw;
  return Number((raw * point.scale + point.offset).toPrecision(15));
}

/**
 * Decodes a point of a holding/input register table from the registers it
 * spans (exactly `registerCount(point)` unsigned 16-bit words, in the order
 * the device sent them).
 *
 * - `bit` points: the selected bit (after byteSwap), as a boolean.
 * - integers: two's complement for signed types; 64-bit integers go through
 *   BigInt and are returned as `number`, so values beyond ±2^53 lose precision
 *   (nearest double).
 * - floats: IEEE 754; NaN and ±Infinity decode to `null` (the device has no
 *   valid value), never to a number.
 * - strings: ASCII, two characters per register, high byte first (after
 *   byteSwap; wordOrder does not apply); cut at the first NUL, trailing
 *   spaces trimmed; bytes above 0x7F become U+FFFD.
 * - numbers are returned in engineering units (raw × scale + offset).
 *
 * @throws IocError GW_ERR_DECODE on a bit-table point, a wrong word count or a
 *   word outside 0..65535.
 */
export function decodeRegisters(point: ModbusPoint, regs: readonly number[]): ReadingValue {
  if (isBitTable(point.table)) throw fail(point, `a ${point.table} point is decoded with decodeBits, not from registers`);
  checkWords(point, regs, registerCount(point));
  // Hot path (a gateway decodes tens of thousands of points a second): 16-bit integers without allocating.
  if (point.bit === undefined && !point.byteSwap && (point.type === 'uint16' || point.type === 'int16')) {
    const w = regs[0] as number;
    return toEngineering(point, point.type === 'uint16' ? w : (w << 16) >> 16);
  }
  const words = point.byteSwap ? regs.map(swapBytes) : [...regs];
  if (point.bit !== undefined) return (((words[0] as number) >>> point.bit) & 1) === 1;
  if (point.type === 'string') return decodeAscii(words);
  if (point.wordOrder === 'little') words.reverse();
  // One scratch buffer for every decode: values are read out before it is reused.
  const buf = SCRATCH;
  words.forEach((w, i) => buf.writeUInt16BE(w, i * 2));
  let raw: number;
  switch (point.type) {
    case 'int16': raw = buf.readInt16BE(0); break;
    case 'uint16': raw = buf.readUInt16BE(0); break;
    case 'int32': raw = buf.readInt32BE(0); break;
    case 'uint32': raw = buf.readUInt32BE(0); break;
    case 'int64': raw = Number(buf.readBigInt64BE(0)); break;
    case 'uint64': raw = Number(buf.readBigUInt64BE(0)); break;
    case 'float32': raw = buf.readFloatBE(0); break;
    case 'float64': raw = buf.readDoubleBE(0); break;
    default: throw fail(point, `type ${point.type} cannot be read from registers without 'bit'`);
  }
  if (!Number.isFinite(raw)) return null;
  return toEngineering(point, raw);
}

function decodeAscii(words: readonly number[]): string {
  let s = '';
  for (const w of words) {
    for (const byte of [w >>> 8, w & 0xff]) {
      if (byte === 0) return s.replace(/ +$/, '');
      s += byte < 0x80 ? String.fromCharCode(byte) : '\uFFFD';
    }
  }
  return s.replace(/ +$/, '');
}

/**
 * Decodes a coil or discrete-input point from the bits it spans (exactly one).
 * @throws IocError GW_ERR_DECODE on a register-table point or a wrong bit count.
 */
export function decodeBits(point: ModbusPoint, bits: readonly boolean[]): boolean {
  if (!isBitTable(point.table)) throw fail(point, `a ${point.table} register point is decoded with decodeRegisters, not from bits`);
  if (bits.length !== 1 || typeof bits[0] !== 'boolean') throw fail(point, `expected exactly 1 boolean, got ${JSON.stringify(bits)}`);
  return bits[0];
}

/**
 * The inverse of decoding, for writes (and simulators): turns an engineering
 * value into what goes on the wire.
 *
 * - coil/discrete points: a boolean in, the same boolean out.
 * - `bit` points: a boolean in; needs `currentWord` (the register as read
 *   from the device, wire form) and returns it with the bit set or cleared:
 *   the caller writes back the whole register (read-modify-write).
 * - numbers: checked against the point's `min`/`max` (engineering units),
 *   converted with raw = (value − offset) / scale, rounded to the nearest
 *   integer for integer types, checked against the type's raw range, and laid
 *   out as `registerCount(point)` words in wire order (wordOrder, byteSwap).
 * - strings: ASCII only, at most 2 × length characters, NUL-padded.
 *
 * It checks neither `writable` nor whether the table is writable (input
 * registers and discrete inputs are read-only on the wire): that is the
 * write path's job.
 *
 * @throws IocError GW_ERR_DECODE naming the point and the reason.
 */
export function encodeValue(point: ModbusPoint, value: unknown, currentWord?: number): number[] | boolean {
  if (isBitTable(point.table) || point.bit !== undefined) {
    if (typeof value !== 'boolean') throw fail(point, `expected a boolean, got ${JSON.stringify(value)}`);
    if (point.bit === undefined) return value;
    if (currentWord === undefined) throw fail(point, `writing bit ${point.bit} needs the register's current value (read-modify-write)`);
    checkWords(point, [currentWord], 1);
    const word = point.byteSwap ? swapBytes(currentWord) : currentWord;
    const next = value ? word | (1 << point.bit) : word & ~(1 << point.bit) & 0xffff;
    return [point.byteSwap ? swapBytes(next) : next];
  }
  if (point.type === 'string') return encodeAscii(point, value);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw fail(point, `expected a finite number, got ${JSON.stringify(value)}`);
  if (point.min !== undefined && value < point.min) throw fail(point, `value ${value} is below min ${point.min}`);
  if (point.max !== undefined && value > point.max) throw fail(point, `value ${value} is above max ${point.max}`);
  const raw = (value - point.offset) / point.scale;
  const buf = Buffer.alloc(registerCount(point) * 2);
  const range = INT_RANGES[point.type];
  if (range) {
    const int = Math.round(raw);
    const big = Number.isFinite(int) ? BigInt(int) : undefined;
    if (big === undefined || big < range[0] || big > range[1]) {
      throw fail(point, `value ${value} is raw ${raw}, outside the ${point.type} range ${range[0]}..${range[1]}`);
    }
    switch (point.type) {
      case 'int16': buf.writeInt16BE(int); break;
      case 'uint16': buf.writeUInt16BE(int); break;
      case 'int32': buf.writeInt32BE(int); break;
      case 'uint32': buf.writeUInt32BE(int); break;
      case 'int64': buf.writeBigInt64BE(big); break;
      default: buf.writeBigUInt64BE(big); break;
    }
  } else if (point.type === 'float32') {
    if (!(Math.abs(raw) <= FLOAT32_MAX)) throw fail(point, `value ${value} is raw ${raw}, outside the float32 range`);
    buf.writeFloatBE(raw);
  } else if (point.type === 'float64') {
    if (!Number.isFinite(raw)) throw fail(point, `value ${value} is raw ${raw}, outside the float64 range`);
    buf.writeDoubleBE(raw);
  } else {
    throw fail(point, `type ${point.type} cannot be written to registers without 'bit'`);
  }
  const words: number[] = [];
  for (let i = 0; i < buf.length; i += 2) words.push(buf.readUInt16BE(i));
  if (point.wordOrder === 'little') words.reverse();
  return point.byteSwap ? words.map(swapBytes) : words;
}

function encodeAscii(point: ModbusPoint, value: unknown): number[] {
  if (typeof value !== 'string') throw fail(point, `expected a string, got ${JSON.stringify(value)}`);
  const count = registerCount(point);
  if (value.length > count * 2) throw fail(point, `string of ${value.length} characters does not fit in ${count} registers (${count * 2} characters)`);
  if (!/^[\x00-\x7f]*$/.test(value)) throw fail(point, 'string must be ASCII');
  const buf = Buffer.alloc(count * 2); // zero-filled: NUL padding
  buf.write(value, 'latin1');
  const words: number[] = [];
  for (let i = 0; i < buf.length; i += 2) words.push(buf.readUInt16BE(i));
  return point.byteSwap ? words.map(swapBytes) : words;
}
