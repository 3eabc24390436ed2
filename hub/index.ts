/**
 * ioc-edge hub: Aedes broker, ingest, telemetry store and HTTP API.
 * Imports contract and lib only; never the gateway.
 */
export { startHub, type Hub, type HubOptions } from './hub.js';
export type { HubEventMap } from './hub-events.js';
export type { StoredReading } from './store/model/readings.js';
export type { StoredEvent, GatewayRow } from './store/model/telemetry.js';
export type { IdentityService, ClaimView, LoginResult } from './identity/identity-service.js';
export type { Identity } from './identity/acl.js';
export type { ApiRole } from './store/model/identity.js';
export type { AuditEntry } from './store/model/audit.js';
export type { TlsFiles } from './identity/tls-files.js';
export type { RegistryDevice, RegistryGateway } from './store/model/registry.js';
export type { GatewayView } from './registry/gateway-view.js';
export type { ConfigService, ConfigPush, FleetRow, FleetState } from './config/config-service.js';
export type { CommandService } from './config/command-service.js';
