/**
 * Encodes data payloads (NDATA/DDATA) straight into protobuf bytes, field by
 * field as `sparkplug_b.proto` numbers them (Protocol Buffers encoding:
 * varints, fixed32/fixed64 little-endian, length-delimited nested messages),
 * into reused buffers: data messages are the hot path (one per device per
 * outbox batch, 30,000 readings/s in bench:sparkplug), and protobufjs's
 * reflection encoder and Writer allocate per field. Births and commands use
 * `encodePayload` (sparkplug-codec.ts); a test checks both give the same bytes.
 */
import type { SpMetric, SpPropertySet } from './sparkplug-codec.js';

// Little-endian views for doubles and floats (x86 and ARM gateways are little-endian; checked below).
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const F32 = new Float32Array(1);
const F32_BYTES = new Uint8Array(F32.buffer);
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('sparkplug-data-writer assumes a little-endian machine');

/** A growable byte buffer with the protobuf primitives this file needs. */
class ByteWriter {
  buf = Buffer.allocUnsafe(4096);
  pos = 0;

  reset(): this {
    this.pos = 0;
    return this;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Tag: field number and wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32). */
  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  /** A non-negative integer up to 2^53, or a negative one as 64-bit two's complement (10 bytes). */
  varint(n: number): this {
    this.ensure(10);
    const buf = this.buf;
    if (n >= 0 && n < 0x80000000) {
      // Fast path: 31 bits, plain bit operations.
      while (n > 127) {
        buf[this.pos++] = (n & 127) | 128;
        n >>>= 7;
      }
      buf[this.pos++] = n;
      return this;
    }
    // Two 32-bit halves (two's complement for negatives), as protobuf's LongBits.
    let lo: number;
    let hi: number;
    if (n >= 0) {
      lo = n >>> 0;
      hi = ((n - lo) / 4294967296) >>> 0;
    } else {
      const b = BigInt.asUintN(64, BigInt(Math.trunc(n)));
      lo = Number(b & 0xffffffffn);
      hi = Number(b >> 32n);
    }
    while (hi > 0) {
      buf[this.pos++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 127) {
      buf[this.pos++] = (lo & 127) | 128;
      lo >>>= 7;
    }
    buf[this.pos++] = lo;
    return this;
  }

  double(v: number): this {
    this.ensure(8);
    F64[0] = v;
    this.buf.set(F64_BYTES, this.pos);
    this.pos += 8;
    return this;
  }

  float(v: number): this {
    this.ensure(4);
    F32[0] = v;
    this.buf.set(F32_BYTES, this.pos);
    this.pos += 4;
    return this;
  }

  string(s: string): this {
    const n = Buffer.byteLength(s);
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
    return this;
  }

  /** A nested message already written into `inner`, as field `field`. */
  nested(field: number, inner: ByteWriter): this {
    this.tag(field, 2).varint(inner.pos);
    this.ensure(inner.pos);
    inner.buf.copy(this.buf, this.pos, 0, inner.pos);
    this.pos += inner.pos;
    return this;
  }
}

// One writer per nesting depth: payload, metric, property set, property value.
const payloadW = new ByteWriter();
const metricW = new ByteWriter();
const setW = new ByteWriter();
const valueW = new ByteWriter();

function writeProperties(ps: SpPropertySet): ByteWriter {
  const w = setW.reset();
  for (const k of ps.keys) w.tag(1, 2).string(k);
  for (const v of ps.values) {
    const vw = valueW.reset().tag(1, 0).varint(v.type);
    if (v.isNull !== undefined) vw.tag(2, 0).varint(v.isNull ? 1 : 0);
    if (v.intValue !== undefined) vw.tag(3, 0).varint(v.intValue >>> 0);
    else if (v.longValue !== undefined) vw.tag(4, 0).varint(v.longValue as number);
    else if (v.floatValue !== undefined) vw.tag(5, 5).float(v.floatValue);
    else if (v.doubleValue !== undefined) vw.tag(6, 1).double(v.doubleValue);
    else if (v.booleanValue !== undefined) vw.tag(7, 0).varint(v.booleanValue ? 1 : 0);
    else if (v.stringValue !== undefined) vw.tag(8, 2).string(v.stringValue);
    w.nested(2, vw);
  }
  return w;
}

function writeMetric(m: SpMetric): ByteWriter {
  const w = metricW.reset();
  if (m.name !== undefined) w.tag(1, 2).string(m.name);
  if (m.alias !== undefined) w.tag(2, 0).varint(m.alias as number);
  if (m.timestamp !== undefined) w.tag(3, 0).varint(m.timestamp as number);
  if (m.datatype !== undefined) w.tag(4, 0).varint(m.datatype);
  if (m.isHistorical !== undefined) w.tag(5, 0).varint(m.isHistorical ? 1 : 0);
  if (m.isNull !== undefined) w.tag(7, 0).varint(m.isNull ? 1 : 0);
  if (m.properties) w.nested(9, writeProperties(m.properties));
  if (m.intValue !== undefined) w.tag(10, 0).varint(m.intValue >>> 0);
  else if (m.longValue !== undefined) w.tag(11, 0).varint(m.longValue as number);
  else if (m.floatValue !== undefined) w.tag(12, 5).float(m.floatValue);
  else if (m.doubleValue !== undefined) w.tag(13, 1).double(m.doubleValue);
  else if (m.booleanValue !== undefined) w.tag(14, 0).varint(m.booleanValue ? 1 : 0);
  else if (m.stringValue !== undefined) w.tag(15, 2).string(m.stringValue);
  return w;
}

/** A data payload: timestamp (field 1), metrics (2), seq (3). */
export function encodeDataPayload(timestamp: number, seq: number, metrics: readonly SpMetric[]): Buffer {
  const w = payloadW.reset().tag(1, 0).varint(timestamp);
  for (const m of metrics) w.nested(2, writeMetric(m));
  w.tag(3, 0).varint(seq);
  return Buffer.from(w.buf.subarray(0, w.pos));
}
