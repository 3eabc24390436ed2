/**
 * The PostgreSQL backend of the storage port (hub/store/postgres/) against
 * the port's conformance suite, each test in its own schema. Skipped with
 * one line where no PostgreSQL answers (a failure under CI=true).
 */
import t from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import type { BatchToCommit } from '../port.js';
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

/**
 * The points cap per gateway holds across hub processes sharing one
 * database: a gateway that moves between hubs, or talks to two at once,
 * cannot make the cap once per hub. Two stores on one schema stand for the
 * two hubs.
 */
t.test('points cap across two hubs on one database', { skip: skip || undefined }, async (t) => {
  const schema = pgSchema(t);
  const NOW = Date.now();
  const open = async (): Promise<PgTelemetryStore> => {
    const s = new PgTelemetryStore({ connect: { url: PG_URL, schema }, logger: silentLogger(), retentionTimer: false, resetOnline: false, limits: resolveDataLimits({ maxSeriesPerGateway: 10 }) });
    await s.start();
    t.teardown(() => s.stop());
    return s;
  };
  const a = await open();
  const b = await open();
  const batch = (seq: number, points: string[]): BatchToCommit => ({
    gateway: 'gw', epoch: 'e1', seq, historical: false, readings: points.map((p, i) => ({ device: 'd', point: p, ts: NOW + seq * 100 + i, value: i, quality: 'good' as const })),
  });
  const points = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  t.test('a hub that counted the gateway earlier sees what the other made since', async (t) => {
    t.equal(await b.commitBatch(batch(1, ['first'])), 'stored');
    t.equal(await a.commitBatch(batch(2, points('a', 8))), 'stored');
    t.equal(await b.commitBatch(batch(3, points('b', 8))), 'stored');
    t.same(await a.readingCounts('gw'), { total: 10, distinct: 10 }, 'ten points in all: hub B made only the one left');
    t.equal(b.dropped.series_limit, 7);
  });

  t.test('two hubs making new points at the same moment stay within the cap together', async (t) => {
    const before = (await a.readingCounts('gw')).total;
    await Promise.all([a.commitBatch({ ...batch(4, points('x', 10)), gateway: 'gw2' }), b.commitBatch({ ...batch(5, points('y', 10)), gateway: 'gw2' })]);
    t.equal((await a.readingCounts('gw2')).total, 10, 'ten points for gw2, made by two hubs at once');
    t.equal((await a.readingCounts('gw')).total, before, 'gw unchanged');
  });
});
