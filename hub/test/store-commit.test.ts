/** The hub store's group commit: exactly-once per (gateway, epoch, seq), within and across groups. */
import t from 'tap';
import path from 'node:path';
import { silentLogger } from '../../lib/index.js';
import { HubStore } from '../store/sqlite/hub-store.js';

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
  // More than ROWS_PER_STATEMENT (50,000) rows: several statements inside BEGIN … COMMIT.
  // (Groups are capped at 50,000 readings by default; only a single huge batch gets there then.)
  const store = new HubStore({ file: path.join(t.testdir(), 'hub.sqlite'), logger: silentLogger(), maxGroupReadings: 1_000_000 });
  await store.start();
  t.teardown(() => store.stop());
  const big = (seq: number) => ({
    gateway: 'g', epoch: 'e', seq, historical: true,
    readings: Array.from({ length: 20_000 }, (_, i) => ({ device: `d${i % 50}`, point: `p${i % 7}`, ts: seq * 10_000 + i, value: i % 3 === 0 ? `s${i}` : i / 8, quality: 'good' as const })),
  });
  const results = await Promise.all([big(1), big(2), big(3), big(2)].map((b) => store.commitBatch(b)));
  t.same(results, ['stored', 'stored', 'stored', 'duplicate']);
  t.equal(store.counters.commits, 1, 'one group');
  t.same(await store.readingCounts('g'), { total: 60_000, distinct: 60_000 });
  const h = await store.history({ gateway: 'g', device: 'd3', point: 'p3', from: 0, to: 1e9, limit: 100 });
  t.same(h.slice(0, 2).map((r) => [r.ts, r.value]), [[10_003, 's3'], [10_353, 44.125]], 'values and types come back as sent');
  // A commit that fails in its second statement leaves nothing behind.
  const before = await store.readingCounts('g');
  const bad = big(9);
  bad.readings[15_000]!.ts = Number.NaN; // NOT NULL: ts of NaN goes to JSON as null
  await t.rejects(store.commitBatch({ ...bad, readings: [...bad.readings, ...big(10).readings, ...big(11).readings] }), { code: 'HUB_ERR_COMMIT' });
  t.same(await store.readingCounts('g'), before, 'the failed group rolled back as a whole');
  t.same(await store.commitBatch(big(9)), 'stored', 'and its seq was not recorded as committed');
});

t.test('every value comes back bit for bit: doubles (SQLite parses decimals inexactly), -0, subnormals, big integers, strings, booleans, null', async (t) => {
  const store = new HubStore({ file: path.join(t.testdir(), 'hub.sqlite'), logger: silentLogger() });
  await store.start();
  t.teardown(() => store.stop());
  const bits = new Float64Array(1);
  const words = new Uint32Array(bits.buffer);
  let s = 12345;
  const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  const values: Array<number | string | boolean | null> = [
    -0, 0, 0.1, 0.30000000000000004, 12.300000000000001, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
    1.7976931348623157e308, -1.7976931348623157e308, 2 ** 53, -(2 ** 53), 2 ** 53 + 2, 1e20, -(2 ** 63), 2 ** 31, -(2 ** 31) - 1,
    4.172717575328313, 6.989597459611955, 1.560258998805319e104, // parsed one ulp off by SQLite from their shortest decimal form
    'text', '', "it's \"quoted\"", 'nul\u0000inside', '[1,2]', '12.5', true, false, null,
  ];
  while (values.length < 3_000) {
    words[0] = rnd();
    words[1] = rnd();
    if (Number.isFinite(bits[0])) values.push(bits[0]!);
  }
  const batch = { gateway: 'g', epoch: 'e', seq: 1, historical: false, readings: values.map((value, i) => ({ device: 'd', point: 'p', ts: i, value, quality: 'good' as const })) };
  t.same(await store.commitBatch(batch), 'stored');
  const back = await store.history({ gateway: 'g', device: 'd', point: 'p', from: 0, to: 1e9, limit: 10_000 });
  t.equal(back.length, values.length);
  const wrong = back.filter((r, i) => !Object.is(r.value, values[i]));
  t.same(wrong.slice(0, 5).map((r) => [r.ts, values[r.ts], r.value]), [], 'no value changed on the way');
});

t.test('groups are capped in batches and in readings', async (t) => {
  const store = new HubStore({ file: path.join(t.testdir(), 'hub.sqlite'), logger: silentLogger(), maxGroup: 3, maxGroupReadings: 250 });
  await store.start();
  t.teardown(() => store.stop());
  const b = (seq: number, n: number) => ({ gateway: 'g', epoch: 'e', seq, historical: false, readings: Array.from({ length: n }, (_, i) => ({ device: 'd', point: `p${i}`, ts: seq, value: i, quality: 'good' as const })) });
  const sizes = [1, 1, 1, 1, 100, 100, 100, 400, 10];
  // The first commit starts one turn after the first batch: all of these are queued by then.
  await Promise.all(sizes.map((n, i) => store.commitBatch(b(i + 1, n))));
  t.equal(store.counters.batches, sizes.length);
  t.equal(store.counters.readings, sizes.reduce((a, n) => a + n, 0));
  // 1+1+1 (3 batches) | 1+100+100 (3) | 100 (next 400 would pass 250) | 400 (alone: more than the cap by itself) | 10
  t.equal(store.counters.commits, 5, 'five groups');
});
