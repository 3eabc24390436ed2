/**
 * Sparkplug B encoding of every profile point type, decoded by Tahu's
 * sparkplug-payload (test/support/sparkplug-decode.ts), and command values
 * checked against the birth datatype.
 */
import t from 'tap';
import { encodeTahu, decodeSparkplug } from '../../../test/support/sparkplug-decode.js';
import { DataType, decodePayload, encodePayload } from '../sparkplug-codec.js';
import { encodeDataPayload } from '../sparkplug-data-writer.js';
import { birthMetric, commandValue, dataMetric, metricDef, pointDatatype, type PointShape } from '../sparkplug-metrics.js';

const TS = 1_764_000_000_123;

const cases: Array<{ p: PointShape; value: number | boolean | string; dt: number; field: string; back?: unknown }> = [
  { p: { name: 'i8', type: 'int8' }, value: -128, dt: DataType.Int8, field: 'intValue' },
  { p: { name: 'i16', type: 'int16' }, value: -32768, dt: DataType.Int16, field: 'intValue' },
  { p: { name: 'i32', type: 'int32' }, value: -2147483648, dt: DataType.Int32, field: 'intValue' },
  { p: { name: 'i64', type: 'int64' }, value: -9007199254740991, dt: DataType.Int64, field: 'longValue' },
  { p: { name: 'u8', type: 'uint8' }, value: 255, dt: DataType.UInt8, field: 'intValue' },
  { p: { name: 'u16', type: 'uint16' }, value: 65535, dt: DataType.UInt16, field: 'intValue' },
  { p: { name: 'u32', type: 'uint32' }, value: 4294967295, dt: DataType.UInt32, field: 'intValue' },
  { p: { name: 'u64', type: 'uint64' }, value: 9007199254740991, dt: DataType.UInt64, field: 'longValue' },
  { p: { name: 'f32', type: 'float32' }, value: 0.5, dt: DataType.Float, field: 'floatValue' },
  { p: { name: 'f64', type: 'float64' }, value: 0.1 + 0.2, dt: DataType.Double, field: 'doubleValue' },
  { p: { name: 'coil', type: 'bool' }, value: true, dt: DataType.Boolean, field: 'booleanValue' },
  { p: { name: 'bit3', type: 'bool' }, value: false, dt: DataType.Boolean, field: 'booleanValue' },
  { p: { name: 'text', type: 'string' }, value: 'SDM630 v2 ✓', dt: DataType.String, field: 'stringValue' },
  { p: { name: 'when', type: 'datetime' }, value: TS, dt: DataType.DateTime, field: 'longValue' },
  { p: { name: 'when_iso', type: 'date-time' }, value: '2026-12-02T12:00:00.250Z', dt: DataType.DateTime, field: 'longValue', back: Date.parse('2026-12-02T12:00:00.250Z') },
  // Scaled integers are engineering values: Double.
  { p: { name: 'level', type: 'uint16', scale: 0.001, unit: 'm', min: 0, max: 10 }, value: 1.234, dt: DataType.Double, field: 'doubleValue' },
  { p: { name: 'temp', type: 'int16', offset: -40 }, value: -12.5, dt: DataType.Double, field: 'doubleValue' },
];

t.test('every point type: datatype, value field and value survive Tahu decoding (birth and data)', async (t) => {
  const defs = cases.map((c, i) => metricDef(c.p, i + 1));
  const birth = decodeSparkplug(encodePayload({ timestamp: TS, seq: 0, metrics: defs.map((d, i) => birthMetric(d, cases[i]!.value, 'good', TS)) }));
  const data = decodeSparkplug(encodePayload({ timestamp: TS, seq: 1, metrics: defs.map((d, i) => dataMetric(d, cases[i]!.value, 'good', TS + i, false)) }), new Map(defs.map((d) => [d.alias, d.datatype])));
  t.equal(birth.seq, 0);
  t.equal(data.seq, 1);
  cases.forEach((c, i) => {
    const b = birth.metrics[i]!;
    const d = data.metrics[i]!;
    t.equal(pointDatatype(c.p), c.dt, `${c.p.name}: datatype`);
    t.match(b, { name: c.p.name, alias: i + 1, datatype: c.dt, field: c.field, timestamp: TS }, `${c.p.name}: birth metric`);
    t.equal(b.properties.Quality?.value, 192, `${c.p.name}: birth says GOOD`);
    t.equal(d.name, undefined, `${c.p.name}: data metrics carry the alias only`);
    t.equal(d.datatype, undefined, `${c.p.name}: no datatype after birth`);
    t.equal(d.alias, i + 1);
    t.equal(d.timestamp, TS + i);
    const want = c.back ?? (c.dt === DataType.Float ? Math.fround(c.value as number) : c.value);
    t.equal(b.value, want, `${c.p.name}: birth value`);
    t.equal(d.value, want, `${c.p.name}: data value`);
    t.same(d.properties, {}, `${c.p.name}: good quality sends no property in data`);
  });
  const level = birth.metrics[15]!;
  t.same(level.properties, {
    engUnit: { type: DataType.String, value: 'm' }, engLow: { type: DataType.Double, value: 0 }, engHigh: { type: DataType.Double, value: 10 },
    Quality: { type: DataType.Int32, value: 192 },
  }, 'units and limits as properties');
});

t.test('quality, null, historical and values that do not fit', async (t) => {
  const def = metricDef({ name: 'p', type: 'int16' }, 7);
  const out = decodeSparkplug(encodePayload({
    timestamp: TS, seq: 5, metrics: [
      dataMetric(def, 3, 'stale', TS, false),
      dataMetric(def, null, 'bad', TS, false),
      dataMetric(def, 4, 'good', TS - 60_000, true),
      dataMetric(def, 40_000, 'good', TS, false),
      dataMetric(def, 'x', 'good', TS, false),
    ],
  }), new Map([[7, DataType.Int16]]));
  t.match(out.metrics[0], { value: 3, properties: { Quality: { type: DataType.Int32, value: 500 } } }, 'stale: Quality 500');
  t.match(out.metrics[1], { isNull: true, field: undefined, properties: { Quality: { value: 0 } } }, 'null: is_null, no value, BAD');
  t.match(out.metrics[2], { isHistorical: true, value: 4, timestamp: TS - 60_000 }, 'is_historical');
  t.match(out.metrics[3], { isNull: true, properties: { Quality: { value: 0 } } }, 'out of the Int16 range: null and BAD, never a wrapped number');
  t.match(out.metrics[4], { isNull: true, properties: { Quality: { value: 0 } } }, 'a string for a number: null and BAD');
});

t.test('command values: datatype checked, two widths of complement accepted', async (t) => {
  const i16 = metricDef({ name: 'sp', type: 'int16', writable: true }, 1);
  const dbl = metricDef({ name: 'alarm_level', type: 'uint16', scale: 0.001, writable: true }, 2);
  const u32 = metricDef({ name: 'count', type: 'uint32', writable: true }, 3);
  const i64 = metricDef({ name: 'big', type: 'int64', writable: true }, 4);
  const cmd = (metrics: Array<Record<string, unknown>>) => decodePayload(encodeTahu({ timestamp: TS, metrics }));
  t.equal(commandValue(i16, cmd([{ alias: 1, type: 'Int16', value: -5 }]).metrics[0]!), -5, 'Tahu-encoded Int16 -5 (sign-extended)');
  t.equal(commandValue(i16, encodedInt(0xfffb)), -5, 'Int16 -5 as 16-bit complement');
  t.equal(commandValue(dbl, cmd([{ alias: 2, type: 'Double', value: 1.5 }]).metrics[0]!), 1.5);
  t.equal(commandValue(dbl, cmd([{ alias: 2, type: 'Float', value: 1.5 }]).metrics[0]!), 1.5, 'a Float for a Double is accepted');
  t.equal(commandValue(u32, encodedInt(4294967295, DataType.UInt32)), 4294967295);
  t.equal(commandValue(i64, cmd([{ alias: 4, type: 'Int64', value: -7 }]).metrics[0]!), -7);
  t.throws(() => commandValue(i16, cmd([{ alias: 1, type: 'Boolean', value: true }]).metrics[0]!), { code: 'GW_ERR_SPARKPLUG_CMD', message: /metric 'sp' \(datatype Int16\): the command says datatype Boolean, the birth announced Int16/ });
  t.throws(() => commandValue(i16, cmd([{ alias: 1, type: 'String', value: '5' }]).metrics[0]!), { code: 'GW_ERR_SPARKPLUG_CMD' });
  t.throws(() => commandValue(i16, encodedInt(70000)), { code: 'GW_ERR_SPARKPLUG_CMD', message: /70000 is outside -32768\.\.32767/ });
  t.throws(() => commandValue(dbl, cmd([{ alias: 2, type: 'Double', value: null, isNull: true }]).metrics[0]!), { code: 'GW_ERR_SPARKPLUG_CMD', message: /null/ });
});

t.test('the hand-written data encoder gives the bytes of the reflection encoder', async (t) => {
  const metrics = cases.map((c, i) => dataMetric(metricDef(c.p, i + 1), c.value, i % 4 === 1 ? 'stale' : 'good', TS + i, i % 3 === 0));
  metrics.push(dataMetric(metricDef({ name: 'n', type: 'int64' }, 99), null, 'bad', TS, false));
  metrics.push(dataMetric(metricDef({ name: 'big', type: 'uint64' }, 2 ** 40), 2 ** 52 + 3, 'good', 2 ** 45, false));
  for (const seq of [0, 127, 128, 255]) {
    t.same(Buffer.from(encodeDataPayload(TS, seq, metrics)), Buffer.from(encodePayload({ timestamp: TS, seq, metrics })), `seq ${seq}`);
  }
  const big = Array.from({ length: 400 }, (_, i) => dataMetric(metricDef({ name: `s${i}`, type: 'string' }, i + 1), 'x'.repeat(i), 'good', TS, false));
  t.same(Buffer.from(encodeDataPayload(TS, 1, big)), Buffer.from(encodePayload({ timestamp: TS, seq: 1, metrics: big })), 'past the initial buffer size');
});

t.test('malformed bytes are refused by the decoder', async (t) => {
  t.throws(() => decodePayload(Buffer.from([0x12, 0xff, 0xff, 0xff, 0x0f, 0x01])));
});

function encodedInt(v: number, datatype?: number) {
  return decodePayload(encodePayload({ timestamp: TS, metrics: [{ alias: 1, intValue: v >>> 0, ...(datatype ? { datatype } : {}) }] })).metrics[0]!;
}
