/**
 * The MQTT uplink: drains the outbox to the hub and keeps the retained status.
 *
 * - one mqtt.js client (not `connectAsync`, which gives up on the first
 *   refused connection) with reconnects spaced by exponential backoff with
 *   full jitter under a low cap (`hub.reconnectMaxMs`, default 10 s): back
 *   within seconds of the hub, a fleet's retries spread evenly
 *   (bench:reconnect-storm);
 * - several hub addresses (`hub.url` a list, commas, or a name with several
 *   records, issue 16.4): every close moves the next attempt to the next
 *   address round robin (hub-ring.ts); one connection at a time, always;
 * - a last will on the retained status topic says `offline` when the gateway
 *   vanishes (MQTT 3.1.1 §3.1.2.5);
 * - QoS 1 batches, at most `window` in flight; a batch leaves the outbox only
 *   when its PUBACK arrives, and the hub sends PUBACK only after commit;
 * - events are sent before telemetry.
 *
 * Within one process, mqtt.js resends unacknowledged packets after a reconnect
 * (its outgoing store); across restarts the outbox offers the unacknowledged
 * batches again under their original seq.
 *
 * The uplink owns the gateway's one MQTT client; other services reach the hub
 * through it: {@link Uplink.subscribe} (re-subscribed after every
 * reconnection, a refusal named per topic), {@link Uplink.publish}, and
 * {@link Uplink.reconfigure} for a new hub address, credentials or TLS
 * settings (remote configuration).
 */
import { EventEmitter } from 'node:events';
import { MqttClient, type IClientOptions } from 'mqtt';
import { IocError, topics, type GatewayStatus } from '../../contract/index.js';
import { Backoff } from '../../lib/index.js';
import { HubRing, type HubTarget } from './hub-ring.js';
import { disconnect, retire } from './mqtt-end.js';
import { subscribeEach } from './mqtt-subscribe.js';
import type { OutboxBatch } from '../outbox/outbox.js';
import { CONNECT_TIMEOUT_MS, sameOptions, topicMatches, type MessageHandler, type UplinkDeps, type UplinkSettings, type UplinkStats } from './uplink-settings.js';

export { topicMatches, type MessageHandler, type UplinkDeps, type UplinkSettings, type UplinkStats } from './uplink-settings.js';

/**
 * Emits `'connect'`, `'offline'`, `'batch-acked'` (`{seq, count}`),
 * `'connect-error'` (Error: a refused CONNACK carries its return code in
 * `code`, a socket or TLS failure its errno/OpenSSL code) and
 * `'subscribe-error'`.
 */
export class Uplink extends EventEmitter {
  private client: MqttClient | null = null;
  private inFlight = 0;
  private pumping = false;
  private again = false;
  private statusTimer: NodeJS.Timeout | null = null;
  private backoff: Backoff;
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
  private readonly subs = new Map<string, MessageHandler>();
  private lastErr: string | null = null;
  private started = false;
  private ring: HubRing;
  /** The hub address of the current connection (null while not connected), and of the previous one. */
  private hub: HubTarget | null = null;
  private lastHubUrl: string | null = null;
  private failovers = 0;
  /** When the last status was published (clock ms) and the backlog it showed: for {@link statusChanged}. */
  private statusAt = Number.NEGATIVE_INFINITY;
  private statusRows = 0;
  private statusSoonTimer: NodeJS.Timeout | null = null;

  constructor(private deps: UplinkDeps) {
    super();
    this.clock = deps.clock ?? Date.now;
    this.startedAt = this.clock();
    this.backoff = new Backoff({ ...deps.reconnect, jitter: 'full' });
    this.batchSize = deps.batchSize;
    this.ring = new HubRing(deps.url, deps.lookup);
  }

  /** Starts connecting; returns at once (the hub may be down). */
  async start(): Promise<void> {
    this.started = true;
    this.connect();
    this.deps.outbox.on('readable', this.onReadable);
    this.armStatusTimer();
  }

  private armStatusTimer(): void {
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = setInterval(() => this.publishStatus(), this.deps.statusIntervalMs);
    this.statusTimer.unref();
  }

  /** Creates the MQTT client for the current settings. */
  private connect(): void {
    const { deps } = this;
    const statusTopic = topics.status(deps.gatewayId);
    const ring = this.ring;
    const options: IClientOptions = {
      clientId: deps.gatewayId,
      username: deps.username,
      password: deps.password,
      clean: true,
      keepalive: deps.keepaliveS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      reconnectPeriod: deps.reconnect.minMs,
      reconnectOnConnackError: true,
      // Subscriptions are renewed by resubscribe() on every connect, with refusals named per topic.
      resubscribe: false,
      will: { topic: statusTopic, payload: Buffer.from(JSON.stringify(this.offlineStatus())), qos: 1, retain: true },
      ...deps.mqttOptions,
    };
    // Our own stream builder instead of mqtt.connect(url): each attempt goes to the ring's current address.
    const client = new MqttClient((c) => ring.stream(c, options), options);
    this.client = client;
    // Runs before mqtt.js's own 'close' handler, which arms the reconnect timer.
    client.prependListener('close', () => {
      // A client that is no longer ours (stopped, or replaced by reconfigure) never reconnects.
      const ours = this.client === client && this.started;
      client.options.reconnectPeriod = ours ? this.backoff.next() : 0;
      if (!ours) return;
      const from = ring.target;
      const lost = this.hub !== null;
      this.hub = null;
      ring.advance();
      // The loss of a working connection at info; each failed attempt after it at debug (one line per attempt per gateway is noise in an outage).
      if (ring.size > 1) deps.logger[lost ? 'info' : 'debug']({ failedHub: from.url, failedAddress: from.address, nextHub: ring.target.url, retryInMs: client.options.reconnectPeriod }, lost ? 'hub connection lost; next attempt goes to the next hub address' : 'hub attempt failed; next attempt goes to the next hub address');
    });
    client.on('connect', () => {
      if (this.client !== client) return;
      (client.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
      this.lastErr = null;
      this.backoff.reset();
      this.counters.connects++;
      this.hub = ring.target;
      if (this.lastHubUrl !== null && this.lastHubUrl !== this.hub.url) this.failovers++;
      this.lastHubUrl = this.hub.url;
      deps.logger.info({ hub: this.hub.url, address: this.hub.address, hubs: ring.addresses.length, failovers: this.failovers }, 'connected to hub');
      this.publishStatus();
      this.emit('connect');
      this.pump();
      void this.resubscribe(client);
    });
    client.on('message', (topic, payload, packet) => {
      for (const [filter, handler] of this.subs) {
        if (!topicMatches(filter, topic)) continue;
        try {
          handler(payload, topic, packet.retain);
        } catch (err) {
          deps.logger.error({ err, topic }, 'message handler failed');
        }
      }
    });
    client.on('offline', () => {
      deps.logger.warn({ hub: ring.target.url, retryInMs: client.options.reconnectPeriod, code: 'GW_ERR_UPLINK_OFFLINE' }, 'hub unreachable; buffering in the outbox');
      this.emit('offline');
    });
    client.on('error', (err) => {
      const code = (err as { code?: string | number }).code;
      this.lastErr = `${err.message}${code !== undefined && !err.message.includes(String(code)) ? ` (${code})` : ''}`;
      deps.logger.warn({ err: err.message, hub: ring.target.url, address: ring.target.address, code: 'GW_ERR_UPLINK_OFFLINE' }, 'uplink error');
      if (this.client === client) this.emit('connect-error', err);
    });
  }

  /** Subscribes every registered filter on a fresh connection (clean session: the broker forgot them). */
  private async resubscribe(client: MqttClient): Promise<void> {
    if (this.subs.size === 0) return;
    try {
      await subscribeEach(client, [...this.subs.keys()]);
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message, code: (err as IocError).code }, 'subscription failed');
      this.emit('subscribe-error', err);
    }
  }

  /**
   * Receives the messages of `filter` (QoS 1) from now on, across reconnects
   * and {@link reconfigure}. Resolves once subscribed when connected (at once
   * when not: the subscription is made on connect).
   * @throws IocError GW_ERR_SUBSCRIBE_REFUSED naming the topic when the hub refuses it (SUBACK 0x80).
   */
  async subscribe(filter: string, handler: MessageHandler): Promise<void> {
    this.subs.set(filter, handler);
    const client = this.client;
    if (client?.connected) await subscribeEach(client, [filter]);
  }

  /**
   * Publishes one message now. Resolves when the hub acknowledged it (QoS 1)
   * or it was written (QoS 0).
   * @throws IocError GW_ERR_UPLINK_OFFLINE when not connected or the connection dropped first.
   */
  publish(topic: string, payload: string | Buffer, opts: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
    const client = this.client;
    if (!client?.connected) return Promise.reject(new IocError('GW_ERR_UPLINK_OFFLINE', `not connected to the hub; '${topic}' not sent`));
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false }, (err) => {
        if (err) reject(new IocError('GW_ERR_UPLINK_OFFLINE', `'${topic}' not acknowledged: ${err.message}`, { cause: err }));
        else resolve();
      });
    });
  }

  /**
   * Takes new settings. A new hub address, credentials, TLS material or
   * keepalive drops the connection and connects with them (reconnects as
   * usual if the hub cannot be reached); batch size, window, status interval
   * and reconnect spacing apply at once. Unacknowledged batches are sent
   * again on the new connection (the hub drops replays).
   * @returns true when it reconnected.
   */
  reconfigure(next: Partial<UplinkSettings>): Promise<boolean> {
    // One at a time: two overlapping calls each made a client, and the first one's
    // was never retired — still connected after stop(), it kept the process alive.
    const run = this.reconfiguring.then(() => this.applySettings(next));
    this.reconfiguring = run.catch(() => undefined);
    return run;
  }

  private reconfiguring: Promise<unknown> = Promise.resolve();

  private async applySettings(next: Partial<UplinkSettings>): Promise<boolean> {
    const prev = this.deps;
    this.deps = { ...prev, ...next };
    if (next.batchSize !== undefined) this.batchSize = Math.min(this.batchSize, next.batchSize);
    if (next.reconnect) this.backoff = new Backoff({ ...next.reconnect, jitter: 'full' });
    if (next.statusIntervalMs !== undefined && next.statusIntervalMs !== prev.statusIntervalMs && this.statusTimer) this.armStatusTimer();
    const same = (k: keyof UplinkSettings): boolean => JSON.stringify(prev[k]) === JSON.stringify(this.deps[k]);
    const reconnect = !(['url', 'username', 'password', 'keepaliveS'] as const).every(same) || !sameOptions(prev.mqttOptions, this.deps.mqttOptions);
    if (!same('url')) {
      this.ring = new HubRing(this.deps.url, this.deps.lookup);
      this.lastHubUrl = null;
    }
    if (!reconnect || !this.started) return false;
    const old = this.client;
    this.client = null;
    this.hub = null;
    this.deps.logger.info({ from: prev.url, to: this.deps.url }, 'hub connection settings changed; reconnecting');
    if (old) await retire(old).catch(() => undefined);
    if (!this.started) return true;
    this.connect();
    this.pump();
    return true;
  }

  /** True while connected to the hub. */
  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  stats(): UplinkStats {
    const hub = this.connected ? this.hub : null;
    return {
      connected: this.connected, lastError: this.lastErr, inFlight: this.inFlight, batchSize: this.batchSize, drainPerS: this.drainRate(), ...this.counters,
      hub: hub?.url ?? null, hubAddress: hub?.address ?? null, hubs: this.ring.addresses.map((a) => a.url), failovers: this.failovers,
    };
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

  /**
   * Publishes the status soon after a significant change (a device up or
   * down; the uplink itself calls it when the backlog shrank or grew by more
   * than half, e.g. drained), so the hub does not show an old view until the
   * next periodic status. Rate-limited: at once when the last status is at
   * least `minStatusGapMs` old, else once at the end of that gap for all
   * changes in between.
   */
  statusChanged(): void {
    if (!this.started) return;
    const wait = this.statusAt + (this.deps.minStatusGapMs ?? 1000) - this.clock();
    if (wait <= 0) {
      if (this.statusSoonTimer) clearTimeout(this.statusSoonTimer);
      this.statusSoonTimer = null;
      this.publishStatus();
      return;
    }
    if (this.statusSoonTimer) return;
    this.statusSoonTimer = setTimeout(() => {
      this.statusSoonTimer = null;
      this.publishStatus();
    }, wait);
    this.statusSoonTimer.unref();
  }

  /**
   * After an acknowledgement: news when the backlog changed by more than half
   * of what the last status showed and more than a batch, or is empty now
   * while the last status showed some (at most one extra status per periodic
   * one in steady operation, where the backlog comes and goes by a batch).
   */
  private checkBacklog(): void {
    const rows = this.deps.outbox.stats().rows;
    const drained = rows === 0 && this.statusRows > 0 && this.inFlight === 0;
    if (drained || Math.abs(rows - this.statusRows) > Math.max(this.deps.batchSize, this.statusRows / 2)) this.statusChanged();
  }

  private offlineStatus(): GatewayStatus {
    return { v: 1, state: 'offline', ts: this.clock(), version: this.deps.version };
  }

  private publishStatus(): void {
    const client = this.client;
    if (!client?.connected) return;
    const s = this.deps.outbox.stats();
    this.statusAt = this.clock();
    this.statusRows = s.rows;
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
      .catch((err) => {
        // After stop() a drain still in progress may find the outbox closed: not an error then.
        if (this.started) this.deps.logger.error({ err }, 'uplink drain failed');
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
    const { outbox, gatewayId, logger } = this.deps;
    while (this.client?.connected && this.inFlight < this.deps.window) {
      const events = await outbox.nextEvents(this.deps.window - this.inFlight);
      for (const ev of events) {
        this.inFlight++;
        this.client.publish(topics.events(gatewayId), JSON.stringify(ev), { qos: 1 }, (err) => {
          this.inFlight--;
          if (err) {
            if (this.started) logger.warn({ err: err.message, event: ev.id }, 'event not acknowledged');
          } else {
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
        // At stop, unacknowledged batches are given up on purpose (disconnect()); they stay in the outbox.
        if (this.started) logger.warn({ err: err.message, seq: batch.seq }, 'batch not acknowledged; kept for resend');
        this.pendingResend.push(batch);
      } else {
        this.counters.batchesAcked++;
        this.counters.readingsAcked += batch.count;
        void outbox
          .ack(batch.seq)
          .then(() => {
            this.emit('batch-acked', { seq: batch.seq, count: batch.count });
            this.checkBacklog();
          })
          .catch((e) => logger.error({ err: e, seq: batch.seq }, 'outbox ack failed'));
      }
      this.pump();
    });
  }

  async stop(): Promise<void> {
    this.started = false;
    if (this.rateTimer) clearTimeout(this.rateTimer);
    this.rateTimer = null;
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = null;
    if (this.statusSoonTimer) clearTimeout(this.statusSoonTimer);
    this.statusSoonTimer = null;
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
      // Then DISCONNECT, written before the socket closes: the broker discards the will (MQTT 3.1.1 §3.14.4),
      // so the retained status stays the offline message just sent, not the older will.
      await disconnect(client, 2000);
    }
    await retire(client);
  }
}
