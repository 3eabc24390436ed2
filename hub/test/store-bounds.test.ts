/**
 * Bounds of the hub store beside readings retention (issue 13): the dedupe
 * record of a gateway that skips seqs or invents epochs, alarm history per
 * gateway, and events committed in groups. Real SQLite files, an injected
 * clock. (Readings retention: retention.test.ts.)
 */
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { silentLogger } from '../../lib/index.js';
import { resolveDataLimits, type DataLimitOptions } from '../data-limits.js';
import { HubStore } from '../store/sqlite/hub-store.js';
import { tempDir } from './support.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 20);

const LIMITS: DataLimitOptions = {
  retention: { rawMs: DAY, rollups: [{ bucketMs: MIN, keepMs: 3 * DAY }, { bucketMs: HOUR, keepMs: 10 * DAY }], chunkRows: 2000, intervalMs: HOUR },
  events: { keepMs: 5 * DAY, maxPerGateway: 5 },
};

async function openStore(t: Test, clock: () => number, limits: DataLimitOptions = LIMITS, file = path.join(tempDir(t), 'hub.sqlite')): Promise<HubStore> {
  const store = new HubStore({ file, logger: silentLogger(), clock, limits: resolveDataLimits(limits), retentionTimer: false });
  await store.start();
  t.teardown(() => store.stop());
  return store;
}

t.test('dedupe record bounded: a gateway skipping every other seq, or inventing an epoch per batch, cannot grow it without bound', async (t) => {
  const now = T0;
  const store = await openStore(t, () => now, { ...LIMITS, maxSeqRanges: 50, maxEpochsPerGateway: 20 });
  const one = (seq: number, epoch = 'e') => store.commitBatch({ gateway: 'gw', epoch, seq, historical: false, readings: [{ device: 'd', point: 'p', ts: now - seq, value: seq, quality: 'good' }] });
  for (let seq = 2; seq <= 400; seq += 2) t.equal(await one(seq), 'stored');
  const db = (store as unknown as { db: import('../../lib/index.js').SqliteDb }).db;
  const ranges = JSON.parse((await db.get<{ ranges: string }>("SELECT ranges FROM seq_ranges WHERE gateway = 'gw' AND epoch = 'e'"))!.ranges) as number[][];
  t.equal(ranges.length, 50, 'at most 50 ranges kept');
  t.same(ranges.at(-1), [400, 400], 'the newest seqs are exact');
  t.equal(await one(400), 'duplicate', 'a replay of a recent batch is still recognised');
  t.equal(await one(399), 'stored', 'a recent gap can still be filled');
  t.equal(await one(3), 'duplicate', 'an old gap was closed: a batch filling it is taken for a replay (documented)');
  for (let e = 0; e < 30; e++) await one(1, `ep${e}`);
  const r = await store.runRetention(now);
  t.equal(r?.epochs, 11, 'epochs past 20 per gateway deleted, least recently used first');
  t.equal((await db.get<{ n: number }>("SELECT count(*) AS n FROM seq_ranges WHERE gateway = 'gw'"))!.n, 20);
});

t.test('alarm history per gateway: a flapping point keeps at most events.maxPerGateway rows, active ones kept', async (t) => {
  const now = T0;
  const store = await openStore(t, () => now);
  const ev = (id: string, ts: number, type: string, point: string) => ({ v: 1 as const, id, ts, type, severity: 'warning' as const, message: 'm', device: 'd', point, data: { value: 1 } });
  for (let i = 0; i < 8; i++) {
    await store.commitEvent('gw-c', ev(`r${i}`, now - 100 + 2 * i, 'alarm.raised', 'flap'));
    await store.commitEvent('gw-c', ev(`c${i}`, now - 99 + 2 * i, 'alarm.cleared', 'flap'));
  }
  await store.commitEvent('gw-c', ev('steady', now - 1000, 'alarm.raised', 'steady'));
  t.equal((await store.alarms({ state: 'all' })).length, 9);
  await store.runRetention(now);
  const left = await store.alarms({ state: 'all' });
  t.equal(left.length, 5, 'five rows per gateway');
  t.ok(left.some((a) => a.point === 'steady' && a.state === 'active'), 'the active alarm is kept, though the oldest');
  t.same(left.filter((a) => a.point === 'flap').map((a) => a.raisedAt), [now - 86, now - 88, now - 90, now - 92], 'the newest cleared ones kept');
});

t.test('events waiting together share one transaction, in arrival order (alarm raise then clear)', async (t) => {
  const now = T0;
  const store = await openStore(t, () => now);
  const ev = (i: number) => ({ v: 1 as const, id: `e${i}`, ts: now - 1000 + i, type: i % 2 ? 'alarm.cleared' : 'alarm.raised', severity: 'warning' as const, message: 'm', device: 'd', point: `p${Math.floor(i / 2)}`, data: { value: i } });
  const stored = await Promise.all(Array.from({ length: 300 }, (_, i) => store.commitEvent('gw', ev(i))));
  t.ok(stored.every(Boolean), 'all 300 stored');
  t.ok(store.eventCounters.groups <= 3, `${store.eventCounters.groups} transactions for 300 events`);
  t.equal((await store.alarms({ state: 'active' })).length, 0, 'each raise applied before its clear');
  t.equal((await store.alarms({ state: 'cleared', limit: 1000 })).length, 150);
  t.same(await Promise.all([store.commitEvent('gw', ev(0)), store.commitEvent('gw', ev(1))]), [false, false], 'replays recognised in a group too');
});
