/**
 * The bookkeeping of one Sparkplug edge node session, apart from MQTT
 * (sparkplug-node.ts): the message sequence number, aliases, which devices
 * are born, and the payloads of births, deaths and data.
 *
 * - `seq` is 0 in NBIRTH and one more in every later message of the node,
 *   255 wrapping to 0 ([tck-id-topics-nbirth-seq-num],
 *   [tck-id-payloads-sequence-num-incrementing]); NDEATH carries none
 *   ([tck-id-topics-ndeath-seq]).
 * - Aliases are unique across the node's metrics
 *   ([tck-id-payloads-alias-uniqueness]), given at every birth in
 *   configuration order; births carry name and alias
 *   ([tck-id-payloads-alias-birth-requirement]), data the alias only.
 *   `Node Control/Rebirth` has no alias
 *   ([tck-id-operational-behavior-data-commands-rebirth-name-aliases]).
 * - NBIRTH holds bdSeq (Int64, the will's value) and `Node Control/Rebirth`
 *   (Boolean false) ([tck-id-topics-nbirth-bdseq-included],
 *   [tck-id-topics-nbirth-rebirth-metric]).
 */
import type { Quality, Reading, ReadingValue } from '../../contract/index.js';
import { DataType, encodePayload, type SpMetric } from './sparkplug-codec.js';
import { encodeDataPayload } from './sparkplug-data-writer.js';
import { birthMetric, dataMetric, metricDef, type MetricDef, type PointShape } from './sparkplug-metrics.js';

/** The name of the rebirth metric (spec §6.4.19 "Node Control/Rebirth"). */
export const REBIRTH_METRIC = 'Node Control/Rebirth';

/** A device as a Sparkplug device: its id and its profile's points. */
export interface SparkplugDevice {
  readonly id: string;
  readonly points: readonly PointShape[];
}

/** The NDEATH payload: bdSeq only ([tck-id-topics-ndeath-payload]), no seq. */
export function ndeathPayload(bdSeq: number, now: number): Uint8Array {
  return encodePayload({ timestamp: now, metrics: [{ name: 'bdSeq', timestamp: now, datatype: DataType.Int64, longValue: bdSeq }] });
}

/** Sequence, aliases and births of one session. */
export class SparkplugSession {
  private seq = 0;
  private readonly defs = new Map<string, Map<string, MetricDef>>();
  private readonly byAlias = new Map<number, { device: string; def: MetricDef }>();
  /** Device → time of its current DBIRTH (readings older than it are historical). */
  private readonly born = new Map<string, number>();

  /** Builds the aliases of a new birth sequence for `devices` (configuration order). */
  define(devices: readonly SparkplugDevice[]): void {
    this.defs.clear();
    this.byAlias.clear();
    this.born.clear();
    let alias = 1;
    for (const d of devices) {
      const m = new Map<string, MetricDef>();
      for (const p of d.points) {
        const def = metricDef(p, alias++);
        m.set(p.name, def);
        this.byAlias.set(def.alias, { device: d.id, def });
      }
      this.defs.set(d.id, m);
    }
  }

  /** The next message sequence number (0..255). */
  private nextSeq(): number {
    const s = this.seq;
    this.seq = (this.seq + 1) % 256;
    return s;
  }

  /** The current sequence number the next message will carry (tests, status). */
  get nextSequence(): number {
    return this.seq;
  }

  /** True when the device is part of this session's definitions. */
  knows(device: string): boolean {
    return this.defs.has(device);
  }

  /** True when the device has a DBIRTH in this session and no DDEATH since. */
  isBorn(device: string): boolean {
    return this.born.has(device);
  }

  /** Born devices. */
  bornDevices(): string[] {
    return [...this.born.keys()];
  }

  /** Metric definition of a device's point, by name. */
  def(device: string, point: string): MetricDef | undefined {
    return this.defs.get(device)?.get(point);
  }

  /** Metric definition by alias, with its device. */
  byAliasOf(alias: number): { device: string; def: MetricDef } | undefined {
    return this.byAlias.get(alias);
  }

  /** NBIRTH: seq 0, bdSeq, Node Control/Rebirth false. */
  nbirth(bdSeq: number, now: number): Uint8Array {
    this.seq = 0;
    const metrics: SpMetric[] = [
      { name: 'bdSeq', timestamp: now, datatype: DataType.Int64, longValue: bdSeq },
      { name: REBIRTH_METRIC, timestamp: now, datatype: DataType.Boolean, booleanValue: false },
    ];
    return encodePayload({ timestamp: now, seq: this.nextSeq(), metrics });
  }

  /**
   * DBIRTH of `device` with its last readings as current values (a point
   * never read goes as is_null with Quality STALE).
   */
  dbirth(device: string, latest: readonly Reading[], now: number): Uint8Array {
    const last = new Map(latest.map((r) => [r.point, r]));
    const metrics: SpMetric[] = [];
    for (const def of this.defs.get(device)?.values() ?? []) {
      const r = last.get(def.name);
      metrics.push(birthMetric(def, r?.value ?? null, r ? r.quality : 'stale', r?.ts ?? now));
    }
    this.born.set(device, now);
    return encodePayload({ timestamp: now, seq: this.nextSeq(), metrics });
  }

  /** DDEATH of `device` (timestamp and seq, no metrics). */
  ddeath(device: string, now: number): Uint8Array {
    this.born.delete(device);
    return encodePayload({ timestamp: now, seq: this.nextSeq(), metrics: [] });
  }

  /**
   * DDATA of a device's readings, in their order (chronological per point,
   * [tck-id-operational-behavior-data-publish-dbirth-order]). A reading taken
   * before the device's current DBIRTH, or from a backlog batch, is
   * `is_historical`: the birth already gave the current value.
   * @returns the payload and the readings whose point the birth does not know (skipped).
   */
  ddata(device: string, readings: readonly Reading[], backlog: boolean, now: number): { payload: Uint8Array | null; unknown: number } {
    const defs = this.defs.get(device);
    const bornAt = this.born.get(device) ?? now;
    const metrics: SpMetric[] = [];
    let unknown = 0;
    for (const r of readings) {
      const def = defs?.get(r.point);
      if (!def) {
        unknown++;
        continue;
      }
      metrics.push(dataMetric(def, r.value, r.quality, r.ts, backlog || r.ts < bornAt));
    }
    if (metrics.length === 0) return { payload: null, unknown };
    return { payload: encodeDataPayload(now, this.nextSeq(), metrics), unknown };
  }

  /** A DDATA answering a refused write: the metric's value in force, with the refusal as a `writeError` property. */
  refusal(def: MetricDef, current: { value: ReadingValue; quality: Quality; ts: number } | undefined, error: string, now: number): Uint8Array {
    const m = dataMetric(def, current?.value ?? null, current?.quality ?? 'stale', current?.ts ?? now, false);
    m.properties ??= { keys: [], values: [] };
    m.properties.keys.push('writeError');
    m.properties.values.push({ type: DataType.String, stringValue: error });
    return encodePayload({ timestamp: now, seq: this.nextSeq(), metrics: [m] });
  }
}
