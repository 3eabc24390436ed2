/**
 * ioc-edge hub: Aedes broker, ingest, telemetry store and HTTP API.
 * Imports contract and lib only; never the gateway.
 */
export { startHub, type Hub, type HubOptions } from './hub.js';
export type { HubEventMap } from './hub-events.js';
export type { StoredReading, StoredEvent, GatewayRow } from './store.js';
