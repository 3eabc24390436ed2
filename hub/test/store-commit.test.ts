/** The hub store's group commit: exactly-once per (gateway, epoch, seq), within and across groups. */
import t from 'tap';
import path from 'node:path';
import { silentLogger } from '../../lib/index.js';
import { HubStore } from '../store.js';

const reading = (v: number) => ({ device: 'd1', point: 'p', ts: 1_000 + v, value: v, quality: 'good' as const });

t.test('replays are recognised in the same group and in later groups', async (t) => {
  const store = new HubStore({ file: path.join(t.testdir(), 'hub.sqlite'), logger: silentLogger() });
  await store.start();
  t.teardown(() => store.stop());
  const b = (gateway: string, epoch: string, seq: number) => ({ gateway, epoch, seq, historical: false, readings: [reading(seq)] });
  // Queued together: one group commit.
  const results = await Promise.all([b('g1', 'e', 1), b('g1', 'e', 1), b('g1', 'e', 2), b('g2', 'e', 1), b('g1', 'f', 1)].map((x) => store.commitBatch(x)));
  t.same(results, ['stored', 'duplicate', 'stored', 'stored', 'stored'], 'the second copy of a key in one group is a duplicate');
  t.same(await store.commitBatch(b('g1', 'e', 2)), 'duplicate', 'a later replay is a duplicate');
  t.same(await store.commitBatch(b('g1', 'e', 3)), 'stored');
  t.equal((await store.readingCounts('g1')).total, 4, 'g1: seq 1, 2, 3 of epoch e and seq 1 of epoch f');
  t.equal((await store.readingCounts('g2')).total, 1);
  const gws = await store.listGateways();
  t.same(gws.map((g) => g.id), ['g1', 'g2'], 'both gateways seen');
  t.equal(store.counters.duplicates, 2);
});

t.test('a group too large for one statement is committed in one transaction of several', async (t) => {
  const store = new HubStore({ file: path.join(t.testdir(), 'hub.sqlite'), logger: silentLogger() });
  await store.start();
  t.teardown(() => store.stop());
  const big = (seq: number) => ({
    gateway: 'g', epoch: 'e', seq, historical: true,
    readings: Array.from({ length: 2_500 }, (_, i) => ({ device: `d${i % 50}`, point: `p${i % 7}`, ts: seq * 10_000 + i, value: i % 3 === 0 ? `s${i}` : i / 8, quality: 'good' as const })),
  });
  const results = await Promise.all([big(1), big(2), big(3), big(2)].map((b) => store.commitBatch(b)));
  t.same(results, ['stored', 'stored', 'stored', 'duplicate']);
  t.equal(store.counters.commits, 1, 'one group');
  t.same(await store.readingCounts('g'), { total: 7_500, distinct: 7_500 });
  const h = await store.history({ gateway: 'g', device: 'd3', point: 'p3', from: 0, to: 1e9, limit: 100 });
  t.same(h.slice(0, 2).map((r) => [r.ts, r.value]), [[10_003, 's3'], [10_353, 44.125]], 'values and types come back as sent');
});
