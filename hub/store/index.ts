/**
 * The hub's storage port and its backends (issue 15). Services depend on
 * the port's interfaces (port.ts); the composition root (hub/hub.ts) picks a
 * backend: SQLite (`HubStore`, hub/store.ts, the default) or PostgreSQL
 * (postgres/). Both run one conformance suite (test/store-conformance.ts).
 */
export type * from './port.js';
export { reportsHealth } from './port.js';
export { PgTelemetryStore, type PgTelemetryStoreDeps, type PgStoreLimits } from './postgres/pg-telemetry-store.js';
export { migrate, checkVersion, PG_SCHEMA_VERSION, type MigrateResult } from './postgres/migrations.js';
export { parseStoreUrl, redact, PgPool, type StoreUrl, type PgConnectOptions } from './postgres/pg-pool.js';
