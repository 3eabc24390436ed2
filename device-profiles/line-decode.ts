/**
 * Pure decoding of serial-line frames (one frame from {@link LineFramer}) into
 * engineering values: checksum first, then fields, then typed values. No I/O.
 *
 * Checksums:
 * - nmea-xor: XOR of every checked byte (NMEA 0183 §5.2.1: the characters
 *   between `$` and `*`), two hex digits;
 * - crc16-modbus: CRC-16, polynomial 0xA001 (reflected 0x8005), initial 0xFFFF
 *   (Modbus over Serial Line v1.02 §6.2.2; "CRC-16/MODBUS");
 * - sum8: sum of the checked bytes modulo 256.
 */
import { IocError, type Quality, type ReadingValue } from '../contract/index.js';
import { checksumSize } from './check-other-profiles.js';
import type { LineChecksumType, SerialLinePoint, SerialLineProfile, SerialLineSettings } from './line-types.js';

/** Computes a line checksum over `bytes`. */
export function lineChecksum(type: LineChecksumType, bytes: Uint8Array): number {
  switch (type) {
    case 'none':
      return 0;
    case 'nmea-xor': {
      let x = 0;
      for (const b of bytes) x ^= b;
      return x;
    }
    case 'sum8': {
      let s = 0;
      for (const b of bytes) s = (s + b) & 0xff;
      return s;
    }
    case 'crc16-modbus': {
      let crc = 0xffff;
      for (const b of bytes) {
        crc ^= b;
        for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
      }
      return crc;
    }
  }
}

function lineError(code: 'GW_ERR_LINE_CHECKSUM' | 'GW_ERR_LINE_FORMAT', detail: string, frame: Buffer): IocError {
  return new IocError(code, detail, { context: { frame: printable(frame) } });
}

/** A frame as text for logs: printable ASCII kept, everything else as \xHH; cut at 120 characters. */
export function printable(frame: Uint8Array): string {
  let s = '';
  for (const b of frame) {
    s += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
    if (s.length > 120) return `${s.slice(0, 120)}…`;
  }
  return s;
}

/**
 * Verifies a frame's checksum and returns its payload (the checked bytes,
 * without the checksum and its separator) as text (latin1).
 * @throws IocError GW_ERR_LINE_CHECKSUM on a wrong or missing checksum,
 *   GW_ERR_LINE_FORMAT when the frame is too short to hold one.
 */
export function checkLineFrame(settings: SerialLineSettings, frame: Buffer): string {
  const { type, format, separator, from } = settings.checksum;
  if (frame.length <= from) throw lineError('GW_ERR_LINE_FORMAT', `frame of ${frame.length} bytes is too short`, frame);
  if (type === 'none') return frame.subarray(from).toString('latin1');
  const size = checksumSize(type, format);
  let body: Buffer;
  let given: number;
  if (format === 'binary') {
    if (frame.length < from + size) throw lineError('GW_ERR_LINE_FORMAT', `frame of ${frame.length} bytes has no room for a ${size}-byte checksum`, frame);
    body = frame.subarray(from, frame.length - size);
    given = size === 2 ? frame.readUInt16LE(frame.length - 2) : (frame[frame.length - 1] as number);
  } else {
    let text = frame.toString('latin1');
    if (settings.trim) text = text.replace(/[\s]+$/, '');
    const sepAt = separator === '' ? text.length - size : text.lastIndexOf(separator);
    const digits = text.slice(sepAt + separator.length);
    if (sepAt < from || !new RegExp(`^[0-9A-Fa-f]{${size}}$`).test(digits)) {
      throw lineError('GW_ERR_LINE_CHECKSUM', `no ${size}-digit hex checksum after '${separator}' in the frame`, frame);
    }
    body = frame.subarray(from, sepAt);
    given = parseInt(digits, 16);
  }
  const computed = lineChecksum(type, body);
  if (computed !== given) {
    const w = type === 'crc16-modbus' ? 4 : 2;
    throw lineError('GW_ERR_LINE_CHECKSUM', `${type} checksum mismatch: frame says ${given.toString(16).padStart(w, '0')}, computed ${computed.toString(16).padStart(w, '0')}`, frame);
  }
  return body.toString('latin1');
}

/** One decoded point of a frame. `error` says why a point is `bad`. */
export interface LineValue {
  point: SerialLinePoint;
  value: ReadingValue;
  quality: Quality;
  error?: string;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INT_RANGES: Record<string, readonly [number, number]> = {
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  int32: [-0x8000_0000, 0x7fff_ffff],
  uint32: [0, 0xffff_ffff],
};

/** Parses one field as the point's type. Returns the engineering value or an error text. */
function parseField(point: SerialLinePoint, text: string): { value: ReadingValue } | { error: string } {
  if (point.type === 'string') return { value: text };
  if (point.type === 'bool') {
    const t = text.toLowerCase();
    if (point.trueText.some((x) => x.toLowerCase() === t)) return { value: true };
    if (point.falseText.some((x) => x.toLowerCase() === t)) return { value: false };
    return { error: `'${text}' is neither true (${point.trueText.join('/')}) nor false (${point.falseText.join('/')})` };
  }
  if (!NUMBER.test(text)) return { error: `'${text}' is not a number` };
  const raw = Number(text);
  const range = INT_RANGES[point.type];
  if (range && (!Number.isInteger(raw) || raw < range[0] || raw > range[1])) return { error: `'${text}' is not a ${point.type}` };
  if (point.type === 'float32' && !(Math.abs(raw) <= 3.4028234663852886e38)) return { error: `'${text}' is outside the float32 range` };
  const value = point.scale === 1 && point.offset === 0 ? raw : Number((raw * point.scale + point.offset).toPrecision(15));
  if (point.min !== undefined && value < point.min) return { error: `${value} is below the plausible minimum ${point.min}` };
  if (point.max !== undefined && value > point.max) return { error: `${value} is above the plausible maximum ${point.max}` };
  return { value };
}

/**
 * Decodes one frame with a serial-line profile: checksum, then fields, then
 * each point. Frames of a sentence no point listens to decode to `[]`. A
 * field that does not parse (or falls outside min/max) gives that point
 * `quality: 'bad'`, value null and an `error`; the other points are still good.
 * @throws IocError GW_ERR_LINE_CHECKSUM (bad or missing checksum) or
 *   GW_ERR_LINE_FORMAT (payload does not match the regex, too few fields).
 */
export function decodeLine(profile: SerialLineProfile, frame: Buffer): LineValue[] {
  const settings = profile.serialLine;
  let payload = checkLineFrame(settings, frame);
  if (settings.trim) payload = payload.trim();
  const fields = settings.fields;
  let pick: (point: SerialLinePoint) => string | undefined;
  let points = profile.points;
  if (fields.mode === 'delimited') {
    const parts = payload.split(fields.separator).map((f) => (settings.trim ? f.trim() : f));
    points = points.filter((p) => p.sentence === undefined || p.sentence === parts[0]);
    if (points.length === 0) return [];
    const needed = Math.max(...points.map((p) => p.field as number)) + 1;
    if (parts.length < needed) throw lineError('GW_ERR_LINE_FORMAT', `frame has ${parts.length} fields, the profile reads field ${needed - 1}`, frame);
    pick = (p) => parts[p.field as number];
  } else {
    const m = new RegExp(fields.pattern).exec(payload);
    if (!m) throw lineError('GW_ERR_LINE_FORMAT', `payload does not match the profile's pattern`, frame);
    pick = (p) => m.groups?.[p.field as string];
  }
  return points.map((point) => {
    const text = pick(point);
    if (text === undefined) return { point, value: null, quality: 'bad', error: `field ${String(point.field)} is missing` } satisfies LineValue;
    const parsed = parseField(point, settings.trim ? text.trim() : text);
    return 'error' in parsed ? { point, value: null, quality: 'bad', error: parsed.error } : { point, value: parsed.value, quality: 'good' };
  });
}
