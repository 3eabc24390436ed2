/**
 * The hub's storage port and its backends (issue 15):
 * - port.ts (telemetry, latest values, events, alarms, quarantine) and
 *   state-ports.ts (registry, identities, audit chain, configuration,
 *   firmware): the interfaces the services use;
 * - model/: what both backends share (records, row mapping, the audit chain
 *   hash, the redemption decision, gateway-state batching);
 * - sqlite/: the embedded backend (files in the data directory, the default);
 * - postgres/: the PostgreSQL backend (partitioned readings, migrations);
 * - state.ts opens the state stores of either; the composition root
 *   (hub/hub.ts) opens the telemetry store. The backends import neither each
 *   other nor are imported by the services (test/layering.test.ts); both run
 *   the conformance suites in test/.
 */
export type * from './port.js';
export { reportsHealth } from './port.js';
export { PgTelemetryStore, type PgTelemetryStoreDeps, type PgStoreLimits } from './postgres/pg-telemetry-store.js';
export { migrate, checkVersion, PG_SCHEMA_VERSION, type MigrateResult } from './postgres/migrations.js';
export { parseStoreUrl, redact, PgPool, type StoreUrl, type PgConnectOptions } from './postgres/pg-pool.js';
