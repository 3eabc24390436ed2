/** SqliteDb.runPrepared: statements kept prepared per connection (the hub's telemetry ingest uses one). */
import t from 'tap';
import path from 'node:path';
import { SqliteDb } from '../sqlite-db.js';

t.test('a prepared statement is reused, survives a schema change, and is finalized on close', async (t) => {
  const file = path.join(t.testdir(), 'x.db');
  const db = await SqliteDb.open(file);
  await db.exec('CREATE TABLE r (a INTEGER, b TEXT)');
  const sql = 'INSERT INTO r (a, b) SELECT value->>0, value->>1 FROM json_each(?)';
  const first = await db.runPrepared(sql, [JSON.stringify([[1, 'x'], [2, 'y']])]);
  t.equal(first.changes, 2);
  t.equal((await db.runPrepared(sql, [JSON.stringify([[3, 'z']])])).changes, 1, 'run again with other parameters');
  await db.exec('ALTER TABLE r ADD COLUMN c INTEGER DEFAULT 7; CREATE INDEX r_a ON r (a)');
  t.equal((await db.runPrepared(sql, [JSON.stringify([[4, 'w']])])).changes, 1, 'after a schema change SQLite prepares it again by itself');
  await db.close(); // fails with SQLITE_BUSY ("unable to close due to unfinalized statements") if a statement is left open
  const again = await SqliteDb.open(file);
  t.same(await again.all('SELECT a, b, c FROM r ORDER BY a'), [
    { a: 1, b: 'x', c: 7 }, { a: 2, b: 'y', c: 7 }, { a: 3, b: 'z', c: 7 }, { a: 4, b: 'w', c: 7 },
  ]);
  await again.close();
});

t.test('a statement that fails to prepare is refused with SQLite\'s error and prepared afresh next time', async (t) => {
  const db = await SqliteDb.open(path.join(t.testdir(), 'y.db'));
  t.teardown(() => db.close());
  const sql = 'INSERT INTO later (v) VALUES (?)';
  await t.rejects(db.runPrepared(sql, [1]), /no such table: later/);
  await db.exec('CREATE TABLE later (v)');
  t.equal((await db.runPrepared(sql, [2])).changes, 1, 'the failed prepare was not kept');
  await t.rejects(db.runPrepared('INSERT INTO later (v) VALUES (?, ?)', [1]), /2 values for 1 columns/, 'bad SQL is reported as such');
  t.same(await db.all('SELECT v FROM later'), [{ v: 2 }]);
});
