/**
 * Telemetry, event and status ingest, run from Aedes's `authorizePublish`
 * hook: Aedes writes the QoS 1 PUBACK right after this hook calls back and
 * before `published` runs, so committing here is what makes "PUBACK only
 * after commit" true.
 *
 * - valid telemetry: committed (or recognised as a replay), then allowed;
 * - malformed payload from an allowed client: quarantined with an event and
 *   allowed (acknowledged). Refusing it would close the connection and mqtt.js
 *   would resend the same bytes after every reconnect, forever;
 * - commit failure: refused, so no PUBACK; the gateway keeps the batch.
 *
 * Time (issue 13 item 9): a reading stamped further ahead of the hub's clock
 * than `clock.futureMs`, or older than `clock.pastMs`, is refused on its own
 * (the rest of its batch is stored), counted in
 * `ioc_edge_hub_readings_dropped_total{reason="future"|"past"}` and kept in
 * the quarantine as a sample; an event stamped so is quarantined whole.
 * Backlog readings hours or days old are legitimate: there is no lower
 * bound unless one is configured (data-limits.ts). At most one
 * `ingest.quarantined` event per gateway per `quarantineEventMs`, so a
 * gateway sending garbage cannot fill the events table either.
 */
import type { Client, PublishPacket } from 'aedes';
import { IocError, isIocError, parseJson, parseTopic, validateEvent, validateStatus, validateTelemetryBatch, type GatewayStatus, type Reading } from '../contract/index.js';
import type { Logger } from '../lib/index.js';
import { markQuarantined } from './broker/quarantine-mark.js';
import { countsDataLimits } from './data-limits.js';
import type { HubEvents } from './hub-events.js';
import type { TelemetryPort } from './store/port.js';

/** Dependencies of {@link Ingest}. */
export interface IngestDeps {
  store: TelemetryPort;
  events: HubEvents;
  logger: Logger;
  /** Is a gateway with this client id connected now (other than `except`)? For will takeovers. */
  isConnected: (clientId: string, except: Client | null) => boolean;
  /** The hub's clock for the timestamp window (default Date.now). */
  clock?: () => number;
}

/** Refused readings kept in one quarantine sample. */
const SAMPLE_READINGS = 20;

/** Handles publishes into the contract's gateway namespace. */
export class Ingest {
  private readonly clock: () => number;
  /** Per gateway: quarantine writes left in its bucket, and when it was last filled. */
  private readonly quarantineTokens = new Map<string, { tokens: number; at: number }>();
  /** Per gateway: when its last `ingest.quarantined` event was stored, and how many were not since. */
  private readonly quarantineNotes = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly deps: IngestDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  /**
   * Called for every client publish (and for last wills). Resolves when the
   * publish may be acknowledged and forwarded; rejects to refuse it (no PUBACK).
   */
  async onPublish(client: Client | null, packet: PublishPacket): Promise<void> {
    const parsed = parseTopic(packet.topic);
    if (!parsed) return;
    const gw = parsed.gateway;
    switch (parsed.kind) {
      case 'telemetry':
        return this.telemetry(gw, packet);
      case 'events':
        return this.event(gw, packet);
      case 'status':
        return this.status(gw, client, packet);
      default:
        return;
    }
  }

  private async telemetry(gateway: string, packet: PublishPacket): Promise<void> {
    const payload = packet.payload as Buffer;
    let batch;
    try {
      batch = validateTelemetryBatch(parseJson(payload));
    } catch (err) {
      return this.quarantine(gateway, packet.topic, payload, err);
    }
    const { futureMs, pastMs } = this.deps.store.limits.clock;
    const now = this.clock();
    const latestOk = now + futureMs;
    const oldestOk = pastMs > 0 ? now - pastMs : 0;
    let readings: Reading[] = batch.readings;
    if (readings.some((r) => r.ts > latestOk || r.ts < oldestOk)) {
      readings = readings.filter((r) => r.ts <= latestOk && r.ts >= oldestOk);
      const refused = batch.readings.filter((r) => r.ts > latestOk || r.ts < oldestOk);
      const future = refused.filter((r) => r.ts > latestOk).length;
      this.deps.store.noteRefused('future', future);
      this.deps.store.noteRefused('past', refused.length - future);
      const err = new IocError('HUB_ERR_TIMESTAMP_RANGE', `${refused.length} of ${batch.readings.length} readings of batch ${batch.seq} are stamped outside the hub's clock window ${new Date(oldestOk).toISOString()} … ${new Date(latestOk).toISOString()} (first: ${refused[0]!.device}/${refused[0]!.point} at ${refused[0]!.ts}); they were not stored: check the gateway's clock (NTP)`);
      await this.quarantine(gateway, packet.topic, Buffer.from(JSON.stringify({ seq: batch.seq, refused: refused.length, sample: refused.slice(0, SAMPLE_READINGS) })), err);
      // Subscribers get what was stored: Aedes forwards this packet object after the hook.
      packet.payload = Buffer.from(JSON.stringify({ ...batch, readings }));
    }
    // A commit failure propagates: the caller refuses the publish, no PUBACK goes out.
    // A batch whose readings were all refused is still committed (empty): its seq is recorded, so a replay is a replay.
    const result = await this.deps.store.commitBatch({ gateway, epoch: batch.epoch, seq: batch.seq, historical: batch.historical ?? false, readings });
    if (result === 'duplicate') this.deps.logger.debug({ gateway, epoch: batch.epoch, seq: batch.seq }, 'replayed batch dropped');
    this.deps.events.emit('batch', { gateway, epoch: batch.epoch, seq: batch.seq, historical: batch.historical ?? false, readings, duplicate: result === 'duplicate' });
  }

  private async event(gateway: string, packet: PublishPacket): Promise<void> {
    const payload = packet.payload as Buffer;
    let ev;
    try {
      ev = validateEvent(parseJson(payload));
    } catch (err) {
      return this.quarantine(gateway, packet.topic, payload, err);
    }
    const { futureMs, pastMs } = this.deps.store.limits.clock;
    const now = this.clock();
    if (ev.ts > now + futureMs || (pastMs > 0 && ev.ts < now - pastMs)) {
      const err = new IocError('HUB_ERR_TIMESTAMP_RANGE', `event ${ev.id} (${ev.type}) is stamped ${new Date(ev.ts).toISOString()}, outside the hub's clock window (${futureMs / 1000} s ahead${pastMs > 0 ? `, ${Math.round(pastMs / 86_400_000)} days back` : ''}): check the gateway's clock (NTP)`);
      return this.quarantine(gateway, packet.topic, payload, err);
    }
    if (await this.deps.store.commitEvent(gateway, ev)) this.deps.events.emit('event', { gateway, event: ev });
  }

  private async status(gateway: string, client: Client | null, packet: PublishPacket): Promise<void> {
    const payload = packet.payload as Buffer;
    let status: GatewayStatus;
    try {
      status = validateStatus(parseJson(payload));
    } catch (err) {
      return this.quarantine(gateway, packet.topic, payload, err);
    }
    if (status.state === 'offline' && this.deps.isConnected(gateway, client)) {
      // The will of a connection that was taken over by a newer one: the gateway is online.
      throw Object.assign(new Error('stale last will: the gateway has reconnected'), { code: 'HUB_ERR_STALE_WILL' });
    }
    // No client: Aedes' will sweep publishing the will of a connection held by a node that died (hub services publish
    // without this check). Its row still names that node; the will clears it (cluster-failure test, seen in CI).
    const deadNodeWill = client === null && status.state === 'offline';
    await this.deps.store.setGatewayState(gateway, { status, online: status.state === 'online', ...(deadNodeWill ? { deadNodeWill } : {}) });
    this.deps.events.emit('gateway', { gateway, status, online: status.state === 'online' });
  }

  /** Token bucket of quarantine writes per gateway: `quarantine.perSecond`, bursts of twice that. */
  private takeQuarantineToken(gateway: string): boolean {
    const rate = (this.deps.store.limits as { quarantine?: { perSecond?: number } }).quarantine?.perSecond ?? 10;
    const now = this.clock();
    let b = this.quarantineTokens.get(gateway);
    if (!b) {
      if (this.quarantineTokens.size >= 10_000) this.quarantineTokens.clear();
      this.quarantineTokens.set(gateway, (b = { tokens: 2 * rate, at: now }));
    }
    b.tokens = Math.min(2 * rate, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }

  private async quarantine(gateway: string, topic: string, payload: Buffer, err: unknown): Promise<void> {
    markQuarantined(payload); // never forwarded to subscribers nor queued (hub/broker/quarantine-mark.ts)
    const code = isIocError(err) ? err.code : 'CONTRACT_ERR_INVALID_PAYLOAD';
    const error = (err as Error).message;
    // Each kept payload is a write with its fsync: past quarantine.perSecond per gateway the rest are
    // only counted (as dropped), so a flood of garbage cannot take the store's time from the others.
    if (!this.takeQuarantineToken(gateway)) {
      if (countsDataLimits(this.deps.store)) this.deps.store.retained.quarantineDropped++;
      this.deps.events.emit('quarantine', { gateway, topic, code, error });
      return;
    }
    this.deps.logger.warn({ gateway, topic, code, error, bytes: payload.length }, 'malformed payload quarantined');
    await this.deps.store.quarantine({ gateway, topic, code, error, payload });
    // One event per gateway per window, with the count of the others: a gateway that sends only garbage adds one event a minute.
    const now = this.clock();
    const note = this.quarantineNotes.get(gateway);
    if (note && now - note.at < this.deps.store.limits.quarantineEventMs) {
      note.suppressed++;
    } else {
      if (this.quarantineNotes.size >= 10_000) this.quarantineNotes.clear();
      this.quarantineNotes.set(gateway, { at: now, suppressed: 0 });
      const more = note?.suppressed ?? 0;
      await this.deps.store.commitEvent(gateway, {
        v: 1, id: `q-${now.toString(36)}-${Math.random().toString(36).slice(2, 8)}`, ts: now, type: 'ingest.quarantined', severity: 'warning', code,
        message: `hub quarantined a malformed payload on ${topic}: ${error}${more > 0 ? ` (and ${more} more since the last such event)` : ''}`.slice(0, 1024),
        ...(more > 0 ? { data: { suppressed: more } } : {}),
      });
    }
    this.deps.events.emit('quarantine', { gateway, topic, code, error });
  }
}
