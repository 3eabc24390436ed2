/**
 * How profile points become Sparkplug metrics (Sparkplug 3.0 §6.4.3, §6.4.16):
 * datatype from the point type, engineering units and limits as metric
 * properties, reading quality as the `Quality` property (§6.4.9), values in
 * the oneof field of their datatype, and the reverse for commands (NCMD/DCMD
 * values checked against the datatype the birth announced).
 *
 * Datatypes. A point's reading is its *engineering* value (raw × scale +
 * offset), so the raw type decides only when that stays an integer:
 *
 * | point type | scale 1, offset 0 | otherwise |
 * |---|---|---|
 * | int8 / int16 / int32 / int64 | Int8 / Int16 / Int32 / Int64 | Double |
 * | uint8 / uint16 / uint32 / uint64 | UInt8 / UInt16 / UInt32 / UInt64 | Double |
 * | float32 | Float | Float |
 * | float64 | Double | Double |
 * | bool (coils, discrete inputs, register bits) | Boolean | Boolean |
 * | string | String | String |
 * | datetime / date-time (ms since epoch or ISO 8601) | DateTime | DateTime |
 *
 * Signed 8/16/32-bit values go in `int_value` (uint32) as 32-bit two's
 * complement, Int64 in `long_value` as 64-bit two's complement: what Tahu's
 * Java and JavaScript decoders read back. Commands may also send 8/16-bit
 * negatives in their own width's complement (0xFFFF for Int16 −1).
 *
 * Properties (keys as Ignition's MQTT Engine reads them; the specification
 * names only `Quality`): `engUnit` (String), `engLow` / `engHigh` (Double)
 * from the point's min/max, `Quality` (Int32: 0 BAD, 192 GOOD, 500 STALE —
 * [tck-id-payloads-propertyset-quality-value-type], [...-value-value]) only
 * when not good, and in births always.
 */
import { IocError, type Quality, type ReadingValue } from '../../contract/index.js';
import { DataType, toNumber, valueField, type SpMetric, type SpPropertySet, type SpPropertyValue } from './sparkplug-codec.js';

/** Quality codes of the `Quality` property (spec §6.4.9). */
export const QUALITY_CODE: Readonly<Record<Quality, number>> = { bad: 0, good: 192, stale: 500 };

/** What the mapping needs of a point (Modbus, serial-line and OPC UA points all have these). */
export interface PointShape {
  readonly name: string;
  readonly type: string;
  readonly scale?: number;
  readonly offset?: number;
  readonly unit?: string;
  readonly min?: number;
  readonly max?: number;
  readonly writable?: boolean;
  readonly description?: string;
}

/** A metric as announced in a birth: name, alias, datatype and fixed properties. */
export interface MetricDef {
  readonly name: string;
  readonly alias: number;
  readonly datatype: number;
  readonly writable: boolean;
  /** engUnit / engLow / engHigh (never Quality: that one follows the reading). */
  readonly properties: readonly [string, SpPropertyValue][];
}

const INT_TYPES: Record<string, number> = {
  int8: DataType.Int8, int16: DataType.Int16, int32: DataType.Int32, int64: DataType.Int64,
  uint8: DataType.UInt8, uint16: DataType.UInt16, uint32: DataType.UInt32, uint64: DataType.UInt64,
};

/** The Sparkplug datatype of a point's engineering value (table in the file comment). */
export function pointDatatype(p: PointShape): number {
  const t = p.type.toLowerCase();
  const unscaled = (p.scale ?? 1) === 1 && (p.offset ?? 0) === 0;
  if (t in INT_TYPES) return unscaled ? INT_TYPES[t]! : DataType.Double;
  switch (t) {
    case 'float32': return DataType.Float;
    case 'float64': return DataType.Double;
    case 'bool': case 'boolean': return DataType.Boolean;
    case 'string': return DataType.String;
    case 'datetime': case 'date-time': return DataType.DateTime;
    default: return DataType.Double;
  }
}

/** The birth definition of a point under `alias`. */
export function metricDef(p: PointShape, alias: number): MetricDef {
  const props: [string, SpPropertyValue][] = [];
  if (p.unit !== undefined) props.push(['engUnit', { type: DataType.String, stringValue: p.unit }]);
  if (p.min !== undefined) props.push(['engLow', { type: DataType.Double, doubleValue: p.min }]);
  if (p.max !== undefined) props.push(['engHigh', { type: DataType.Double, doubleValue: p.max }]);
  return { name: p.name, alias, datatype: pointDatatype(p), writable: p.writable === true, properties: props };
}

function propertySet(entries: readonly [string, SpPropertyValue][]): SpPropertySet {
  return { keys: entries.map(([k]) => k), values: entries.map(([, v]) => v) };
}

function qualityProp(q: Quality): [string, SpPropertyValue] {
  return ['Quality', { type: DataType.Int32, intValue: QUALITY_CODE[q] }];
}

/**
 * Puts `value` into `m` in the field of `datatype`. A value that does not fit
 * the datatype (a string for a number, NaN, out of the width) is sent as
 * `is_null` and the caller should mark it BAD.
 * @returns false when the value did not fit.
 */
export function setMetricValue(m: SpMetric, datatype: number, value: ReadingValue): boolean {
  if (value === null || value === undefined) {
    m.isNull = true;
    return true;
  }
  switch (datatype) {
    case DataType.Boolean:
      if (typeof value !== 'boolean') break;
      m.booleanValue = value;
      return true;
    case DataType.String: case DataType.Text: case DataType.UUID:
      m.stringValue = String(value);
      return true;
    case DataType.Float:
      if (typeof value !== 'number') break;
      m.floatValue = value;
      return true;
    case DataType.Double:
      if (typeof value !== 'number') break;
      m.doubleValue = value;
      return true;
    case DataType.DateTime: {
      const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : NaN;
      if (!Number.isFinite(ms) || ms < 0) break;
      m.longValue = Math.trunc(ms);
      return true;
    }
    case DataType.Int8: case DataType.Int16: case DataType.Int32: case DataType.UInt8: case DataType.UInt16: case DataType.UInt32:
      if (typeof value !== 'number' || !Number.isInteger(value) || !fitsWidth(datatype, value)) break;
      m.intValue = value >>> 0;
      return true;
    case DataType.Int64: case DataType.UInt64:
      if (typeof value !== 'number' || !Number.isInteger(value) || (datatype === DataType.UInt64 && value < 0)) break;
      m.longValue = value;
      return true;
  }
  m.isNull = true;
  return false;
}

const WIDTH: Record<number, [number, number]> = {
  [DataType.Int8]: [-128, 127], [DataType.Int16]: [-32768, 32767], [DataType.Int32]: [-2147483648, 2147483647],
  [DataType.UInt8]: [0, 255], [DataType.UInt16]: [0, 65535], [DataType.UInt32]: [0, 4294967295],
};

function fitsWidth(datatype: number, v: number): boolean {
  const w = WIDTH[datatype];
  return !w || (v >= w[0] && v <= w[1]);
}

/**
 * A birth metric (NBIRTH/DBIRTH): name, alias, datatype, timestamp, current
 * value (or is_null, [tck-id-operational-behavior-data-publish-dbirth-values])
 * and properties with the reading's Quality.
 */
export function birthMetric(def: MetricDef, value: ReadingValue | undefined, quality: Quality, ts: number): SpMetric {
  const m: SpMetric = { name: def.name, alias: def.alias, timestamp: ts, datatype: def.datatype };
  const fits = setMetricValue(m, def.datatype, value ?? null);
  m.properties = propertySet([...def.properties, qualityProp(fits ? quality : 'bad')]);
  return m;
}

/**
 * A data metric (NDATA/DDATA): alias only ([tck-id-payloads-alias-data-cmd-requirement]),
 * timestamp, value, is_historical, and Quality only when not good.
 */
export function dataMetric(def: MetricDef, value: ReadingValue, quality: Quality, ts: number, historical: boolean): SpMetric {
  const m: SpMetric = { alias: def.alias, timestamp: ts };
  if (historical) m.isHistorical = true;
  const fits = setMetricValue(m, def.datatype, value);
  const q = fits ? quality : 'bad';
  if (q !== 'good') m.properties = propertySet([qualityProp(q)]);
  return m;
}

/**
 * The value a command metric carries, checked against the datatype of the
 * birth ([tck-id-operational-behavior-data-commands-dcmd-metric-value]: "a
 * compatible metric value"). Range checks of the point itself (min/max,
 * writable) are the profile's, in the gateway's write path.
 * @throws IocError GW_ERR_SPARKPLUG_CMD naming the metric, the datatype and what arrived.
 */
export function commandValue(def: MetricDef, m: SpMetric): ReadingValue {
  const field = valueField(m);
  const fail = (why: string): never => {
    throw new IocError('GW_ERR_SPARKPLUG_CMD', `metric '${def.name}' (datatype ${datatypeName(def.datatype)}): ${why}; not written`, { context: { point: def.name } });
  };
  const widening = def.datatype === DataType.Double && m.datatype === DataType.Float;
  if (m.datatype !== undefined && m.datatype !== null && m.datatype !== 0 && m.datatype !== def.datatype && !widening) {
    fail(`the command says datatype ${datatypeName(m.datatype)}, the birth announced ${datatypeName(def.datatype)}`);
  }
  if (m.isNull) fail('the command carries a null value');
  const want: Record<number, string> = {
    [DataType.Boolean]: 'booleanValue', [DataType.Float]: 'floatValue', [DataType.Double]: 'doubleValue', [DataType.String]: 'stringValue', [DataType.Text]: 'stringValue',
    [DataType.Int8]: 'intValue', [DataType.Int16]: 'intValue', [DataType.Int32]: 'intValue', [DataType.UInt8]: 'intValue', [DataType.UInt16]: 'intValue', [DataType.UInt32]: 'intValue',
    [DataType.Int64]: 'longValue', [DataType.UInt64]: 'longValue', [DataType.DateTime]: 'longValue',
  };
  // A Double metric also takes a Float value (a host's narrower float), nothing else crosses fields.
  const accepted = def.datatype === DataType.Double && field === 'floatValue' ? 'floatValue' : want[def.datatype];
  if (field === undefined) fail('the command carries no value');
  if (field !== accepted) fail(`the value came as ${field}, expected ${want[def.datatype] ?? 'a supported datatype'}`);
  switch (field) {
    case 'booleanValue': return m.booleanValue as boolean;
    case 'stringValue': return m.stringValue as string;
    case 'floatValue': return m.floatValue as number;
    case 'doubleValue': return m.doubleValue as number;
    case 'intValue': {
      const raw = (m.intValue as number) >>> 0;
      const w = WIDTH[def.datatype]!;
      let v = w[0] < 0 ? raw | 0 : raw;
      // 8/16-bit negatives in their own width's two's complement.
      if (w[0] < 0 && v > w[1] && v <= w[1] * 2 + 1) v -= (w[1] + 1) * 2;
      if (v < w[0] || v > w[1]) fail(`${v} is outside ${w[0]}..${w[1]}`);
      return v;
    }
    default: {
      const signed = def.datatype === DataType.Int64;
      const v = toNumber(m.longValue, signed) as number;
      if (!Number.isSafeInteger(v)) fail(`${v} is beyond the 2^53 precision of the gateway's values`);
      return v;
    }
  }
}

/** The name of a datatype code, for messages. */
export function datatypeName(code: number): string {
  return Object.entries(DataType).find(([, v]) => v === code)?.[0] ?? `unknown (${code})`;
}
