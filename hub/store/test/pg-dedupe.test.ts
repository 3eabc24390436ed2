/**
 * The PostgreSQL dedupe record (schema version 7, schema-v7-seq-ranges.ts):
 * seq ranges per gateway epoch instead of a row per batch. A schema at
 * version 6 with `batches` rows is migrated without forgetting a batch; the
 * record stays bounded for a gateway that skips seqs or invents epochs, as
 * the SQLite store's does (hub/test/store-bounds.test.ts), and is updated in
 * place (schema version 8). Each test in its own schema; skipped with one
 * line where no PostgreSQL answers.
 */
import t from 'tap';
import type { Test } from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, pgClient, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { waitFor } from '../../../test/support/wait.js';
import { resolveDataLimits, type DataLimitOptions } from '../../data-limits.js';
import { MIGRATIONS, PG_SCHEMA_VERSION } from '../postgres/migrations.js';
import { PgTelemetryStore } from '../postgres/pg-telemetry-store.js';

const skip = await skipUnlessPostgres();
const NOW = Date.now();

const batch = (gateway: string, epoch: string, seq: number) => ({ gateway, epoch, seq, historical: false, readings: [{ device: 'd', point: 'p', ts: NOW - 100_000 + seq, value: seq, quality: 'good' as const }] });

async function open(t: Test, schema: string, limits: DataLimitOptions = {}): Promise<PgTelemetryStore> {
  // A clock a millisecond further at each reading: commit times are distinct, 'least recently used' is well defined.
  let tick = 0;
  const s = new PgTelemetryStore({ connect: { url: PG_URL, schema }, logger: silentLogger(), retentionTimer: false, limits: resolveDataLimits(limits), clock: () => NOW + tick++ });
  await s.start();
  t.teardown(() => s.stop());
  return s;
}

t.test('a version-6 schema with batch rows is migrated to seq ranges: every committed batch is still a replay, the gaps still take their batches', { skip: skip || undefined }, async (t) => {
  const schema = pgSchema(t);
  const c = await pgClient(t);
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.query(`SET search_path = ${schema}`);
  await c.query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
  for (const m of MIGRATIONS.filter((m) => m.version <= 6)) {
    await c.query(m.sql);
    await c.query('INSERT INTO schema_migrations(version, name) VALUES ($1, $2)', [m.version, m.name]);
  }
  // Seqs 1-3 and 5 of gw-a/e1, 7 of gw-a/e2, 1 of gw-b/e1, as a version-6 hub stored them.
  await c.query(`INSERT INTO batches(gateway, epoch, seq, committed_at) VALUES
    ('gw-a', 'e1', 1, 10), ('gw-a', 'e1', 2, 11), ('gw-a', 'e1', 3, 12), ('gw-a', 'e1', 5, 14), ('gw-a', 'e2', 7, 20), ('gw-b', 'e1', 1, 30)`);
  const store = await open(t, schema);
  const rows = (await c.query<{ gateway: string; epoch: string; seqs: string; updated_at: string }>('SELECT gateway, epoch, seqs::text, updated_at FROM batch_seqs ORDER BY 1, 2')).rows;
  t.same(rows.map((r) => [r.gateway, r.epoch, r.seqs, Number(r.updated_at)]), [
    ['gw-a', 'e1', '{[1,4),[5,6)}', 14], ['gw-a', 'e2', '{[7,8)}', 20], ['gw-b', 'e1', '{[1,2)}', 30],
  ], 'one row per gateway epoch, its seqs as ranges, the newest commit time');
  t.equal((await c.query("SELECT to_regclass('batches') AS t")).rows[0].t, null, 'the batches table is gone');
  t.equal((await c.query('SELECT max(version) AS v FROM schema_migrations')).rows[0].v, PG_SCHEMA_VERSION);
  for (const [g, e, s] of [['gw-a', 'e1', 1], ['gw-a', 'e1', 3], ['gw-a', 'e1', 5], ['gw-a', 'e2', 7], ['gw-b', 'e1', 1]] as const) {
    t.equal(await store.commitBatch(batch(g, e, s)), 'duplicate', `${g}/${e}/${s} committed before the migration is a replay`);
  }
  t.equal(await store.commitBatch(batch('gw-a', 'e1', 4)), 'stored', 'the gap between 3 and 5 takes its batch');
  t.equal(await store.commitBatch(batch('gw-a', 'e2', 6)), 'stored', 'a seq below the range takes its batch');
  t.equal((await c.query("SELECT seqs::text AS s FROM batch_seqs WHERE gateway = 'gw-a' AND epoch = 'e1'")).rows[0].s, '{[1,6)}', 'the gap filled: one range');
  t.equal((await c.query('SELECT count(*)::int AS n FROM readings')).rows[0].n, 2, 'the readings of the two new batches, none of the replays');
});

t.test('dedupe record bounded: a gateway skipping every other seq, or inventing an epoch per batch, cannot grow it without bound', { skip: skip || undefined }, async (t) => {
  const schema = pgSchema(t);
  const store = await open(t, schema, { maxSeqRanges: 50, maxEpochsPerGateway: 20 });
  const c = await pgClient(t, schema);
  const one = (seq: number, epoch = 'e') => store.commitBatch(batch('gw', epoch, seq));
  for (let seq = 2; seq <= 400; seq += 2) t.equal(await one(seq), 'stored');
  const ranges = (await c.query<{ lo: string; hi: string }>("SELECT lower(r) AS lo, upper(r) - 1 AS hi FROM batch_seqs, unnest(seqs) AS r WHERE gateway = 'gw' AND epoch = 'e' ORDER BY 1")).rows.map((r) => [Number(r.lo), Number(r.hi)]);
  t.equal(ranges.length, 50, 'at most 50 ranges kept');
  t.same(ranges.at(-1), [400, 400], 'the newest seqs are exact');
  t.same(ranges[0], [2, 302], 'the lowest gaps were closed into the first range');
  t.equal(store.gapsClosed, 150, 'gaps closed are counted');
  t.equal(await one(400), 'duplicate', 'a replay of a recent batch is still recognised');
  t.equal(await one(399), 'stored', 'a recent gap can still be filled');
  t.equal(await one(3), 'duplicate', 'an old gap was closed: a batch filling it is taken for a replay (documented)');
  for (let e = 0; e < 30; e++) await one(1, `ep${e}`);
  const r = await store.runRetention(NOW + 10_000);
  t.equal(r?.epochs, 11, 'epochs past 20 per gateway deleted, least recently used first');
  const left = (await c.query<{ epoch: string }>("SELECT epoch FROM batch_seqs WHERE gateway = 'gw' ORDER BY updated_at, epoch")).rows.map((x) => x.epoch);
  t.equal(left.length, 20);
  t.notOk(left.includes('e'), 'the epoch used longest ago went first');
  t.equal(await one(1, 'ep29'), 'duplicate', 'a kept epoch still recognises its replays');
});

t.test('the dedupe record is updated in place: hundreds of group commits update its rows as HOT updates, with no index on a column they change (schema version 8)', { skip: skip || undefined }, async (t) => {
  const schema = pgSchema(t);
  const store = await open(t, schema);
  const c = await pgClient(t, schema);
  // 300 group commits of 8 gateways, each updating the 8 rows of batch_seqs. Version 7 indexed updated_at,
  // so no update was HOT: every one added index entries, which stay until VACUUM, and a new version elsewhere.
  const COMMITS = 300;
  for (let k = 1; k <= COMMITS; k++) {
    const results = await Promise.all(Array.from({ length: 8 }, (_, g) => store.commitBatch(batch(`gw-${g}`, 'e1', k))));
    if (results.some((r) => r !== 'stored')) t.fail(`commit ${k}: ${results.join(', ')}`);
  }
  t.equal((await c.query('SELECT count(*)::int AS n FROM batch_seqs')).rows[0].n, 8, 'one row per gateway epoch');
  t.same((await c.query("SELECT DISTINCT seqs::text AS s FROM batch_seqs")).rows, [{ s: `{[1,${COMMITS + 1})}` }], 'each holds every seq as one range');
  // The share of HOT updates, not the table's size. How soon dead versions are pruned depends on every open
  // transaction of the server, even in another database: in one full run of the suite (files in parallel, some
  // holding transactions open on purpose) the table took 4 pages, and beside one open transaction 32. Whether
  // an update is HOT depends on the indexes: with pruning held back a row moves to a new page once per page
  // filled (2,144 of 2,392 stayed HOT), and with the version-7 index none did (0 of 2,392).
  // The counters reach pg_stat once the store's connections have ended.
  await store.stop();
  const updates = (COMMITS - 1) * 8;
  const stats = await waitFor(async () => {
    const r = (await c.query<{ upd: string; hot: string }>("SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relid = 'batch_seqs'::regclass")).rows[0];
    return r && Number(r.upd) >= updates ? { upd: Number(r.upd), hot: Number(r.hot) } : null;
  }, `pg_stat to count the ${updates} updates`, 20_000, 100);
  t.equal(stats.upd, updates, `PostgreSQL counted the ${updates} updates of the commits after the first`);
  t.ok(stats.hot >= updates / 2, `${stats.hot} of ${stats.upd} updates were HOT (in place on their page, no index entry)`);
  t.same((await c.query("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'batch_seqs'")).rows.map((r) => r.indexname), ['batch_seqs_pkey'], 'no index on a column every commit updates');
});
