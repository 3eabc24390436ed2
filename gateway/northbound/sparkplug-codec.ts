/**
 * Sparkplug B payload encoding and decoding (Sparkplug 3.0 chapter 6) with
 * protobufjs 8 over the Tahu schema `sparkplug_b.proto` beside this file (the
 * interface definition, EPL-2.0; read once at import, compiled by protobufjs
 * into an encoder/decoder for the `Payload` message).
 *
 * Why protobufjs 8 and not `sparkplug-payload` 1.0.3 (Eclipse Tahu's own JS
 * encoder): that package was last released in 2022, pins protobufjs 6 (whose
 * postinstall script npm now flags) and long 4, and puts UInt32 values in
 * `long_value` where the specification says uint32 (`int_value`, spec §6.4.16
 * "Datatype Details"). protobufjs 8 is maintained, and with the schema as data
 * we encode exactly what the specification says. The tests decode our output
 * with `sparkplug-payload` (its protobufjs 6 static module): an implementation
 * other than the encoder.
 *
 * Metric values travel in the oneof field the datatype names (see
 * sparkplug-metrics.ts for the mapping from profile point types).
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

/** Sparkplug B data types (spec §6.4.16, Tahu `DataType`). */
export const DataType = {
  Unknown: 0, Int8: 1, Int16: 2, Int32: 3, Int64: 4, UInt8: 5, UInt16: 6, UInt32: 7, UInt64: 8,
  Float: 9, Double: 10, Boolean: 11, String: 12, DateTime: 13, Text: 14, UUID: 15, DataSet: 16, Bytes: 17, File: 18, Template: 19,
  PropertySet: 20, PropertySetList: 21,
} as const;

/** One of {@link DataType}'s values. */
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** A 64-bit integer as protobufjs decodes it (long.js), or a plain number when encoding. */
export interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
  toNumber(): number;
  toSigned?(): LongLike;
}

/** A property value (spec §6.4.8): `type` is a {@link DataType} code. */
export interface SpPropertyValue {
  type: number;
  isNull?: boolean;
  intValue?: number;
  longValue?: number | LongLike;
  floatValue?: number;
  doubleValue?: number;
  booleanValue?: boolean;
  stringValue?: string;
}

/** A property set (spec §6.4.7): parallel arrays of keys and values. */
export interface SpPropertySet {
  keys: string[];
  values: SpPropertyValue[];
}

/** A metric (spec §6.4.3), field names as protobufjs spells them. */
export interface SpMetric {
  name?: string;
  alias?: number | LongLike;
  timestamp?: number | LongLike;
  datatype?: number;
  isHistorical?: boolean;
  isTransient?: boolean;
  isNull?: boolean;
  properties?: SpPropertySet;
  intValue?: number;
  longValue?: number | LongLike;
  floatValue?: number;
  doubleValue?: number;
  booleanValue?: boolean;
  stringValue?: string;
  bytesValue?: Uint8Array;
}

/** A Sparkplug B payload (spec §6.4.2). */
export interface SpPayload {
  timestamp?: number | LongLike;
  metrics: SpMetric[];
  seq?: number | LongLike;
  uuid?: string;
  body?: Uint8Array;
}

const root = protobuf.parse(readFileSync(new URL('./sparkplug_b.proto', import.meta.url), 'utf8')).root;
const PayloadType = root.lookupType('org.eclipse.tahu.protobuf.Payload');

/** Encodes a payload. Numbers are accepted for 64-bit fields (negative ones as two's complement). */
export function encodePayload(payload: SpPayload): Uint8Array {
  return PayloadType.encode(payload as unknown as protobuf.Message).finish();
}

/**
 * Decodes a payload.
 * @throws protobufjs's error for bytes that are not a valid `Payload` (callers log it with GW_ERR_SPARKPLUG_PAYLOAD).
 */
export function decodePayload(bytes: Uint8Array): SpPayload {
  // A plain object with only the fields present: a decoded message answers defaults (alias 0, name '') for absent ones.
  const msg = PayloadType.toObject(PayloadType.decode(bytes), { defaults: false, oneofs: true, arrays: true }) as unknown as SpPayload;
  if (!Array.isArray(msg.metrics)) msg.metrics = [];
  return msg;
}

/** A 64-bit field as a JS number: unsigned unless `signed` (two's complement). Absent → undefined. */
export function toNumber(v: number | LongLike | undefined | null, signed = false): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (signed) return v.high * 0x1_0000_0000 + (v.low >>> 0);
  return (v.high >>> 0) * 0x1_0000_0000 + (v.low >>> 0);
}

/** The value field a metric or property carries, by name; undefined when none is set. */
export function valueField(m: SpMetric | SpPropertyValue): 'intValue' | 'longValue' | 'floatValue' | 'doubleValue' | 'booleanValue' | 'stringValue' | 'bytesValue' | undefined {
  // protobufjs sets the oneof's virtual property to the name of the field present.
  const present = (m as { value?: unknown }).value;
  if (typeof present === 'string') return present as ReturnType<typeof valueField>;
  for (const k of ['intValue', 'longValue', 'floatValue', 'doubleValue', 'booleanValue', 'stringValue', 'bytesValue'] as const) {
    if (Object.prototype.hasOwnProperty.call(m, k)) return k;
  }
  return undefined;
}

