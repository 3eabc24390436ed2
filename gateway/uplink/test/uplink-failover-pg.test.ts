/**
 * Failover loses nothing and stores nothing twice (issue 16.4): two real hubs
 * (Aedes + ingest, authentication open on loopback) share one PostgreSQL
 * schema, as the nodes of a cluster do; a gateway's uplink drains a loaded
 * SQLite outbox to hub A; A is stopped mid-stream; the uplink moves to B and
 * resends what A had not acknowledged. B drops what A had committed (the
 * dedupe on (gateway, epoch, seq) lives in the shared store), so PostgreSQL
 * holds every reading produced exactly once.
 *
 * Skipped with one line when PostgreSQL does not answer (IOC_EDGE_TEST_PG).
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { silentLogger } from '../../../lib/index.js';
import { startHub, type Hub } from '../../../hub/index.js';
import { tempDir } from '../../../hub/test/support.js';
import { PG_URL, pgClient, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { waitFor } from '../../../test/support/wait.js';
import { SqliteOutbox } from '../../outbox/sqlite-outbox.js';
import { Uplink } from '../uplink.js';

const skip = await skipUnlessPostgres();

async function pgHub(t: Test, store: string): Promise<Hub> {
  const hub = await startHub({ dataDir: tempDir(t, 'ioc-edge-failover-'), logger: silentLogger(), mqttPort: 0, httpPort: 0, store });
  t.teardown(() => hub.stop());
  return hub;
}

t.test('hub A stopped under load: the gateway moves to B, every reading stored exactly once', { skip }, async (t) => {
  const t0 = Date.now();
  const schema = pgSchema(t);
  const store = `${PG_URL}?schema=${schema}`;
  const a = await pgHub(t, store);
  const b = await pgHub(t, store); // after A: A migrated the schema
  const urlA = `mqtt://127.0.0.1:${a.mqttPort}`;
  const urlB = `mqtt://127.0.0.1:${b.mqttPort}`;

  const outbox = new SqliteOutbox({ file: path.join(t.testdir(), 'outbox.sqlite'), logger: silentLogger(), flushIntervalMs: 10, limits: { maxRows: 1_000_000, maxBytes: 1 << 30, maxAgeMs: 86_400_000 } });
  await outbox.start();
  t.teardown(() => outbox.stop());
  const uplink = new Uplink({ gatewayId: 'gw-failover', url: [urlA, urlB], logger: silentLogger(), outbox, version: '1', batchSize: 200, window: 4, statusIntervalMs: 60_000, keepaliveS: 30, reconnect: { minMs: 100, maxMs: 1000 } });
  t.teardown(() => uplink.stop());
  await uplink.start();
  t.comment(`hubs up in ${Date.now() - t0} ms`);

  // Load: 100 readings every 10 ms, each with its own ts, until told to stop.
  const base = Date.now();
  let produced = 0;
  const load = setInterval(() => {
    outbox.append(Array.from({ length: 100 }, () => {
      const n = produced++;
      return { device: 'dev-1', point: `p${n % 10}`, ts: base + n, value: n, quality: 'good' as const };
    }));
  }, 10);
  t.teardown(() => clearInterval(load));

  await waitFor(() => uplink.stats().hub === urlA && uplink.stats().readingsAcked >= 2000, 'readings acknowledged by hub A', 30_000);
  const ackedOnA = uplink.stats().readingsAcked;
  t.comment(`A acked ${ackedOnA} at ${Date.now() - t0} ms`);
  await a.stop();
  t.comment(`A stopped at ${Date.now() - t0} ms`);
  await waitFor(() => uplink.connected && uplink.stats().hub === urlB, 'the uplink on hub B', 30_000);
  const onB = uplink.stats().readingsAcked;
  await waitFor(() => uplink.stats().readingsAcked >= onB + 2000, 'readings acknowledged by hub B', 30_000);
  clearInterval(load);
  t.comment(`B acked at ${Date.now() - t0} ms`);
  await waitFor(async () => {
    const s = outbox.stats();
    return s.rows === 0 && uplink.stats().inFlight === 0;
  }, 'the outbox drained', 60_000);

  t.comment(`drained at ${Date.now() - t0} ms`);
  t.ok(ackedOnA >= 2000 && produced > ackedOnA, `under load: ${ackedOnA} acknowledged by A of ${produced} produced`);
  t.equal(outbox.stats().dropped, 0, 'the outbox dropped nothing');
  const db = await pgClient(t, schema);
  const row = (await db.query('SELECT count(*)::int AS n, count(DISTINCT (series, ts))::int AS d, min(value) AS lo, max(value) AS hi FROM readings')).rows[0] as { n: number; d: number; lo: number; hi: number };
  t.equal(row.d, produced, `every reading produced is in PostgreSQL (${row.d} of ${produced})`);
  t.equal(row.n, produced, 'none twice');
  t.same([row.lo, row.hi], [0, produced - 1], 'from the first to the last');
  t.equal(uplink.stats().failovers, 1, 'one failover');
});
