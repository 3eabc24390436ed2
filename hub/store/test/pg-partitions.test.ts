/**
 * Daily partitions of the PostgreSQL store's readings (partitions.ts): made
 * ahead at start, on demand for a backlog day, the default partition for
 * timestamps far outside the window and its rows moved when their day gets
 * a partition; retention drops whole partitions. The hub's clock is injected.
 */
import t from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, pgClient, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { DAY_MS, dayOf, partitionName } from '../postgres/partitions.js';
import { PgTelemetryStore } from '../postgres/pg-telemetry-store.js';
import type { Reading } from '../../../contract/index.js';

const skip = await skipUnlessPostgres();
const NOON = Date.UTC(2026, 5, 15, 12); // 2026-06-15 12:00 UTC, the hub's "now"
const TODAY = dayOf(NOON);
const r = (ts: number, value: number): Reading => ({ device: 'd', point: 'p', ts, value, quality: 'good' });

t.test('partitions ahead, on demand, default for odd timestamps, moved when their day comes; retention drops whole days', { skip }, async (t) => {
  const schema = pgSchema(t);
  let now = NOON;
  const store = new PgTelemetryStore({ connect: { url: PG_URL, schema }, logger: silentLogger(), clock: () => now, retentionTimer: false });
  await store.start();
  t.teardown(() => store.stop());
  const db = await pgClient(t, schema);
  const inPartition = async (name: string): Promise<number> => Number((await db.query(`SELECT count(*) AS n FROM ${name}`)).rows[0].n);

  t.same(await store.partitionDays(), [TODAY - 1, TODAY, TODAY + 1, TODAY + 2], 'yesterday to two days ahead at start');
  t.equal(partitionName(TODAY), 'readings_d20260615');

  // A backlog from ten days ago gets its day; a reading from 1999 and one from 2099 go to the default partition.
  await store.commitBatch({ gateway: 'g', epoch: 'e', seq: 1, historical: true, readings: [r(NOON - 10 * DAY_MS, 1), r(Date.UTC(1999, 0, 1), 2), r(NOON + 30 * DAY_MS, 3), r(NOON, 4)] });
  t.ok((await store.partitionDays()).includes(TODAY - 10), 'a partition for the backlog day, made on demand');
  t.equal(await inPartition(partitionName(TODAY - 10)), 1);
  t.equal(await inPartition('readings_default'), 2, 'far-off timestamps wait in the default partition');
  t.equal(await inPartition(partitionName(TODAY)), 1);

  // 29 days later the reading stamped 30 days ahead comes within the window: the hourly job makes its day and moves it there.
  now = NOON + 29 * DAY_MS;
  await store.commitBatch({ gateway: 'g', epoch: 'e', seq: 2, historical: false, readings: [r(now, 5)] });
  const ahead = TODAY + 30;
  await store.ensurePartitionsAhead();
  t.ok((await store.partitionDays()).includes(ahead), 'the day 30 days on has its partition now');
  t.equal(await inPartition(partitionName(ahead)), 1, 'and its reading was moved into it');
  t.equal(await inPartition('readings_default'), 1, 'only the 1999 reading is left in the default partition');
  t.same((await store.history({ gateway: 'g', device: 'd', point: 'p', from: 0, to: NOON + 40 * DAY_MS, limit: 10 })).map((x) => x.value), [2, 1, 4, 5, 3], 'every reading still reads back');

  // Retention at 30 days (default rawMs) from "now": whole days before the cutoff go, with the 1999 row.
  const res = await store.runRetention(now);
  t.ok(res && res.partitions.includes(partitionName(TODAY - 10)), 'the backlog day is dropped as a whole partition');
  t.notOk(res!.partitions.includes(partitionName(TODAY)), 'a day not wholly before the cutoff stays');
  t.same((await store.history({ gateway: 'g', device: 'd', point: 'p', from: 0, to: NOON + 40 * DAY_MS, limit: 10 })).map((x) => x.value), [4, 5, 3], 'what is left');
  t.equal(res!.age, 2, 'counted: the dropped partition row and the old default row');

  // The group commit is a prepared statement, kept per connection: after partitions were made, filled, moved and
  // dropped under it, it still routes rows (into a fresh partition for the dropped day, too).
  await store.commitBatch({ gateway: 'g', epoch: 'e', seq: 3, historical: true, readings: [r(now + 1, 6), r(NOON - 10 * DAY_MS, 7)] });
  t.same((await store.history({ gateway: 'g', device: 'd', point: 'p', from: 0, to: NOON + 40 * DAY_MS, limit: 10 })).map((x) => x.value), [7, 4, 5, 6, 3], 'committed after the partition changes');
});
