/**
 * The outbox as the ioc/v1 uplink sees it when telemetry may go another way:
 * everything passes through to the one outbox except `nextBatch`, which
 * answers null while the gateway's northbound is Sparkplug (the Sparkplug
 * edge node drains the same outbox then). Events, status, commands and remote
 * configuration keep using the hub link either way. Batches the uplink
 * reserved before a switch are still sent and acknowledged by it.
 */
import { EventEmitter } from 'node:events';
import type { GatewayEvent, Reading } from '../../contract/index.js';
import type { Outbox, OutboxBatch, OutboxStats } from '../outbox/outbox.js';

/** An {@link Outbox} view whose telemetry can be switched off for one consumer. */
export class TelemetryGate extends EventEmitter implements Outbox {
  private readonly forward = (...args: unknown[]): void => void this.emit('readable', ...args);

  /** `open`: whether this consumer drains telemetry. */
  constructor(private readonly inner: Outbox, public open: boolean) {
    super();
  }

  async start(): Promise<void> {
    this.inner.on('readable', this.forward);
  }

  async stop(): Promise<void> {
    this.inner.off('readable', this.forward);
  }

  append(readings: readonly Reading[]): void {
    this.inner.append(readings);
  }

  appendEvent(event: GatewayEvent): Promise<void> {
    return this.inner.appendEvent(event);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  nextBatch(maxRows: number): Promise<OutboxBatch | null> {
    return this.open ? this.inner.nextBatch(maxRows) : Promise.resolve(null);
  }

  ack(seq: number): Promise<void> {
    return this.inner.ack(seq);
  }

  nextEvents(max: number): Promise<GatewayEvent[]> {
    return this.inner.nextEvents(max);
  }

  ackEvent(id: string): Promise<void> {
    return this.inner.ackEvent(id);
  }

  stats(): OutboxStats {
    return this.inner.stats();
  }

  get epoch(): string {
    return this.inner.epoch;
  }
}
