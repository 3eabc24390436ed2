/**
 * The hub store's layout: migrations from schemas 1 and 2, the refusal of a
 * newer one, the staging table of live readings, the written-behind `latest`
 * table and its recovery after a crash.
 */
import t from 'tap';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SqliteDb, silentLogger } from '../../lib/index.js';
import { HubStore } from '../store/sqlite/hub-store.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

t.test('a schema-1 store (text keys in every reading) is migrated without losing readings', async (t) => {
  const file = path.join(t.testdir(), 'hub.sqlite');
  const old = await SqliteDb.open(file);
  await old.exec(`
    CREATE TABLE gateways (id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, status TEXT);
    CREATE TABLE batches (gateway TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, received_at INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (gateway, epoch, seq)) WITHOUT ROWID;
    CREATE TABLE readings (gateway TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, ts INTEGER NOT NULL, value, vtype INTEGER NOT NULL, quality INTEGER NOT NULL, historical INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX readings_point_ts ON readings (gateway, device, point, ts);
    CREATE TABLE latest (gateway TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, ts INTEGER NOT NULL, value, vtype INTEGER NOT NULL, quality INTEGER NOT NULL, PRIMARY KEY (gateway, device, point)) WITHOUT ROWID;
    INSERT INTO batches VALUES ('g1', 'e', 1, 5, 3);
    INSERT INTO readings VALUES ('g1', 'd1', 'level', 100, 1.5, 0, 0, 0), ('g1', 'd1', 'level', 200, 2.5, 0, 1, 1), ('g1', 'd1', 'door', 100, 1, 1, 0, 0), ('g1', 'd1', 'label', 100, 'open', 2, 2, 0);
    INSERT INTO latest VALUES ('g1', 'd1', 'level', 200, 2.5, 0, 1), ('g1', 'd1', 'door', 100, 1, 1, 0), ('g1', 'd1', 'label', 100, 'open', 2, 2);`);
  await old.close();
  const first = new HubStore({ file, logger: silentLogger() });
  await first.start();
  await first.stop();
  const store = new HubStore({ file, logger: silentLogger() });
  await store.start();
  t.teardown(() => store.stop());
  t.same((await store.history({ gateway: 'g1', device: 'd1', point: 'level', from: 0, to: 1000, limit: 10 })).map((r) => [r.ts, r.value, r.quality]), [[100, 1.5, 'good'], [200, 2.5, 'bad']]);
  t.same((await store.latest({ gateway: 'g1' })).map((r) => [r.point, r.value, r.quality]), [['door', true, 'good'], ['label', 'open', 'stale'], ['level', 2.5, 'bad']]);
  t.same(await store.commitBatch({ gateway: 'g1', epoch: 'e', seq: 1, historical: false, readings: [{ device: 'd1', point: 'level', ts: 300, value: 9, quality: 'good' }] }), 'duplicate', 'the dedupe keys survived');
  t.same(await store.commitBatch({ gateway: 'g1', epoch: 'e', seq: 2, historical: false, readings: [{ device: 'd1', point: 'level', ts: 300, value: 3.5, quality: 'good' }] }), 'stored');
  t.equal((await store.readingCounts('g1')).total, 5);
  t.same((await store.latest({ gateway: 'g1', point: 'level' })).map((r) => r.value), [3.5]);
});

t.test('latest values and last-seen are written behind, read back at once, and kept in order', async (t) => {
  const store = new HubStore({ file: path.join(t.testdir(), 'hub.sqlite'), logger: silentLogger(), latestFlushMs: 3_600_000 });
  await store.start();
  t.teardown(() => store.stop());
  const r = (ts: number, value: number) => ({ device: 'd', point: 'p', ts, value, quality: 'good' as const });
  await Promise.all([
    store.commitBatch({ gateway: 'g', epoch: 'e', seq: 1, historical: false, readings: [r(10, 1), r(30, 3)] }),
    store.commitBatch({ gateway: 'g', epoch: 'e', seq: 2, historical: true, readings: [r(20, 2)] }),
  ]);
  await store.commitBatch({ gateway: 'g', epoch: 'e', seq: 3, historical: true, readings: [r(5, 0)] });
  t.same((await store.latest({})).map((x) => [x.ts, x.value]), [[30, 3]], 'an older (replayed) reading does not replace a newer latest value');
  t.same((await store.listGateways()).map((g) => g.id), ['g'], 'the gateway is listed before any timed write');
  t.same((await store.history({ gateway: 'g', device: 'd', point: 'p', from: 0, to: 100, limit: 10 })).map((x) => x.ts), [5, 10, 20, 30]);
});

t.test('after a crash the latest values are recomputed from the committed readings', async (t) => {
  const file = path.join(t.testdir(), 'hub.sqlite');
  const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(HERE, 'store-crash-child.ts'), file, '25', 'merge-half'], { encoding: 'utf8' });
  t.equal(child.signal, 'SIGKILL', `the child committed and died (${child.stderr.slice(0, 500)})`);
  const raw = await SqliteDb.open(file);
  t.same(await raw.get('SELECT (SELECT count(*) FROM readings) AS moved, (SELECT count(*) FROM readings_staged) AS staged'), { moved: 24, staged: 26 }, 'the crash left the newer half of the readings staged');
  await raw.close();
  const store = new HubStore({ file, logger: silentLogger() });
  await store.start();
  t.teardown(() => store.stop());
  t.equal((await store.readingCounts('gw-crash')).total, 50, 'every committed reading is there');
  t.same((await store.latest({ gateway: 'gw-crash' })).map((x) => [x.point, x.ts, x.value, x.quality]), [['door', 1_025, false, 'stale'], ['level', 1_025, 25, 'good']]);
  t.same((await store.listGateways()).map((g) => [g.id, g.lastSeen]), [['gw-crash', 1_025]], 'the gateway is known, last seen at its newest sample');
  const again = (seq: number) => store.commitBatch({ gateway: 'gw-crash', epoch: 'e', seq, historical: false, readings: [{ device: 'd1', point: 'level', ts: 5_000, value: 0, quality: 'good' }] });
  t.same(await Promise.all([again(1), again(25), again(26)]), ['duplicate', 'duplicate', 'stored'], 'the dedupe record survived the crash');
});

/** The layout of schema version 2: live readings went straight into `readings` (no staging table). */
const V2 = `
CREATE TABLE gateways (id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, status TEXT);
CREATE TABLE seq_ranges (gateway TEXT NOT NULL, epoch TEXT NOT NULL, ranges TEXT NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (gateway, epoch)) WITHOUT ROWID;
CREATE TABLE series (id INTEGER PRIMARY KEY, gateway TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, UNIQUE (gateway, device, point));
CREATE TABLE readings (series INTEGER NOT NULL, ts INTEGER NOT NULL, value, flags INTEGER NOT NULL);
CREATE INDEX readings_series_ts ON readings (series, ts);
CREATE TABLE latest (series INTEGER PRIMARY KEY, ts INTEGER NOT NULL, value, flags INTEGER NOT NULL);
CREATE VIEW ingest(kind, a, b, c, d) AS SELECT NULL, NULL, NULL, NULL, NULL WHERE 0;
CREATE TRIGGER ingest_reading INSTEAD OF INSERT ON ingest WHEN NEW.kind = 0 BEGIN
  INSERT INTO readings(series, ts, value, flags) VALUES (NEW.a, NEW.b, NEW.c, NEW.d); END;
CREATE TRIGGER ingest_seq_ranges INSTEAD OF INSERT ON ingest WHEN NEW.kind = 1 BEGIN
  INSERT INTO seq_ranges(gateway, epoch, ranges, updated_at) VALUES (NEW.a, NEW.b, NEW.c, NEW.d)
  ON CONFLICT(gateway, epoch) DO UPDATE SET ranges = excluded.ranges, updated_at = excluded.updated_at; END;
CREATE TABLE store_meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
INSERT INTO series VALUES (1, 'g2', 'd', 'p');
INSERT INTO seq_ranges VALUES ('g2', 'e', '[[1,1]]', 0);
INSERT INTO readings VALUES (1, 100, 1.5, 0);
INSERT INTO latest VALUES (1, 100, 1.5, 0);
PRAGMA user_version = 2;`;

t.test('a schema-2 store is migrated: its readings stay, new ones are staged and read back at once', async (t) => {
  const file = path.join(t.testdir(), 'hub.sqlite');
  const old = await SqliteDb.open(file);
  await old.exec(V2);
  await old.close();
  const store = new HubStore({ file, logger: silentLogger(), mergeMs: 3_600_000 });
  await store.start();
  t.teardown(() => store.stop());
  const raw = await SqliteDb.open(file);
  t.teardown(() => raw.close());
  t.equal((await raw.get<{ user_version: number }>('PRAGMA user_version'))?.user_version, 3, 'now at version 3');
  t.same(await store.commitBatch({ gateway: 'g2', epoch: 'e', seq: 1, historical: false, readings: [{ device: 'd', point: 'p', ts: 150, value: 9, quality: 'good' }] }), 'duplicate', 'the dedupe record survived');
  t.same(await store.commitBatch({ gateway: 'g2', epoch: 'e', seq: 2, historical: false, readings: [{ device: 'd', point: 'p', ts: 200, value: 2.5, quality: 'good' }] }), 'stored');
  t.same(await raw.get('SELECT (SELECT count(*) FROM readings) AS direct, (SELECT count(*) FROM readings_staged) AS staged'), { direct: 1, staged: 1 }, 'the new reading went to the staging table');
  t.same((await store.history({ gateway: 'g2', device: 'd', point: 'p', from: 0, to: 1000, limit: 10 })).map((r) => [r.ts, r.value]), [[100, 1.5], [200, 2.5]], 'history has the old and the staged reading');
  t.same(await raw.get('SELECT (SELECT count(*) FROM readings) AS direct, (SELECT count(*) FROM readings_staged) AS staged'), { direct: 2, staged: 0 }, 'reading history moved the staged reading first');
});

t.test('a store of a newer schema version is refused with a clear error, untouched', async (t) => {
  const file = path.join(t.testdir(), 'hub.sqlite');
  const future = await SqliteDb.open(file);
  await future.exec('CREATE TABLE something_new (x); PRAGMA user_version = 99;');
  await future.close();
  const store = new HubStore({ file, logger: silentLogger() });
  await t.rejects(store.start(), { code: 'HUB_ERR_STORE_IO', message: /schema version 99, newer than this hub knows \(3\)/ });
  await store.stop();
  const raw = await SqliteDb.open(file);
  t.teardown(() => raw.close());
  t.equal((await raw.get<{ user_version: number }>('PRAGMA user_version'))?.user_version, 99, 'the version is unchanged');
  t.notOk(await raw.get("SELECT 1 FROM sqlite_master WHERE name = 'readings'"), 'no table was created in it');
});

t.test('staged readings: merged in commit order, in chunks; a large group goes straight in after them', async (t) => {
  const file = path.join(t.testdir(), 'hub.sqlite');
  const store = new HubStore({ file, logger: silentLogger(), mergeMs: 3_600_000, directReadings: 30_000 });
  await store.start();
  t.teardown(() => store.stop());
  const raw = await SqliteDb.open(file);
  t.teardown(() => raw.close());
  const counts = () => raw.get('SELECT (SELECT count(*) FROM readings) AS readings, (SELECT count(*) FROM readings_staged) AS staged');
  const rs = (n: number, ts0: number) => Array.from({ length: n }, (_, i) => ({ device: 'd', point: `p${i % 7}`, ts: ts0 + i, value: ts0 + i, quality: 'good' as const }));
  // 20,000 readings in one group below the direct threshold: staged, then merged in two transactions (16,384 + 3,616).
  t.equal(await store.commitBatch({ gateway: 'g', epoch: 'e', seq: 1, historical: true, readings: rs(20_000, 10_000) }), 'stored');
  t.same(await counts(), { readings: 0, staged: 20_000 }, 'staged, not in readings yet');
  await store.mergeStaged();
  t.same(await counts(), { readings: 20_000, staged: 0 }, 'all moved');
  t.same(store.mergeCounters, { merges: 2, readings: 20_000 }, 'in two transactions of at most 16,384');
  // One small group staged, then a group past the threshold: the staged reading is moved before it, so rowids follow commit order.
  t.equal(await store.commitBatch({ gateway: 'g', epoch: 'e', seq: 2, historical: false, readings: [{ device: 'd', point: 'p0', ts: 50_000, value: -1, quality: 'good' }] }), 'stored');
  t.same(await counts(), { readings: 20_000, staged: 1 });
  t.equal(await store.commitBatch({ gateway: 'g', epoch: 'e', seq: 3, historical: true, readings: rs(30_000, 100_000) }), 'stored');
  t.same(await counts(), { readings: 50_001, staged: 0 }, 'the large group went straight into readings, after the staged one');
  t.same(await raw.all('SELECT ts FROM readings WHERE rowid > 20000 ORDER BY rowid LIMIT 2'), [{ ts: 50_000 }, { ts: 100_000 }], 'commit order');
  t.equal((await raw.get<{ ts: number }>('SELECT ts FROM readings ORDER BY rowid DESC LIMIT 1'))?.ts, 129_994, 'the newest rowid is in the last group committed (its last reading in index order: p6)');
  t.equal((await store.readingCounts('g')).total, 50_001);
});
