/**
 * How a reading is stored by either backend (the `flags` column: value type, quality, historical) and read back.
 */
import type { Quality, Reading, ReadingValue } from '../../../contract/index.js';

const QUALITY: Quality[] = ['good', 'bad', 'stale'];
const QUALITY_CODE: Record<Quality, number> = { good: 0, bad: 1, stale: 2 };

/** Low two bits of `flags`: how `value` is to be read back. */
export const enum VType {
  Number = 0,
  Boolean = 1,
  String = 2,
  Null = 3,
}

/** `flags` = vtype | quality << 2 | historical << 4. */
export function packFlags(value: ReadingValue, quality: Quality, historical: boolean): number {
  const vtype = value === null ? VType.Null : typeof value === 'boolean' ? VType.Boolean : typeof value === 'string' ? VType.String : VType.Number;
  return vtype | (QUALITY_CODE[quality] << 2) | (historical ? 16 : 0);
}

/** The column value of a reading's value (booleans as 0/1). */
export function columnValue(value: ReadingValue): unknown {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value;
}

/** SQL condition: good numeric or boolean readings (what aggregates may use). */
export const GOOD_NUMERIC = `(flags & 3) IN (${VType.Number}, ${VType.Boolean}) AND (flags & 12) = 0`;

/** A stored reading row joined with its series. */
export interface RawReadingRow {
  gateway: string;
  device: string;
  point: string;
  ts: number;
  value: unknown;
  flags: number;
}

/** A reading as the store returns it. */
export interface StoredReading extends Reading {
  gateway: string;
}

/**
 * A stored row as a reading. Never throws and always yields the API's types:
 * a value that does not read back as its recorded type (a row of an older
 * version, or written by hand) becomes null with quality `bad`, so one such
 * row neither fails an answer nor hides the others.
 */
export function toReading(r: RawReadingRow): StoredReading {
  const flags = Number.isSafeInteger(r.flags) ? r.flags : VType.Null | (QUALITY_CODE.bad << 2);
  let value: ReadingValue;
  let sound = true;
  switch (flags & 3) {
    case VType.Boolean:
      value = r.value === 1;
      break;
    case VType.Null:
      value = null;
      break;
    case VType.String:
      value = typeof r.value === 'string' ? r.value.slice(0, 256) : Buffer.isBuffer(r.value) ? r.value.toString('utf8', 0, 256) : String(r.value);
      break;
    default:
      sound = typeof r.value === 'number' && Number.isFinite(r.value);
      value = sound ? (r.value as number) : null;
  }
  const ts = Number.isSafeInteger(r.ts) ? r.ts : 0;
  return { gateway: String(r.gateway), device: String(r.device), point: String(r.point), ts, value, quality: sound && ts === r.ts ? (QUALITY[(flags >> 2) & 3] ?? 'bad') : 'bad' };
}
