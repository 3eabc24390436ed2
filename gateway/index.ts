/**
 * ioc-edge gateway: drivers, poll scheduler, outbox, uplink. Imports contract,
 * device-profiles and lib only; never the hub.
 */
export { startGateway, loadProfiles, type Gateway, type StartGatewayOptions } from './gateway.js';
export { loadGatewayConfig, parseGatewayConfig, gatewayConfigSchema, type GatewayConfig } from './config.js';
export type { Outbox, OutboxBatch, OutboxStats } from './outbox/outbox.js';
export { SqliteOutbox } from './outbox/sqlite-outbox.js';
export type { ConfigAgent, ApplyResult } from './config-agent.js';
export type { CommandHandler } from './commands.js';
