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
 */
import type { Client, PublishPacket } from 'aedes';
import { isIocError, parseJson, parseTopic, validateEvent, validateStatus, validateTelemetryBatch, type GatewayStatus } from '../contract/index.js';
import type { Logger } from '../lib/index.js';
import type { HubEvents } from './hub-events.js';
import type { HubStore } from './store.js';

/** Dependencies of {@link Ingest}. */
export interface IngestDeps {
  store: HubStore;
  events: HubEvents;
  logger: Logger;
  /** Is a gateway with this client id connected now (other than `except`)? For will takeovers. */
  isConnected: (clientId: string, except: Client | null) => boolean;
import { markQuarantined } from './broker/quarantine-mark.js';
}

/** Handles publishes into the contract's gateway namespace. */
export class Ingest {
  constructor(private readonly deps: IngestDeps) {}

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
    // A commit failure propagates: the caller refuses the publish, no PUBACK goes out.
    const result = await this.deps.store.commitBatch({ gateway, epoch: batch.epoch, seq: batch.seq, historical: batch.historical ?? false, readings: batch.readings });
    if (result === 'duplicate') this.deps.logger.debug({ gateway, epoch: batch.epoch, seq: batch.seq }, 'replayed batch dropped');
    this.deps.events.emit('batch', { gateway, epoch: batch.epoch, seq: batch.seq, historical: batch.historical ?? false, readings: batch.readings, duplicate: result === 'duplicate' });
  }

  private async event(gateway: string, packet: PublishPacket): Promise<void> {
    const payload = packet.payload as Buffer;
    let ev;
    try {
      ev = validateEvent(parseJson(payload));
    } catch (err) {
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
    await this.deps.store.setGatewayState(gateway, { status, online: status.state === 'online' });
    this.deps.events.emit('gateway', { gateway, status, online: status.state === 'online' });
  }

  private async quarantine(gateway: string, topic: string, payload: Buffer, err: unknown): Promise<void> {
    const code = isIocError(err) ? err.code : 'CONTRACT_ERR_INVALID_PAYLOAD';
    const error = (err as Error).message;
    this.deps.logger.warn({ gateway, topic, code, error, bytes: payload.length }, 'malformed payload quarantined');
    await this.deps.store.quarantine({ gateway, topic, code, error, payload });
    await this.deps.store.commitEvent(gateway, {
      v: 1, id: `q-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`, ts: Date.now(), type: 'ingest.quarantined', severity: 'warning', code,
      message: `hub quarantined a malformed payload on ${topic}: ${error}`,
    });
    this.deps.events.emit('quarantine', { gateway, topic, code, error });
  }
}
    markQuarantined(payload); // never forwarded to subscribers nor queued (hub/broker/quarantine-mark.ts)
