/**
 * Internal utilities shared by gateway, hub and firmware-bridge: the sqlite3
 * wrapper, backoff, the logger factory. Imports nothing of ours and knows
 * nothing of the domain.
 */
export * from './backoff.js';
export * from './logger.js';
export * from './logger-routing.js';
export * from './log-ring.js';
export * from './process-policy.js';
export * from './sqlite-db.js';
export * from './stop-signals.js';
export * from './start-all.js';
export type { Command, CommandIo } from './cli-command.js';
