/**
 * The hub's typed in-process event bus: ingest announces what it committed;
 * the demo printer, the live stream and metrics listen. Listeners must not
 * throw and must not block.
 */
import { EventEmitter } from 'node:events';
import type { GatewayEvent, GatewayStatus, Reading } from '../contract/index.js';

/** Event name → payload. */
export interface HubEventMap {
  /** A telemetry batch was committed (or recognised as a replay). */
  batch: [{ gateway: string; epoch: string; seq: number; historical: boolean; readings: Reading[]; duplicate: boolean }];
  /** A gateway event was committed. */
  event: [{ gateway: string; event: GatewayEvent }];
  /** A payload failed validation and was quarantined. */
  quarantine: [{ gateway: string | null; topic: string; code: string; error: string }];
  /** A gateway connected, disconnected or published a status. */
  gateway: [{ gateway: string; online?: boolean; status?: GatewayStatus }];
}

/** Typed wrapper around EventEmitter. */
export class HubEvents extends EventEmitter<HubEventMap> {}
