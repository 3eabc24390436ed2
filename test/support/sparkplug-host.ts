/**
 * A Sparkplug B 3.0 host application for tests, written from the
 * specification (eclipse-sparkplug/sparkplug, chapters 4–6), decoding with
 * Tahu's sparkplug-payload (test/support/sparkplug-decode.ts) — not with the
 * gateway's encoder. It records every message from edge nodes and checks the
 * numbered conformance statements below, collecting each breach in
 * `violations` as `[tck-id] what happened`:
 *
 * - topics and MQTT flags: [tck-id-topic-structure], [tck-id-topics-nbirth-mqtt],
 *   [tck-id-topics-dbirth-mqtt], [tck-id-topics-ddata-mqtt], [tck-id-topics-ddeath-mqtt]
 *   (QoS 0, not retained), [tck-id-message-flow-edge-node-birth-publish-will-message-qos]
 *   and [...-will-message-will-retained] (NDEATH as will: QoS 1, not retained);
 * - NBIRTH: [tck-id-topics-nbirth-seq-num] (seq 0), [tck-id-topics-nbirth-timestamp],
 *   [tck-id-topics-nbirth-bdseq-included] (bdSeq, Int64),
 *   [tck-id-topics-nbirth-rebirth-metric] (Boolean false),
 *   [tck-id-operational-behavior-data-commands-rebirth-name-aliases] (no alias);
 * - sequence: [tck-id-payloads-sequence-num-incrementing] (one more per message, 255 → 0),
 *   [tck-id-topics-ndeath-seq] (NDEATH without seq);
 * - births: [tck-id-message-flow-device-birth-publish-nbirth-wait] (DBIRTH after NBIRTH),
 *   [tck-id-payloads-alias-birth-requirement] (name and alias),
 *   [tck-id-payloads-metric-datatype-req], [tck-id-payloads-name-birth-data-requirement]
 *   (timestamp on every metric), [tck-id-payloads-alias-uniqueness] (across the node),
 *   [tck-id-operational-behavior-data-publish-dbirth-values] (value or is_null);
 * - data: [tck-id-payloads-alias-data-cmd-requirement] (alias only, a known one),
 *   [tck-id-payloads-metric-datatype-not-req] (no datatype),
 *   [tck-id-operational-behavior-data-publish-dbirth-order] (non-historical values of a
 *   metric in chronological order), DDATA/DDEATH only for a born device;
 * - deaths: [tck-id-topics-nbirth-bdseq-matching] / [tck-id-payloads-ndeath-bdseq]
 *   (NDEATH's bdSeq equals the last NBIRTH's).
 *
 * As a host it follows §5 "Host Application Session Establishment": clean
 * session, a retained QoS 1 STATE will {online:false, timestamp}
 * ([tck-id-operational-behavior-host-application-connect-will*]), subscribe,
 * then a retained QoS 1 STATE {online:true} with the will's timestamp
 * ([tck-id-operational-behavior-host-application-connect-birth*]); going
 * offline publishes the offline STATE before DISCONNECT
 * ([tck-id-operational-behavior-host-application-termination]). Commands go
 * QoS 0, not retained ([tck-id-topics-ncmd-mqtt], [tck-id-topics-dcmd-mqtt]).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { decodeSparkplug, encodeTahu, type DecodedMetric, type DecodedPayload } from './sparkplug-decode.js';
import { waitFor } from './wait.js';

/** One message from an edge node, as the host received it. */
export interface HostMessage {
  type: string;
  group: string;
  node: string;
  device?: string;
  qos: number;
  retain: boolean;
  payload: DecodedPayload;
  at: number;
}

/** A device as the host sees it. */
export interface HostDevice {
  online: boolean;
  births: number;
  /** Metric name → datatype and alias from the last DBIRTH. */
  metrics: Map<string, { alias?: number; datatype?: number }>;
  /** Current (non-historical) value per metric name, with its properties. */
  current: Map<string, DecodedMetric>;
  /** Historical metrics received, in arrival order, with their names. */
  historical: Array<DecodedMetric & { metric: string }>;
  /** Live (non-historical) data metrics received, in arrival order, with their names. */
  live: Array<DecodedMetric & { metric: string }>;
}

/** An edge node as the host sees it. */
export interface HostNode {
  online: boolean;
  bdSeq?: number;
  births: number;
  deaths: Array<{ bdSeq?: number; matched: boolean }>;
  lastSeq?: number;
  aliases: Map<number, { device?: string; name: string; datatype?: number }>;
  devices: Map<string, HostDevice>;
}

/** The test host application. */
export class SparkplugHost {
  readonly messages: HostMessage[] = [];
  readonly violations: string[] = [];
  readonly nodes = new Map<string, HostNode>();
  private client: MqttClient | null = null;
  private stateTs = 0;

  constructor(private readonly url: string, readonly hostId: string) {}

  /** Connects and declares itself online (STATE). */
  async online(): Promise<void> {
    this.stateTs = Math.max(Date.now(), this.stateTs + 1);
    const stateTopic = `spBv1.0/STATE/${this.hostId}`;
    const client = await mqtt.connectAsync(this.url, {
      clientId: `host-${this.hostId}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`.slice(0, 23), clean: true, reconnectPeriod: 0,
      will: { topic: stateTopic, payload: Buffer.from(JSON.stringify({ online: false, timestamp: this.stateTs })), qos: 1, retain: true },
    });
    this.client = client;
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet.qos, packet.retain));
    await client.subscribeAsync({ 'spBv1.0/#': { qos: 1 }, [stateTopic]: { qos: 1 } });
    await client.publishAsync(stateTopic, JSON.stringify({ online: true, timestamp: this.stateTs }), { qos: 1, retain: true });
  }

  /** Goes offline cleanly: offline STATE first, then DISCONNECT. */
  async offline(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (!c) return;
    await c.publishAsync(`spBv1.0/STATE/${this.hostId}`, JSON.stringify({ online: false, timestamp: Date.now() }), { qos: 1, retain: true });
    await c.endAsync();
  }

  /** Disconnects (for teardown) and clears its retained STATE. */
  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (!c) return;
    await c.publishAsync(`spBv1.0/STATE/${this.hostId}`, '', { qos: 1, retain: true }).catch(() => undefined);
    await c.endAsync().catch(() => undefined);
  }

  /** Publishes raw bytes on a topic (bad input tests). */
  async raw(topic: string, payload: Buffer | string): Promise<void> {
    await this.client!.publishAsync(topic, payload, { qos: 0 });
  }

  /** NCMD Node Control/Rebirth = true. */
  async rebirth(group: string, node: string): Promise<void> {
    await this.ncmd(group, node, [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }]);
  }

  /** An NCMD with the given metrics (Tahu high-level form). */
  async ncmd(group: string, node: string, metrics: Array<Record<string, unknown>>): Promise<void> {
    await this.raw(`spBv1.0/${group}/NCMD/${node}`, Buffer.from(encodeTahu({ timestamp: Date.now(), metrics })));
  }

  /** A DCMD with the given metrics (Tahu high-level form: `{name | alias, type, value}`). */
  async dcmd(group: string, node: string, device: string, metrics: Array<Record<string, unknown>>): Promise<void> {
    await this.raw(`spBv1.0/${group}/DCMD/${node}/${device}`, Buffer.from(encodeTahu({ timestamp: Date.now(), metrics })));
  }

  /** The node `group/node` (created on first sight). */
  node(group: string, node: string): HostNode {
    const key = `${group}/${node}`;
    let n = this.nodes.get(key);
    if (!n) this.nodes.set(key, (n = { online: false, births: 0, deaths: [], aliases: new Map(), devices: new Map() }));
    return n;
  }

  /** Waits until `fn` holds (bounded). */
  until<T>(fn: () => T, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
    return waitFor(fn, what, timeoutMs, 20);
  }

  private violation(id: string, what: string): void {
    this.violations.push(`[${id}] ${what}`);
  }

  private onMessage(topic: string, bytes: Buffer, qos: number, retain: boolean): void {
    const p = topic.split('/');
    if (p[1] === 'STATE') return;
    if (p[0] !== 'spBv1.0' || (p.length !== 4 && p.length !== 5)) {
      this.violation('tck-id-topic-structure', `topic ${topic}`);
      return;
    }
    const [, group, type, nodeId, device] = p as [string, string, string, string, string | undefined];
    if (type === 'NCMD' || type === 'DCMD') return;
    let payload: DecodedPayload;
    try {
      payload = decodeSparkplug(bytes, this.aliasTypes(group, nodeId));
    } catch (err) {
      this.violation('tck-id-message-flow-edge-node-birth-publish-nbirth-payload', `${topic} is not a Sparkplug protobuf: ${(err as Error).message}`);
      return;
    }
    this.messages.push({ type, group, node: nodeId, ...(device !== undefined ? { device } : {}), qos, retain, payload, at: Date.now() });
    const n = this.node(group, nodeId);
    if (type === 'NDEATH') {
      if (qos !== 1) this.violation('tck-id-message-flow-edge-node-birth-publish-will-message-qos', `NDEATH delivered with QoS ${qos}`);
      if (payload.seq !== undefined) this.violation('tck-id-topics-ndeath-seq', 'NDEATH carries a seq');
      const bd = payload.metrics.find((m) => m.name === 'bdSeq')?.value as number | undefined;
      const matched = bd !== undefined && bd === n.bdSeq;
      // An NDEATH of an older session (a will delivered late) does not end the current one.
      if (n.online && !matched) this.violation('tck-id-payloads-ndeath-bdseq', `NDEATH bdSeq ${bd} does not match the NBIRTH's ${n.bdSeq}`);
      n.deaths.push({ ...(bd !== undefined ? { bdSeq: bd } : {}), matched });
      if (matched) {
        n.online = false;
        for (const d of n.devices.values()) d.online = false;
      }
      return;
    }
    if (qos !== 0 || retain) this.violation(`tck-id-topics-${type.toLowerCase()}-mqtt`, `${type} with QoS ${qos}, retain ${retain}`);
    if (type === 'NBIRTH') {
      this.nbirth(n, payload);
      return;
    }
    this.checkSeq(n, type, payload);
    if (type === 'DBIRTH') this.dbirth(n, device!, payload);
    else if (type === 'DDATA') this.ddata(n, device!, payload);
    else if (type === 'DDEATH') {
      const d = n.devices.get(device!);
      if (!d?.online) this.violation('tck-id-operational-behavior-device-ddeath', `DDEATH for ${device}, which is not online`);
      if (d) d.online = false;
    } else if (type === 'NDATA') {
      // This gateway has no node-level data metrics.
    }
  }

  private aliasTypes(group: string, node: string): Map<number, number> {
    const m = new Map<number, number>();
    for (const [alias, a] of this.node(group, node).aliases) if (a.datatype !== undefined) m.set(alias, a.datatype);
    return m;
  }

  private checkSeq(n: HostNode, type: string, p: DecodedPayload): void {
    if (p.seq === undefined) {
      this.violation('tck-id-payloads-sequence-num-always-included', `${type} without seq`);
      return;
    }
    const want = n.lastSeq === undefined ? undefined : (n.lastSeq + 1) % 256;
    if (want !== undefined && p.seq !== want) this.violation('tck-id-payloads-sequence-num-incrementing', `${type} seq ${p.seq}, expected ${want}`);
    n.lastSeq = p.seq;
  }

  private nbirth(n: HostNode, p: DecodedPayload): void {
    if (p.seq !== 0) this.violation('tck-id-topics-nbirth-seq-num', `NBIRTH seq ${p.seq}`);
    if (p.timestamp === undefined) this.violation('tck-id-topics-nbirth-timestamp', 'NBIRTH without timestamp');
    const bd = p.metrics.find((m) => m.name === 'bdSeq');
    if (!bd || bd.datatype !== 4 || typeof bd.value !== 'number') this.violation('tck-id-topics-nbirth-bdseq-included', 'NBIRTH without an Int64 bdSeq');
    const rb = p.metrics.find((m) => m.name === 'Node Control/Rebirth');
    if (!rb || rb.datatype !== 11 || rb.value !== false) this.violation('tck-id-topics-nbirth-rebirth-metric', 'NBIRTH without Node Control/Rebirth Boolean false');
    if (rb?.alias !== undefined) this.violation('tck-id-operational-behavior-data-commands-rebirth-name-aliases', 'Node Control/Rebirth has an alias');
    n.online = true;
    n.births++;
    if (bd) n.bdSeq = bd.value as number;
    n.lastSeq = p.seq;
    n.aliases.clear();
    for (const d of n.devices.values()) d.online = false;
  }

  private dbirth(n: HostNode, device: string, p: DecodedPayload): void {
    if (!n.online) this.violation('tck-id-message-flow-device-birth-publish-nbirth-wait', `DBIRTH of ${device} before NBIRTH`);
    let d = n.devices.get(device);
    if (!d) n.devices.set(device, (d = { online: false, births: 0, metrics: new Map(), current: new Map(), historical: [], live: [] }));
    d.online = true;
    d.births++;
    d.metrics.clear();
    for (const [alias, a] of n.aliases) if (a.device === device) n.aliases.delete(alias);
    for (const m of p.metrics) {
      if (m.name === undefined || m.alias === undefined) this.violation('tck-id-payloads-alias-birth-requirement', `DBIRTH ${device} metric without name and alias`);
      if (m.datatype === undefined) this.violation('tck-id-payloads-metric-datatype-req', `DBIRTH ${device} metric ${m.name} without datatype`);
      if (m.timestamp === undefined) this.violation('tck-id-payloads-name-birth-data-requirement', `DBIRTH ${device} metric ${m.name} without timestamp`);
      if (m.field === undefined && !m.isNull) this.violation('tck-id-operational-behavior-data-publish-dbirth-values', `DBIRTH ${device} metric ${m.name} has neither value nor is_null`);
      if (m.alias !== undefined) {
        const other = n.aliases.get(m.alias);
        if (other) this.violation('tck-id-payloads-alias-uniqueness', `alias ${m.alias} of ${device}/${m.name} already names ${other.device}/${other.name}`);
        n.aliases.set(m.alias, { device, name: m.name ?? '', ...(m.datatype !== undefined ? { datatype: m.datatype } : {}) });
      }
      d.metrics.set(m.name ?? '', { ...(m.alias !== undefined ? { alias: m.alias } : {}), ...(m.datatype !== undefined ? { datatype: m.datatype } : {}) });
      d.current.set(m.name ?? '', m);
    }
  }

  private ddata(n: HostNode, device: string, p: DecodedPayload): void {
    const d = n.devices.get(device);
    if (!d?.online) this.violation('tck-id-message-flow-device-birth-publish-nbirth-wait', `DDATA for ${device}, which has no DBIRTH in this session`);
    const lastTs = new Map<string, number>();
    for (const m of p.metrics) {
      if (m.name !== undefined) this.violation('tck-id-payloads-alias-data-cmd-requirement', `DDATA ${device} metric with a name (${m.name})`);
      if (m.datatype !== undefined) this.violation('tck-id-payloads-metric-datatype-not-req', `DDATA ${device} metric with a datatype`);
      if (m.timestamp === undefined) this.violation('tck-id-payloads-name-birth-data-requirement', `DDATA ${device} metric without timestamp`);
      const a = m.alias !== undefined ? n.aliases.get(m.alias) : undefined;
      if (!a || a.device !== device) {
        this.violation('tck-id-payloads-alias-data-cmd-requirement', `DDATA ${device} alias ${m.alias} unknown for this device`);
        continue;
      }
      const named = { ...m, metric: a.name };
      if (m.isHistorical) {
        d?.historical.push(named);
        continue;
      }
      const prev = lastTs.get(a.name);
      if (prev !== undefined && (m.timestamp ?? 0) < prev) this.violation('tck-id-operational-behavior-data-publish-dbirth-order', `DDATA ${device}/${a.name} values out of order`);
      lastTs.set(a.name, m.timestamp ?? 0);
      d?.live.push(named);
      d?.current.set(a.name, m);
    }
  }
}
