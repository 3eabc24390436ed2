/**
 * Decoding Sparkplug B payloads in tests with an implementation other than the
 * gateway's encoder: Eclipse Tahu's `sparkplug-payload` 1.0.3 (protobufjs 6,
 * its own compiled static module). Its high-level decoder reads UInt32 from
 * `long_value` (the specification puts UInt32 in `int_value`, Sparkplug 3.0
 * §6.4.16), so values are read here from the raw message of its static module.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tahuProto = require('sparkplug-payload/lib/sparkplugPayloadProto.js') as {
  org: { eclipse: { tahu: { protobuf: { Payload: { decode(b: Uint8Array): unknown; toObject(m: unknown, o: Record<string, unknown>): unknown } } } } };
};
const TahuPayload = tahuProto.org.eclipse.tahu.protobuf.Payload;

/** A decoded metric, 64-bit fields as numbers (signed where the datatype is), the value resolved from its datatype. */
export interface DecodedMetric {
  name?: string;
  alias?: number;
  timestamp?: number;
  datatype?: number;
  isHistorical: boolean;
  isNull: boolean;
  /** The value field that was set (`intValue`, `longValue`…), or undefined. */
  field?: string;
  value: unknown;
  properties: Record<string, { type: number; value: unknown }>;
}

/** A decoded payload. */
export interface DecodedPayload {
  timestamp?: number;
  seq?: number;
  metrics: DecodedMetric[];
}

type Raw = Record<string, unknown>;

function num(v: unknown, signed = false): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  const l = v as { low: number; high: number };
  return signed ? l.high * 0x1_0000_0000 + (l.low >>> 0) : (l.high >>> 0) * 0x1_0000_0000 + (l.low >>> 0);
}

const FIELDS = ['intValue', 'longValue', 'floatValue', 'doubleValue', 'booleanValue', 'stringValue', 'bytesValue'];

/** The value of a metric or property by datatype (Sparkplug 3.0 §6.4.16). */
function valueOf(datatype: number | undefined, raw: Raw): { field?: string; value: unknown } {
  const field = FIELDS.find((f) => raw[f] !== undefined);
  if (!field) return { value: undefined };
  const v = raw[field];
  if (field === 'intValue') {
    const u = (v as number) >>> 0;
    if (datatype === 1 || datatype === 2 || datatype === 3) return { field, value: u | 0 };
    return { field, value: u };
  }
  if (field === 'longValue') return { field, value: num(v, datatype === 4) };
  return { field, value: v };
}

/**
 * Decodes with Tahu's sparkplug-payload; throws on bytes that are not a Payload.
 * Data metrics carry no datatype: pass the birth's alias → datatype map so
 * signed values read back signed, as a host does.
 */
export function decodeSparkplug(bytes: Uint8Array, birthTypes?: ReadonlyMap<number, number>): DecodedPayload {
  const msg = TahuPayload.decode(bytes);
  const o = TahuPayload.toObject(msg, { defaults: false, oneofs: false }) as Raw;
  const metrics = ((o.metrics as Raw[] | undefined) ?? []).map((m): DecodedMetric => {
    const datatype = (m.datatype as number | undefined) ?? (m.alias !== undefined ? birthTypes?.get(num(m.alias)!) : undefined);
    const properties: DecodedMetric['properties'] = {};
    const ps = m.properties as { keys?: string[]; values?: Raw[] } | undefined;
    (ps?.keys ?? []).forEach((k, i) => {
      const pv = ps!.values![i]!;
      properties[k] = { type: pv.type as number, value: valueOf(pv.type as number, pv).value };
    });
    const { field, value } = valueOf(datatype, m);
    const d: DecodedMetric = { isHistorical: m.isHistorical === true, isNull: m.isNull === true, value, properties };
    if (m.name !== undefined) d.name = m.name as string;
    if (m.alias !== undefined) d.alias = num(m.alias);
    if (m.timestamp !== undefined) d.timestamp = num(m.timestamp);
    if (m.datatype !== undefined) d.datatype = m.datatype as number;
    if (field !== undefined) d.field = field;
    return d;
  });
  const out: DecodedPayload = { metrics };
  if (o.timestamp !== undefined) out.timestamp = num(o.timestamp);
  if (o.seq !== undefined) out.seq = num(o.seq);
  return out;
}

/** Encodes a command payload (NCMD/DCMD, as a host sends it) with Tahu's high-level encoder: metrics `{name | alias, type: 'Int16', value}`. */
export function encodeTahu(payload: { timestamp: number; metrics: Raw[]; seq?: number }): Uint8Array {
  const sp = (require('sparkplug-payload') as { get(ns: string): { encodePayload(p: unknown): Uint8Array } }).get('spBv1.0');
  return sp.encodePayload(payload);
}
