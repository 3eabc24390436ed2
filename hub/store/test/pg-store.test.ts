/**
 * The PostgreSQL backend of the storage port (hub/store/postgres/) against
 * the port's conformance suite, each test in its own schema. Skipped with
 * one line where no PostgreSQL answers (a failure under CI=true).
 */
import t from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { resolveDataLimits } from '../../data-limits.js';
import { PgTelemetryStore } from '../postgres/pg-telemetry-store.js';
import { storeConformance } from './store-conformance.js';

const skip = await skipUnlessPostgres();
if (skip) {
  t.pass(skip);
} else {
  storeConformance(t, 'PostgreSQL (PgTelemetryStore)', {
    location: async (t) => pgSchema(t),
    open: (schema, opts) =>
      new PgTelemetryStore({
        connect: { url: PG_URL, schema }, logger: silentLogger(), retentionTimer: false, ...(opts?.clock ? { clock: opts.clock } : {}),
        ...(opts?.maxSeriesPerGateway ? { limits: resolveDataLimits({ maxSeriesPerGateway: opts.maxSeriesPerGateway }) } : {}),
      }),
  });
}
