/**
 * ioc-edge hub: Aedes broker, ingest, telemetry store and HTTP API.
 * Imports contract and lib only; never the gateway.
 */
export { startHub, type Hub, type HubOptions } from './hub.js';
export type { HubEventMap } from './hub-events.js';
export type { StoredReading, StoredEvent, GatewayRow } from './store.js';
export type { IdentityService, ClaimView, LoginResult } from './identity/identity-service.js';
export type { Identity } from './identity/acl.js';
export type { ApiRole } from './identity/identity-store.js';
export type { AuditEntry } from './identity/audit-log.js';
export type { TlsFiles } from './identity/tls-files.js';
export type { RegistryDevice, RegistryGateway } from './registry/registry-store.js';
export type { GatewayView } from './registry/gateway-view.js';
export type { ConfigService, ConfigPush, FleetRow, FleetState } from './config/config-service.js';
export type { CommandService } from './config/command-service.js';
