/**
 * The gateway as a Sparkplug B 3.0 edge node (issue 17): drains the outbox to
 * any MQTT broker as NDATA/DDATA instead of ioc/v1 telemetry, one Sparkplug
 * device per field device. Payloads and bookkeeping live in
 * sparkplug-session.ts and sparkplug-metrics.ts; commands in
 * sparkplug-commands.ts.
 *
 * Session (spec §5): every CONNECT carries the NDEATH will with a bdSeq one
 * more than the last (QoS 1, not retained,
 * [tck-id-message-flow-edge-node-birth-publish-will-message-*]); bdSeq is kept
 * in a file so it keeps counting across restarts. After CONNACK the node
 * subscribes to its NCMD and DCMD topics with QoS 1
 * ([tck-id-message-flow-edge-node-ncmd-subscribe],
 * [tck-id-message-flow-device-dcmd-subscribe]) and, with a primary host, to
 * its STATE; it births (NBIRTH, then a DBIRTH per device) at once, or with a
 * primary host only once STATE says online with a timestamp not older than
 * the last one seen ([tck-id-message-flow-edge-node-birth-publish-phid-wait]).
 * A STATE offline (not older than the last online) ends the session: NDEATH,
 * DISCONNECT, connect again and wait
 * ([tck-id-operational-behavior-edge-node-termination-host-offline]).
 * A clean stop publishes NDEATH before DISCONNECT
 * ([tck-id-operational-behavior-edge-node-intentional-disconnect-ndeath]).
 *
 * Data and the outbox: births, data and deaths are QoS 0 as the
 * specification requires ([tck-id-topics-ddata-mqtt] …). QoS 0 has no
 * acknowledgement, so after the DDATA of one outbox batch the node publishes
 * an empty QoS 1 *fence* message on a topic outside the Sparkplug namespace
 * (`fenceTopic`); the broker reads a connection's packets in order, so its
 * PUBACK says every DDATA before it reached the broker, and only then is the
 * batch deleted from the outbox. A batch whose fence is not acknowledged on
 * the same connection is sent again in the next session (as historical).
 * Nothing is drained while there is no session (broker down, primary host
 * offline): the readings wait in the outbox and go out after the next birth
 * with `is_historical`, oldest first.
 *
 * Devices: DBIRTH for every enabled device at each birth (a device that is
 * down goes with its last values, STALE, and its DDEATH follows); a
 * `device.down` event becomes a DDEATH once the outbox has been flushed and
 * drained up to it, so readings taken before the device went down are
 * published before its death; `device.up` a DBIRTH.
 */
import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import type { GatewayEvent, Reading } from '../../contract/index.js';
import { Backoff } from '../../lib/index.js';
import type { OutboxBatch } from '../outbox/outbox.js';
import { disconnect, retire } from '../uplink/mqtt-end.js';
import { handleCommand } from './sparkplug-commands.js';
import { ndeathPayload, SparkplugSession } from './sparkplug-session.js';
import type { SparkplugNodeDeps, SparkplugStats } from './sparkplug-settings.js';

export type { SparkplugNodeDeps, SparkplugSettings, SparkplugStats } from './sparkplug-settings.js';
import { deviceTopic, nodeTopic, parseTopic, stateTopic } from './sparkplug-topics.js';

/** Emits 'birth' (bdSeq), 'session-end', 'batch-acked' ({seq, count}), 'command' ({ok, device?, metric}). */
export class SparkplugNode extends EventEmitter {
  private client: MqttClient | null = null;
  private readonly session = new SparkplugSession();
  /** Identity of the current connection's session: batches in flight belong to one. */
  private conn = 0;
  private born = false;
  private hostOnline: boolean | null;
  private lastStateTs = -Infinity;
  private lastOnlineTs = -Infinity;
  private bdSeq = -1;
  private backoff: Backoff;
  private started = false;
  /** Batches whose fence is unacknowledged, by outbox seq, in send order. */
  private readonly flying = new Map<number, OutboxBatch>();
  private pumping = false;
  private again = false;
  private readonly pendingResend: OutboxBatch[] = [];
  private readonly pendingDeaths = new Set<string>();
  private deathsFlushed = false;
  private readonly clock: () => number;
  private readonly counters = { births: 0, batchesAcked: 0, readingsAcked: 0, commandsRefused: 0, readingsSkipped: 0 };
  private readonly onReadable = (): void => this.pump();

  constructor(private readonly deps: SparkplugNodeDeps) {
    super();
    this.clock = deps.clock ?? Date.now;
    this.backoff = new Backoff(deps.settings.reconnect);
    this.hostOnline = deps.settings.primaryHostId ? false : null;
  }

  /** Starts connecting; returns at once (the broker may be down). */
  async start(): Promise<void> {
    this.started = true;
    try {
      const last = (JSON.parse(readFileSync(this.deps.bdSeqFile, 'utf8')) as { bdSeq?: unknown }).bdSeq;
      if (typeof last === 'number' && Number.isInteger(last) && last >= 0 && last <= 255) this.bdSeq = last;
    } catch {
      // No file yet: the first CONNECT carries bdSeq 0 ([tck-id-topics-nbirth-bdseq-increment]).
    }
    this.deps.outbox.on('readable', this.onReadable);
    this.connect();
  }

  /** The bdSeq of the next CONNECT, written down before it is used. */
  private nextBdSeq(): number {
    this.bdSeq = (this.bdSeq + 1) % 256;
    const tmp = `${this.deps.bdSeqFile}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify({ bdSeq: this.bdSeq }));
      renameSync(tmp, this.deps.bdSeqFile);
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message, file: this.deps.bdSeqFile }, 'cannot keep the Sparkplug bdSeq; it restarts from 0 after a restart');
    }
    return this.bdSeq;
  }

  private connect(): void {
    const s = this.deps.settings;
    const will = { topic: nodeTopic(s.groupId, 'NDEATH', s.edgeNodeId), payload: Buffer.from(ndeathPayload(this.nextBdSeq(), this.clock())), qos: 1 as const, retain: false };
    const client = mqtt.connect(s.url, {
      clientId: s.clientId, username: s.username, password: s.password, clean: true, keepalive: s.keepaliveS,
      connectTimeout: 10_000, reconnectPeriod: s.reconnect.minMs, reconnectOnConnackError: true, resubscribe: false,
      // A QoS 0 DDATA must never wait for a later connection: it would arrive before that session's births.
      queueQoSZero: false, will, ...s.mqttOptions,
    });
    this.client = client;
    client.prependListener('close', () => {
      client.options.reconnectPeriod = this.client === client && this.started ? this.backoff.next() : 0;
      if (this.client !== client) return;
      const wasBorn = this.born;
      this.endSession();
      if (wasBorn) this.deps.logger.warn({ url: s.url, code: 'GW_ERR_SPARKPLUG_OFFLINE' }, 'Sparkplug session ended (connection lost); readings wait in the outbox');
    });
    // Every new CONNECT gets the next bdSeq in its will (mqtt.js builds CONNECT from options at each attempt).
    client.on('reconnect', () => {
      if (this.client !== client) return;
      client.options.will = { ...will, payload: Buffer.from(ndeathPayload(this.nextBdSeq(), this.clock())) };
    });
    client.on('connect', () => {
      if (this.client !== client) return;
      this.backoff.reset();
      this.deps.logger.info({ url: s.url, bdSeq: this.bdSeq }, 'connected to the Sparkplug broker');
      void this.afterConnect(client);
    });
    client.on('message', (topic, payload) => {
      if (this.client !== client) return;
      try {
        this.onMessage(topic, payload);
      } catch (err) {
        this.deps.logger.error({ err, topic }, 'Sparkplug message handler failed');
      }
    });
    client.on('error', (err) => this.deps.logger.warn({ err: err.message, url: s.url, code: 'GW_ERR_SPARKPLUG_OFFLINE' }, 'Sparkplug broker connection error'));
  }

  private async afterConnect(client: MqttClient): Promise<void> {
    const s = this.deps.settings;
    this.hostOnline = s.primaryHostId ? false : null;
    const filters = [nodeTopic(s.groupId, 'NCMD', s.edgeNodeId), deviceTopic(s.groupId, 'DCMD', s.edgeNodeId, '+')];
    if (s.primaryHostId) filters.push(stateTopic(s.primaryHostId));
    try {
      const granted = await client.subscribeAsync(filters, { qos: 1 });
      const refused = granted.filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0) this.deps.logger.error({ topics: refused, code: 'GW_ERR_SUBSCRIBE_REFUSED' }, 'Sparkplug broker refused subscriptions; commands or STATE will not arrive');
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, 'Sparkplug subscriptions failed');
      return;
    }
    if (this.client !== client || !client.connected) return;
    if (!s.primaryHostId) this.birth('connect');
    else this.deps.logger.info({ primaryHost: s.primaryHostId }, 'waiting for the primary host to be online before birth');
  }

  /** Handles NCMD, DCMD and STATE messages. */
  private onMessage(topic: string, payload: Buffer): void {
    const s = this.deps.settings;
    const t = parseTopic(topic);
    if (!t) return;
    if (t.type === 'STATE') {
      if (t.node === s.primaryHostId) this.onState(payload);
      return;
    }
    if (t.group !== s.groupId || t.node !== s.edgeNodeId || (t.type !== 'NCMD' && t.type !== 'DCMD')) return;
    void handleCommand({
      type: t.type, ...(t.device !== undefined ? { device: t.device } : {}), payload, session: this.session, born: this.born, logger: this.deps.logger,
      writePoint: this.deps.writePoint, latest: this.deps.latest, clock: this.clock,
      rebirth: () => this.birth('rebirth request'),
      answer: (device, bytes) => this.publish(deviceTopic(s.groupId, 'DDATA', s.edgeNodeId, device), bytes),
      refused: () => this.counters.commandsRefused++,
    }).then((r) => this.emit('command', r));
  }

  /** Primary host STATE (Sparkplug 3.0 JSON: {online, timestamp}). */
  private onState(payload: Buffer): void {
    let st: { online?: unknown; timestamp?: unknown };
    try {
      st = JSON.parse(payload.toString('utf8')) as typeof st;
    } catch {
      st = {};
    }
    if (typeof st?.online !== 'boolean' || typeof st.timestamp !== 'number') {
      this.deps.logger.warn({ code: 'GW_ERR_SPARKPLUG_PAYLOAD', host: this.deps.settings.primaryHostId, payload: payload.toString('utf8').slice(0, 200) }, 'STATE message is not {"online": boolean, "timestamp": number}; ignored');
      return;
    }
    if (st.online) {
      // [tck-id-message-flow-edge-node-birth-publish-phid-wait]: not older than the last STATE seen.
      if (st.timestamp < this.lastStateTs) return;
      this.lastStateTs = this.lastOnlineTs = st.timestamp;
      this.hostOnline = true;
      if (!this.born && this.client?.connected) this.birth('primary host online');
      return;
    }
    // [tck-id-operational-behavior-edge-node-termination-host-offline-timestamp]: an offline older than the last online is ignored.
    if (st.timestamp < this.lastOnlineTs) return;
    this.lastStateTs = st.timestamp;
    this.hostOnline = false;
    if (this.born) void this.hostWentOffline();
  }

  /** The primary host went offline: NDEATH, DISCONNECT, connect again and wait for it. */
  private async hostWentOffline(): Promise<void> {
    const s = this.deps.settings;
    this.deps.logger.warn({ primaryHost: s.primaryHostId, code: 'GW_ERR_SPARKPLUG_OFFLINE' }, 'primary host offline: session ended; readings wait in the outbox');
    const old = this.client;
    this.client = null;
    this.endSession();
    if (old) await this.goodbye(old);
    if (this.started) this.connect();
  }

  /** NDEATH (clean end of a session), then DISCONNECT so the will is not sent as well. */
  private async goodbye(client: MqttClient): Promise<void> {
    const s = this.deps.settings;
    client.options.reconnectPeriod = 0;
    if (client.connected) {
      // QoS 1 like the will it stands in for; bounded, a broker that does not answer does not hold the stop.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        client.publish(nodeTopic(s.groupId, 'NDEATH', s.edgeNodeId), Buffer.from(ndeathPayload(this.bdSeq, this.clock())), { qos: 1, retain: false }, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await disconnect(client, 1000);
    await retire(client);
  }

  /**
   * The session ends: batches whose fence is unacknowledged go back to the
   * front of the queue (their fates on the old connection are unknown; a
   * replaced client never calls back), to be sent after the next birth.
   */
  private endSession(): void {
    if (this.born) this.emit('session-end');
    this.born = false;
    this.conn++;
    this.pendingResend.unshift(...this.flying.values());
    this.flying.clear();
  }

  /**
   * A complete birth sequence: NBIRTH (seq 0, bdSeq of this connection),
   * a DBIRTH per enabled device, DDEATH pending for those that are down.
   * Data stops first and resumes after ([tck-id-operational-behavior-data-commands-rebirth-action-1..3]).
   */
  birth(why: string): void {
    const client = this.client;
    if (!client?.connected) return;
    const s = this.deps.settings;
    this.born = false;
    const devices = this.deps.devices();
    this.session.define(devices);
    const now = this.clock();
    this.publish(nodeTopic(s.groupId, 'NBIRTH', s.edgeNodeId), this.session.nbirth(this.bdSeq, now));
    this.pendingDeaths.clear();
    for (const d of devices) {
      this.publish(deviceTopic(s.groupId, 'DBIRTH', s.edgeNodeId, d.id), this.session.dbirth(d.id, this.deps.latest(d.id), now));
      if (this.deps.health(d.id) === 'down') this.pendingDeaths.add(d.id);
    }
    this.born = true;
    this.counters.births++;
    this.deps.logger.info({ why, bdSeq: this.bdSeq, devices: devices.length }, 'Sparkplug birth published');
    this.emit('birth', this.bdSeq);
    if (this.pendingDeaths.size > 0) this.flushThenDeaths();
    this.pump();
  }

  /** The gateway's device events: down → DDEATH (after its earlier readings), up → DBIRTH. */
  onEvent(ev: GatewayEvent): void {
    if (!ev.device || (ev.type !== 'device.down' && ev.type !== 'device.up')) return;
    if (ev.type === 'device.down') {
      this.pendingDeaths.add(ev.device);
      this.flushThenDeaths();
      return;
    }
    this.pendingDeaths.delete(ev.device);
    if (!this.born || this.session.isBorn(ev.device) || !this.session.knows(ev.device)) return;
    const s = this.deps.settings;
    this.publish(deviceTopic(s.groupId, 'DBIRTH', s.edgeNodeId, ev.device), this.session.dbirth(ev.device, this.deps.latest(ev.device), this.clock()));
  }

  /** Flushes the outbox, then lets the drain publish pending deaths once nothing older waits. */
  private flushThenDeaths(): void {
    this.deathsFlushed = false;
    // After the current tick: a driver reports its points STALE right after the device.down event, in the same tick.
    setImmediate(() => {
      void this.deps.outbox.flush().catch(() => undefined).then(() => {
        this.deathsFlushed = true;
        this.pump();
      });
    });
  }

  private publishDeaths(): void {
    const s = this.deps.settings;
    for (const d of this.pendingDeaths) {
      if (this.session.isBorn(d)) this.publish(deviceTopic(s.groupId, 'DDEATH', s.edgeNodeId, d), this.session.ddeath(d, this.clock()));
    }
    this.pendingDeaths.clear();
  }

  /** Publishes a QoS 0 Sparkplug message now (births, data, deaths). */
  private publish(topic: string, payload: Uint8Array): void {
    this.client?.publish(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { qos: 0, retain: false });
  }

  private pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void this.fill()
      .catch((err) => {
        if (this.started) this.deps.logger.error({ err }, 'Sparkplug drain failed');
      })
      .finally(() => {
        this.pumping = false;
        if (this.again) {
          this.again = false;
          this.pump();
        }
      });
  }

  private async fill(): Promise<void> {
    const s = this.deps.settings;
    while (this.born && this.client?.connected && this.flying.size < s.window) {
      const conn = this.conn;
      const batch = this.pendingResend.shift() ?? (await this.deps.outbox.nextBatch(s.batchSize));
      if (!batch) {
        if (this.deathsFlushed && this.pendingDeaths.size > 0) this.publishDeaths();
        break;
      }
      if (!this.born || conn !== this.conn || !this.client?.connected) {
        this.pendingResend.unshift(batch);
        break;
      }
      this.send(batch);
    }
  }

  /** Publishes one outbox batch as DDATA per device, then its fence; acknowledges the batch on the fence's PUBACK. */
  private send(batch: OutboxBatch): void {
    const s = this.deps.settings;
    const client = this.client!;
    const conn = this.conn;
    const now = this.clock();
    const byDevice = new Map<string, Reading[]>();
    for (const r of (JSON.parse(batch.payload) as { readings: Reading[] }).readings) {
      let list = byDevice.get(r.device);
      if (!list) byDevice.set(r.device, (list = []));
      list.push(r);
    }
    for (const [device, readings] of byDevice) {
      if (!this.session.knows(device)) {
        this.counters.readingsSkipped += readings.length;
        this.deps.logger.warn({ device, readings: readings.length, code: 'GW_ERR_SPARKPLUG_CMD' }, 'readings of a device this Sparkplug session does not know (removed from the configuration); not published');
        continue;
      }
      if (!this.session.isBorn(device)) {
        if (this.deps.health(device) === 'down') {
          // Dead (DDEATH sent) and not back: no DDATA without a birth; a DBIRTH would say it is online.
          this.counters.readingsSkipped += readings.length;
          this.deps.logger.warn({ device, readings: readings.length }, 'readings of a device after its DDEATH; not published');
          continue;
        }
        this.publish(deviceTopic(s.groupId, 'DBIRTH', s.edgeNodeId, device), this.session.dbirth(device, this.deps.latest(device), now));
      }
      const { payload, unknown } = this.session.ddata(device, readings, batch.historical, now);
      this.counters.readingsSkipped += unknown;
      if (payload) this.publish(deviceTopic(s.groupId, 'DDATA', s.edgeNodeId, device), payload);
    }
    this.flying.set(batch.seq, batch);
    client.publish(s.fenceTopic, Buffer.alloc(0), { qos: 1, retain: false }, (err) => {
      // A callback from an ended session: endSession() already queued the batch again.
      if (conn !== this.conn) return;
      this.flying.delete(batch.seq);
      if (err) {
        // Not known to have reached the broker: send again (after the next birth if the session ends).
        this.pendingResend.push(batch);
        this.pump();
        return;
      }
      this.counters.batchesAcked++;
      this.counters.readingsAcked += batch.count;
      void this.deps.outbox.ack(batch.seq)
        .then(() => this.emit('batch-acked', { seq: batch.seq, count: batch.count }))
        .catch((e) => this.deps.logger.error({ err: e, seq: batch.seq }, 'outbox ack failed'));
      this.pump();
    });
  }

  /** Counters and state. */
  stats(): SparkplugStats {
    return { connected: this.client?.connected ?? false, born: this.born, hostOnline: this.hostOnline, bdSeq: this.bdSeq, inFlight: this.flying.size, ...this.counters };
  }

  /** Ends the session cleanly: NDEATH, then DISCONNECT. */
  async stop(): Promise<void> {
    this.started = false;
    this.deps.outbox.off('readable', this.onReadable);
    const client = this.client;
    this.client = null;
    this.endSession();
    if (client) await this.goodbye(client);
  }
}
