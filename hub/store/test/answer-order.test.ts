/**
 * Committed groups are answered in the order they were formed, whichever
 * commits first, so that a client's PUBLISHes split over two groups get their
 * PUBACKs in order (MQTT 3.1.1 §4.6). On PostgreSQL two groups commit at once
 * (commitConcurrency); the test holds the first group's transaction open (a
 * trigger waits on an advisory lock the test holds) while the second commits.
 * On SQLite groups commit one after another and each is answered slice by
 * slice (release-in-slices.ts) before the next commits.
 */
import t from 'tap';
import type { Test } from 'tap';
import type pg from 'pg';
import path from 'node:path';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, pgClient, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { waitFor } from '../../../test/support/wait.js';
import { PgTelemetryStore, type PgTelemetryStoreDeps } from '../postgres/pg-telemetry-store.js';
import { HubStore } from '../sqlite/hub-store.js';
import type { BatchToCommit } from '../port.js';

const skip = await skipUnlessPostgres();
const NOW = Date.now();
const batch = (gateway: string, seq: number): BatchToCommit => ({
  gateway, epoch: 'e1', seq, historical: false, readings: [{ device: 'd', point: 'p', ts: NOW + seq, value: seq, quality: 'good' }],
});

/**
 * A PostgreSQL store whose commit of gateway `slow`'s batch is held inside its transaction (a trigger waits
 * on an advisory lock the test holds; `pg_advisory_unlock(key)` on `control` lets it go). Returns once that
 * commit is waiting; `slow` is its answer (`onSlow` runs when it comes).
 */
async function heldSlowCommit(t: Test, opts: Partial<PgTelemetryStoreDeps>, onSlow: () => void = () => undefined): Promise<{ store: PgTelemetryStore; control: pg.Client; key: number; slow: Promise<'stored' | 'duplicate'> }> {
  const schema = pgSchema(t);
  const store = new PgTelemetryStore({ connect: { url: PG_URL, schema, applicationName: `answer-order-${schema}` }, logger: silentLogger(), retentionTimer: false, ...opts });
  await store.start();
  t.teardown(() => store.stop());
  const control = await pgClient(t, schema);
  const key = Math.floor(Math.random() * 2 ** 31);
  await control.query(`
    CREATE FUNCTION hold_slow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.gateway = 'slow' THEN PERFORM pg_advisory_xact_lock_shared(${key}); END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER hold_slow AFTER INSERT ON batch_seqs FOR EACH ROW EXECUTE FUNCTION hold_slow();`);
  await control.query('SELECT pg_advisory_lock($1)', [key]);
  const slow = store.commitBatch(batch('slow', 1)).then((r) => (onSlow(), r));
  // This store's session: another test file's may be waiting on an advisory lock of its own at the same time.
  await waitFor(async () => (await control.query("SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND wait_event = 'advisory'", [`answer-order-${schema}`])).rowCount, 'the first group waiting on the lock');
  return { store, control, key, slow };
}

t.test('PostgreSQL: a group that commits first waits for the earlier group before it is answered', { skip }, async (t) => {
  const order: string[] = [];
  const { store, control, key, slow } = await heldSlowCommit(t, { maxGroup: 1, commitConcurrency: 2 }, () => order.push('slow'));
  const fast = store.commitBatch(batch('fast', 1)).then((r) => (order.push('fast'), r));
  // The second group is committed (visible to another session) while the first is still held.
  await waitFor(async () => (await control.query("SELECT 1 FROM batch_seqs WHERE gateway = 'fast'")).rowCount, 'the second group committed');
  await new Promise((r) => setTimeout(r, 100));
  t.same(order, [], 'the second group is not answered before the first');
  await control.query('SELECT pg_advisory_unlock($1)', [key]);
  t.same(await Promise.all([slow, fast]), ['stored', 'stored']);
  t.same(order, ['slow', 'fast'], 'answered in the order the groups were formed');
});

t.test('PostgreSQL: while a group commit runs, another starts only once secondGroupMin batches wait', { skip }, async (t) => {
  const { store, control, key, slow } = await heldSlowCommit(t, { commitConcurrency: 2, secondGroupMin: 3 });
  const waiting = [store.commitBatch(batch('g1', 1)), store.commitBatch(batch('g2', 1))];
  await new Promise((r) => setTimeout(r, 300));
  t.equal((await control.query("SELECT 1 FROM batch_seqs WHERE gateway IN ('g1', 'g2')")).rowCount, 0, 'two waiting batches do not start a second commit');
  waiting.push(store.commitBatch(batch('g3', 1)));
  await waitFor(async () => (await control.query("SELECT 1 FROM batch_seqs WHERE gateway IN ('g1', 'g2', 'g3')")).rowCount === 3, 'the third waiting batch started a second commit, all three in it');
  await control.query('SELECT pg_advisory_unlock($1)', [key]);
  t.same(await Promise.all([slow, ...waiting]), ['stored', 'stored', 'stored', 'stored']);
  t.equal(store.counters.commits, 2, 'two group commits: the held one and the three that waited');
});

t.test('SQLite: groups larger than a release slice are answered in order', async (t) => {
  const dir = t.testdir();
  const commits: number[] = [];
  const store = new HubStore({ file: path.join(dir, 'hub.db'), logger: silentLogger(), maxGroup: 150, onCommit: (c) => commits.push(c.batches) });
  await store.start();
  t.teardown(() => store.stop());
  const order: number[] = [];
  const all = Array.from({ length: 600 }, (_, i) => store.commitBatch(batch(`gw${i % 7}`, i + 1)).then((r) => (order.push(i), r)));
  const results = await Promise.all(all);
  t.ok(results.every((r) => r === 'stored'), 'every batch stored');
  t.ok(commits.length >= 4 && commits.every((n) => n <= 150), `several groups of at most 150 (${commits.join(', ')})`);
  t.same(order, Array.from({ length: 600 }, (_, i) => i), 'answers in the order of the calls');
  t.equal(await store.commitBatch(batch('gw0', 1)), 'duplicate', 'a replay after the groups is recognised');
});
