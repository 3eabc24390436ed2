/**
 * Pure conversion of OPC UA variant values into engineering values, driven
 * by an OPC UA point of a profile. No I/O and no node-opcua import: the
 * driver passes `variant.value` as it came.
 */
import { IocError, type ReadingValue } from '../contract/index.js';
import type { OpcuaPoint } from './opcua-types.js';

function fail(point: OpcuaPoint, reason: string): IocError {
  return new IocError('GW_ERR_DECODE', `point '${point.name}': ${reason}`, { context: { point: point.name } });
}

/** 64-bit integers arrive from node-opcua as `[high, low]` uint32 pairs (OPC UA Part 6 §5.2.2.2). */
function fromHighLow(v: unknown, signed: boolean): number | undefined {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => Number.isInteger(x))) return undefined;
  const big = (BigInt(v[0] as number) << 32n) | BigInt((v[1] as number) >>> 0);
  return Number(signed ? BigInt.asIntN(64, big) : big);
}

/**
 * Converts `raw` (a variant's value) to the point's type: numbers (also
 * numeric strings, booleans as 0/1, bigint and [high, low] pairs) scaled with
 * `raw × scale + offset`; bools from booleans or numbers (non-zero = true);
 * strings from strings, LocalizedText/QualifiedName (`.text`/`.name`), dates
 * (ISO 8601) or numbers. NaN and infinities become null, as in Modbus decoding.
 * @throws IocError GW_ERR_DECODE when the value cannot be the point's type.
 */
export function coerceOpcuaValue(point: OpcuaPoint, raw: unknown): ReadingValue {
  if (raw === null || raw === undefined) return null;
  if (point.type === 'string') {
    if (typeof raw === 'string') return raw;
    if (raw instanceof Date) return raw.toISOString();
    if (typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'bigint') return String(raw);
    const o = raw as { text?: unknown; name?: unknown };
    if (typeof o.text === 'string') return o.text;
    if (typeof o.name === 'string') return o.name;
    throw fail(point, `a ${typeof raw} value cannot be a string point`);
  }
  if (point.type === 'bool') {
    if (typeof raw === 'boolean') return raw;
    if (typeof raw === 'number' && Number.isFinite(raw)) return raw !== 0;
    throw fail(point, `expected a boolean, got ${JSON.stringify(raw)}`);
  }
  let n: number | undefined;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'boolean') n = raw ? 1 : 0;
  else if (typeof raw === 'bigint') n = Number(raw);
  else if (typeof raw === 'string' && raw.trim() !== '' && Number.isFinite(Number(raw))) n = Number(raw);
  else n = fromHighLow(raw, point.type === 'int64');
  if (n === undefined) throw fail(point, `expected a number, got ${JSON.stringify(raw)?.slice(0, 80)}`);
  if (!Number.isFinite(n)) return null;
  if (point.scale === 1 && point.offset === 0) return n;
  return Number((n * point.scale + point.offset).toPrecision(15));
}
