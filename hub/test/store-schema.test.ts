/** The hub store's layout: migration from schema 1, the written-behind `latest` table and its recovery after a crash. */
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
  const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(HERE, 'store-crash-child.ts'), file, '25'], { encoding: 'utf8' });
  t.equal(child.signal, 'SIGKILL', `the child committed and died (${child.stderr.slice(0, 500)})`);
  const store = new HubStore({ file, logger: silentLogger() });
  await store.start();
  t.teardown(() => store.stop());
  t.equal((await store.readingCounts('gw-crash')).total, 50, 'every committed reading is there');
  t.same((await store.latest({ gateway: 'gw-crash' })).map((x) => [x.point, x.ts, x.value, x.quality]), [['door', 1_025, false, 'stale'], ['level', 1_025, 25, 'good']]);
  t.same((await store.listGateways()).map((g) => [g.id, g.lastSeen]), [['gw-crash', 1_025]], 'the gateway is known, last seen at its newest sample');
  const again = (seq: number) => store.commitBatch({ gateway: 'gw-crash', epoch: 'e', seq, historical: false, readings: [{ device: 'd1', point: 'level', ts: 5_000, value: 0, quality: 'good' }] });
  t.same(await Promise.all([again(1), again(25), again(26)]), ['duplicate', 'duplicate', 'stored'], 'the dedupe record survived the crash');
});
