/**
 * ioc-edge gateway: drivers, poll scheduler, outbox, uplink. Imports contract,
 * device-profiles, lib and firmware-bridge only; never the hub.
 *
 * Rooms (the folder tree tells the architecture):
 * - `southbound/`: buses, drivers (`southbound/drivers/`), pollers, device
 *   state, alarm evaluation; emits readings and events, knows nothing of what
 *   follows (checked by test/layering.test.ts);
 * - `outbox/`: the SQLite buffer between southbound and uplink;
 * - `uplink/`: the MQTT link to the hub: drain, status, subscriptions;
 * - `remote/`: what the hub asks of the gateway: desired configuration
 *   (commit-confirm, rollback), commands, firmware download and flashing;
 * - `identity/`: provisioning with a claim, the stored credential, hub login and TLS;
 * - `cli/`: the technician's commands;
 * - top level: the composition root (`gateway.ts`), configuration, metrics,
 *   the local HTTP endpoint, version and system information.
 */
export { startGateway, loadProfiles, type Gateway, type StartGatewayOptions } from './gateway.js';
export { loadGatewayConfig, parseGatewayConfig, gatewayConfigSchema, type GatewayConfig } from './config.js';
export type { Outbox, OutboxBatch, OutboxStats } from './outbox/outbox.js';
export { SqliteOutbox } from './outbox/sqlite-outbox.js';
export type { ConfigAgent, ApplyResult } from './remote/config-agent.js';
export type { CommandHandler } from './remote/commands.js';
