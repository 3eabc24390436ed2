/**
 * The MQTT uplink: drains the outbox to the hub and keeps the retained status.
 *
 * - `mqtt.connect()` (not `connectAsync`, which gives up on the first refused
 *   connection) with reconnects spaced by exponential backoff with jitter;
 * - a last will on the retained status topic says `offline` when the gateway
 *   vanishes (MQTT 3.1.1 §3.1.2.5);
 * - QoS 1 batches, at most `window` in flight; a batch leaves the outbox only
 *   when its PUBACK arrives, and the hub sends PUBACK only after commit;
 * - events are sent before telemetry.
 *
 * Within one process, mqtt.js resends unacknowledged packets after a reconnect
 * (its outgoing store); across restarts the outbox offers the unacknowledged
 * batches again under their original seq.
 */
import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { topics, type GatewayStatus } from '../contract/index.js';
import { Backoff, type Logger } from '../lib/index.js';
import type { Outbox, OutboxBatch } from './outbox/outbox.js';

/** Dependencies and settings of the {@link Uplink}. */
export interface UplinkDeps {
  gatewayId: string;
  url: string;
  username?: string;
  password?: string;
  logger: Logger;
  outbox: Outbox;
  version: string;
  /** Most readings per telemetry message; the batch size adapts between `minBatchSize` and this. */
  batchSize: number;
  /** Smallest adaptive batch. Default 50. */
  minBatchSize?: number;
  /** Acknowledgement round trip above which the batch size halves (ms). Default 1000. */
  targetRttMs?: number;
  /** Cap on readings sent per second (0 or absent: as fast as the link allows), so a fleet reconnecting at once does not flatten the hub. */
  maxReadingsPerSec?: number;
  /** Unacknowledged messages allowed in flight. */
  window: number;
  statusIntervalMs: number;
  keepaliveS: number;
  reconnect: { minMs: number; maxMs: number };
  /** Extra status fields (device states), read at each status publish. */
  statusExtra?: () => Partial<GatewayStatus>;
  /** Extra mqtt.js options (TLS material). */
  mqttOptions?: Partial<IClientOptions>;
  clock?: () => number;
}

/** Uplink counters. */
export interface UplinkStats {
  connected: boolean;
  /** Current adaptive batch size. */
  batchSize: number;
  /** Readings acknowledged per second over the last 10 s. */
  drainPerS: number;
  batchesSent: number;
  batchesAcked: number;
  readingsAcked: number;
  eventsAcked: number;
  inFlight: number;
  connects: number;
}

/**
 * Emits `'connect'`, `'offline'` and `'batch-acked'` (`{seq, count}`).
 */
export class Uplink extends EventEmitter {
  private client: MqttClient | null = null;
  private inFlight = 0;
  private pumping = false;
  private again = false;
  private statusTimer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;
  private readonly startedAt: number;
  private readonly clock: () => number;
  private readonly counters = { batchesSent: 0, batchesAcked: 0, readingsAcked: 0, eventsAcked: 0, connects: 0 };
  private readonly onReadable = (): void => this.pump();
  private batchSize: number;
  private tokens = 0;
  private tokensAt = 0;
  private rateTimer: NodeJS.Timeout | null = null;
  /** (time, readings) of recent acknowledgements, for the drain rate. */
  private readonly acks: Array<[number, number]> = [];
  /** Batches reserved in the outbox but not acknowledged by a publish that failed locally. */
  private readonly pendingResend: OutboxBatch[] = [];

  constructor(private readonly deps: UplinkDeps) {
    super();
    this.clock = deps.clock ?? Date.now;
    this.startedAt = this.clock();
    this.backoff = new Backoff(deps.reconnect);
    this.batchSize = deps.batchSize;
  }

  /** Starts connecting; returns at once (the hub may be down). */
  async start(): Promise<void> {
    const { deps } = this;
    const statusTopic = topics.status(deps.gatewayId);
    const client = mqtt.connect(deps.url, {
      clientId: deps.gatewayId,
      username: deps.username,
      password: deps.password,
      clean: true,
      keepalive: deps.keepaliveS,
      connectTimeout: 10_000,
      reconnectPeriod: deps.reconnect.minMs,
      reconnectOnConnackError: true,
      will: { topic: statusTopic, payload: Buffer.from(JSON.stringify(this.offlineStatus())), qos: 1, retain: true },
      ...deps.mqttOptions,
    });
    this.client = client;
    // Runs before mqtt.js's own 'close' handler, which arms the reconnect timer.
    client.prependListener('close', () => {
      client.options.reconnectPeriod = this.backoff.next();
    });
    client.on('connect', () => {
      this.backoff.reset();
      this.counters.connects++;
      deps.logger.info({ url: deps.url }, 'connected to hub');
      this.publishStatus();
      this.emit('connect');
      this.pump();
    });
    client.on('offline', () => {
      deps.logger.warn({ url: deps.url, retryInMs: client.options.reconnectPeriod, code: 'GW_ERR_UPLINK_OFFLINE' }, 'hub unreachable; buffering in the outbox');
      this.emit('offline');
    });
    client.on('error', (err) => deps.logger.warn({ err: err.message, code: 'GW_ERR_UPLINK_OFFLINE' }, 'uplink error'));
    deps.outbox.on('readable', this.onReadable);
    this.statusTimer = setInterval(() => this.publishStatus(), deps.statusIntervalMs);
    this.statusTimer.unref();
  }

  /** True while connected to the hub. */
  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  stats(): UplinkStats {
    return { connected: this.connected, inFlight: this.inFlight, batchSize: this.batchSize, drainPerS: this.drainRate(), ...this.counters };
  }

  /** Readings acknowledged per second over the last 10 s. */
  private drainRate(): number {
    const now = this.clock();
    while (this.acks.length > 0 && this.acks[0]![0] < now - 10_000) this.acks.shift();
    if (this.acks.length === 0) return 0;
    const total = this.acks.reduce((n, [, c]) => n + c, 0);
    return Math.round(total / Math.max(1, Math.min(10, (now - this.acks[0]![0]) / 1000 + 0.001)));
  }

  /** AIMD on the batch size: halve when acknowledgements come slowly, grow while a backlog waits. */
  private adapt(rttMs: number): void {
    const min = Math.min(this.deps.minBatchSize ?? 50, this.deps.batchSize);
    if (rttMs > (this.deps.targetRttMs ?? 1000)) this.batchSize = Math.max(min, Math.floor(this.batchSize / 2));
    else if (this.deps.outbox.stats().rows > this.batchSize * this.deps.window) this.batchSize = Math.min(this.deps.batchSize, Math.ceil(this.batchSize * 1.25));
  }

  /** Token bucket: true when `count` readings may be sent now; otherwise schedules a pump for when they may. */
  private admit(count: number): boolean {
    const rate = this.deps.maxReadingsPerSec ?? 0;
    if (rate <= 0) return true;
    const now = this.clock();
    const cap = Math.max(rate, this.deps.batchSize);
    this.tokens = Math.min(cap, this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    if (this.tokens >= count) {
      this.tokens -= count;
      return true;
    }
    if (!this.rateTimer) {
      this.rateTimer = setTimeout(() => {
        this.rateTimer = null;
        this.pump();
      }, Math.ceil(((count - this.tokens) / rate) * 1000));
    }
    return false;
  }

  private offlineStatus(): GatewayStatus {
    return { v: 1, state: 'offline', ts: this.clock(), version: this.deps.version };
  }

  private publishStatus(): void {
    const client = this.client;
    if (!client?.connected) return;
    const s = this.deps.outbox.stats();
    const status: GatewayStatus = {
      v: 1,
      state: 'online',
      ts: this.clock(),
      version: this.deps.version,
      startedAt: this.startedAt,
      uptimeS: Math.round((this.clock() - this.startedAt) / 1000),
      backlog: {
        rows: s.rows, bytes: s.bytes, oldestTs: s.oldestTs, dropped: s.dropped, historical: s.historical, drainPerS: this.drainRate(),
        ageS: s.oldestTs === null ? 0 : Math.max(0, Math.round((this.clock() - s.oldestTs) / 1000)),
      },
      ...this.deps.statusExtra?.(),
    };
    client.publish(topics.status(this.deps.gatewayId), JSON.stringify(status), { qos: 1, retain: true }, (err) => {
      if (err) this.deps.logger.debug({ err: err.message }, 'status publish not acknowledged');
    });
  }

  /** Publishes events, then telemetry, until the window is full or the outbox is empty. */
  private pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void this.fill()
      .catch((err) => this.deps.logger.error({ err }, 'uplink drain failed'))
      .finally(() => {
        this.pumping = false;
        if (this.again) {
          this.again = false;
          this.pump();
        }
      });
  }

  private async fill(): Promise<void> {
    const { outbox, gatewayId, logger } = this.deps;
    while (this.client?.connected && this.inFlight < this.deps.window) {
      const events = await outbox.nextEvents(this.deps.window - this.inFlight);
      for (const ev of events) {
        this.inFlight++;
        this.client.publish(topics.events(gatewayId), JSON.stringify(ev), { qos: 1 }, (err) => {
          this.inFlight--;
          if (err) logger.warn({ err: err.message, event: ev.id }, 'event not acknowledged');
          else {
            this.counters.eventsAcked++;
            void outbox.ackEvent(ev.id).catch((e) => logger.error({ err: e }, 'event ack failed'));
          }
          this.pump();
        });
      }
      if (this.inFlight >= this.deps.window) break;
      if (this.rateTimer) break;
      const batch = this.pendingResend.shift() ?? (await outbox.nextBatch(this.batchSize));
      if (!batch) {
        if (events.length === 0) break;
        continue;
      }
      if (!this.client?.connected || !this.admit(batch.count)) {
        // Reserved but not sendable now (link dropped, or over the rate cap): it goes first next time.
        this.pendingResend.unshift(batch);
        break;
      }
      this.send(batch);
    }
  }

  private send(batch: OutboxBatch): void {
    const { outbox, gatewayId, logger } = this.deps;
    this.inFlight++;
    this.counters.batchesSent++;
    const sentAt = this.clock();
    this.client!.publish(topics.telemetry(gatewayId), batch.payload, { qos: 1 }, (err) => {
      this.inFlight--;
      if (!err) {
        this.acks.push([this.clock(), batch.count]);
        this.adapt(this.clock() - sentAt);
      }
      if (err) {
        logger.warn({ err: err.message, seq: batch.seq }, 'batch not acknowledged; kept for resend');
        this.pendingResend.push(batch);
      } else {
        this.counters.batchesAcked++;
        this.counters.readingsAcked += batch.count;
        void outbox
          .ack(batch.seq)
          .then(() => this.emit('batch-acked', { seq: batch.seq, count: batch.count }))
          .catch((e) => logger.error({ err: e, seq: batch.seq }, 'outbox ack failed'));
      }
      this.pump();
    });
  }

  async stop(): Promise<void> {
    if (this.rateTimer) clearTimeout(this.rateTimer);
    this.rateTimer = null;
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = null;
    this.deps.outbox.off('readable', this.onReadable);
    const client = this.client;
    this.client = null;
    if (!client) return;
    if (client.connected) {
      // A clean shutdown says offline itself; the will covers the unclean ones.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        client.publish(topics.status(this.deps.gatewayId), JSON.stringify(this.offlineStatus()), { qos: 1, retain: true }, () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    await client.endAsync(true);
  }
}
