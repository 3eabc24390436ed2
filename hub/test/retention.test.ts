/**
 * Retention of the hub store (issue 13 item 4): raw readings by age and by
 * size, rolled up first into min/max/sum/count buckets that answer history
 * exactly as the raw readings did; rollup levels handing over to coarser
 * ones; readings stamped in the future (stored by an older version) deleted
 * and `latest` recomputed; events and cleared alarms; deletes in chunks that
 * let commits through; the API across the raw-retention boundary. Real
 * SQLite files, an injected clock.
 */
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import type { Reading } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import { resolveDataLimits, type DataLimitOptions } from '../data-limits.js';
import { startHub } from '../index.js';
import { usedBytes } from '../store/sqlite/readings-retention.js';
import { HubStore } from '../store/sqlite/hub-store.js';
import { api, tempDir, TEST_SCRYPT } from './support.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 20); // the store's "now" at the first pass

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

/** Readings of point `point` every `stepMs` over [from, to), a sine-ish value, with some non-numeric and bad ones mixed in. */
function series(point: string, from: number, to: number, stepMs: number): Reading[] {
  const out: Reading[] = [];
  for (let ts = from, i = 0; ts < to; ts += stepMs, i++) {
    const value = i % 97 === 0 ? 'text' : i % 89 === 0 ? i % 2 === 0 : Math.round(Math.sin(i / 50) * 1000) / 10 + (i % 7);
    out.push({ device: 'd', point, ts, value, quality: i % 83 === 0 ? 'bad' : 'good' });
  }
  return out;
}

async function commitAll(store: HubStore, gateway: string, readings: Reading[], seq0 = 1): Promise<number> {
  let seq = seq0;
  for (let i = 0; i < readings.length; i += 5000) await store.commitBatch({ gateway, epoch: 'e', seq: seq++, historical: true, readings: readings.slice(i, i + 5000) });
  return seq;
}

function sameBuckets(t: Test, got: Array<{ ts: number; count: number; min: number; max: number; avg: number }>, want: typeof got, label: string): void {
  t.equal(got.length, want.length, `${label}: as many buckets`);
  const bad = got.filter((g, i) => {
    const w = want[i]!;
    return g.ts !== w.ts || g.count !== w.count || g.min !== w.min || g.max !== w.max || Math.abs(g.avg - w.avg) > 1e-9 * Math.max(1, Math.abs(w.avg));
  });
  t.same(bad.slice(0, 3), [], `${label}: every bucket equal (count, min, max exactly; avg to 1e-9)`);
}

t.test('raw readings past their age are rolled up, and history answers as it did before; levels hand over to coarser ones', async (t) => {
  let now = T0;
  const store = await openStore(t, () => now);
  const readings = series('level', T0 - 4 * DAY, T0, 10_000);
  await commitAll(store, 'gw', readings);
  const numeric = readings.filter((r) => r.quality === 'good' && typeof r.value !== 'string').length;
  const q = { gateway: 'gw', device: 'd', point: 'level', from: T0 - 4 * DAY, to: T0 };
  const hourly = await store.downsample({ ...q, bucketMs: HOUR });
  const tenMin = await store.downsample({ ...q, from: T0 - 3 * DAY, bucketMs: 10 * MIN });
  const minutes = await store.downsample({ ...q, from: T0 - 2 * DAY - 3 * HOUR, to: T0 - 2 * DAY - 1, bucketMs: MIN });
  const odd = await store.downsample({ ...q, bucketMs: 7 * HOUR });

  const r = await store.runRetention(now);
  t.equal(r?.age, readings.filter((x) => x.ts < T0 - DAY).length, 'raw readings older than a day rolled up and deleted');
  t.equal(store.dropped.age, r?.age, 'counted as age');
  t.equal((await store.readingCounts('gw')).total, readings.length - r!.age, 'the last day stays raw');
  t.equal((await store.history({ ...q, limit: 100_000 })).length, readings.length - r!.age, 'raw history holds the last day only');
  sameBuckets(t, await store.downsample({ ...q, bucketMs: HOUR }), hourly, 'hourly buckets across the boundary');
  sameBuckets(t, await store.downsample({ ...q, from: T0 - 3 * DAY, bucketMs: 10 * MIN }), tenMin, '10-minute buckets from the 1-minute level (which keeps 3 days)');
  sameBuckets(t, await store.downsample({ ...q, from: T0 - 2 * DAY - 3 * HOUR, to: T0 - 2 * DAY - 1, bucketMs: MIN }), minutes, '1-minute buckets two days back');
  sameBuckets(t, await store.downsample({ ...q, bucketMs: 7 * HOUR }), odd, 'buckets of a width no level has (7 h, aligned to hours)');
  t.same(await store.runRetention(now), { age: 0, size: 0, future: 0, rollupAge: 0, events: 0, alarms: 0, epochs: 0 }, 'a second pass finds nothing');

  // Five days on: the 1-minute level is gone before now − 3 days (rounded to the hour); the hourly level answers.
  now = T0 + 5 * DAY;
  await store.runRetention(now);
  sameBuckets(t, await store.downsample({ ...q, bucketMs: HOUR }), hourly, 'hourly buckets after the 1-minute level expired');
  const total = (b: Array<{ count: number }>) => b.reduce((n, x) => n + x.count, 0);
  t.equal(total(await store.downsample({ ...q, bucketMs: MIN })), numeric, 'minute buckets fall back to the hourly level: no reading lost or counted twice');
  t.equal(store.dropped.rollup_age, 0, 'nothing has left the last level yet');

  // Past the last level: gone, and counted. (A reading of another point first: the newest row is never deleted, see retireRaw.)
  now = T0 + 12 * DAY;
  await store.commitBatch({ gateway: 'gw', epoch: 'e', seq: 1000, historical: false, readings: [{ device: 'd', point: 'other', ts: now, value: 1, quality: 'good' }] });
  await store.runRetention(now);
  t.same(await store.downsample({ ...q, bucketMs: HOUR }), [], 'beyond the last level nothing is kept');
  // The newest reading (T0 − 10 s) was still raw: past every level's boundary, it went straight out as age.
  t.equal(store.dropped.rollup_age, numeric - 1, 'the readings that left the last level are counted');
});

t.test('size cap: the oldest raw readings are rolled up and deleted until the store is under the cap', async (t) => {
  const now = T0;
  const store = await openStore(t, () => now, { ...LIMITS, retention: { ...LIMITS.retention, rawMs: 3 * DAY, maxBytes: 1_000_000 } });
  const readings = [...series('a', T0 - 2 * DAY, T0, 3000), ...series('b', T0 - 2 * DAY, T0, 3000)];
  await commitAll(store, 'gw', readings);
  const before = await store.downsample({ gateway: 'gw', device: 'd', point: 'a', from: T0 - 2 * DAY, to: T0, bucketMs: HOUR });
  t.ok((await usedBytes((store as unknown as { db: import('../../lib/index.js').SqliteDb }).db)) > 1_000_000, 'over the cap before');
  const r = await store.runRetention(now);
  t.ok(r!.size > 0, `${r!.size} readings retired for size`);
  t.equal(r!.age, 0, 'none was old enough for age');
  t.ok((await usedBytes((store as unknown as { db: import('../../lib/index.js').SqliteDb }).db)) <= 1_000_000, 'under the cap after');
  const left = await store.history({ gateway: 'gw', device: 'd', point: 'a', from: 0, to: T0, limit: 100_000 });
  t.ok(left.length > 0 && left[0]!.ts > T0 - 2 * DAY, 'the oldest went first, the newest are still raw');
  sameBuckets(t, await store.downsample({ gateway: 'gw', device: 'd', point: 'a', from: T0 - 2 * DAY, to: T0, bucketMs: HOUR }), before, 'history unchanged');
  t.equal(store.dropped.size, r!.size, 'counted as size');
});

t.test('retention runs in chunks: a commit issued during a pass is committed before the pass ends', async (t) => {
  const now = T0;
  const store = await openStore(t, () => now, { ...LIMITS, retention: { ...LIMITS.retention, chunkRows: 200 } });
  await commitAll(store, 'gw', series('level', T0 - 3 * DAY, T0 - 2 * DAY, 10_000));
  let passDone = false;
  const pass = store.runRetention(now).then((r) => {
    passDone = true;
    return r;
  });
  const committed = await store.commitBatch({ gateway: 'gw', epoch: 'live', seq: 1, historical: false, readings: [{ device: 'd', point: 'live', ts: now, value: 1, quality: 'good' }] });
  t.equal(committed, 'stored');
  t.notOk(passDone, 'the commit did not wait for the whole pass');
  t.ok((await pass)!.age > 8000, 'the pass went on and finished');

  // Stopping the store ends a pass at its next chunk instead of waiting for all of it.
  await commitAll(store, 'gw2', series('level', T0 - 3 * DAY, T0 - 2 * DAY, 10_000));
  const long = store.runRetention(now);
  await store.commitBatch({ gateway: 'gw2', epoch: 'live', seq: 1, historical: false, readings: [{ device: 'd', point: 'live', ts: now, value: 1, quality: 'good' }] });
  await store.stop();
  t.equal(await long, null, 'the pass ended early');
  const reopened = await openStore(t, () => now, LIMITS, (store as unknown as { deps: { file: string } }).deps.file);
  t.ok((await reopened.readingCounts('gw2')).total > 1, 'old readings left for the next pass');
});

t.test('a reading stored in the future (before the hub refused them) is deleted and no longer pins latest', async (t) => {
  const now = T0;
  const store = await openStore(t, () => now);
  await store.commitBatch({ gateway: 'gw', epoch: 'e', seq: 1, historical: false, readings: [
    { device: 'd', point: 'p', ts: now - MIN, value: 1, quality: 'good' },
    { device: 'd', point: 'p', ts: now + 365 * DAY, value: 666, quality: 'good' },
  ] });
  await store.commitBatch({ gateway: 'gw', epoch: 'e', seq: 2, historical: false, readings: [{ device: 'd', point: 'p', ts: now, value: 2, quality: 'good' }] });
  t.match(await store.latest({ gateway: 'gw' }), [{ value: 666 }], 'pinned by the future reading');
  // A later reading of another point keeps the future one from being the newest row (never deleted).
  await store.commitBatch({ gateway: 'gw', epoch: 'e', seq: 3, historical: false, readings: [{ device: 'd', point: 'q', ts: now, value: 0, quality: 'good' }] });
  const r = await store.runRetention(now);
  t.equal(r?.future, 1);
  t.match(await store.latest({ gateway: 'gw', point: 'p' }), [{ value: 2, ts: now }], 'latest is the newest reading in the window again');
  t.equal(store.dropped.future, 1, 'counted as future');
});

t.test('events by age and per gateway; cleared alarms by age, active ones kept', async (t) => {
  const now = T0;
  const store = await openStore(t, () => now);
  const ev = (id: string, ts: number, extra: Record<string, unknown> = {}) => ({ v: 1 as const, id, ts, type: 'device.down', severity: 'warning' as const, message: 'm', ...extra });
  for (let i = 0; i < 8; i++) await store.commitEvent('gw-a', ev(`a${i}`, now - i * HOUR));
  await store.commitEvent('gw-b', ev('old', now - 6 * DAY));
  await store.commitEvent('gw-b', ev('new', now));
  await store.commitEvent('gw-b', ev('r1', now - 20 * DAY, { type: 'alarm.raised', device: 'd', point: 'old-cleared', data: { value: 1 } }));
  await store.commitEvent('gw-b', ev('c1', now - 19 * DAY, { type: 'alarm.cleared', device: 'd', point: 'old-cleared', data: { value: 0 } }));
  await store.commitEvent('gw-b', ev('r2', now - 20 * DAY, { type: 'alarm.raised', device: 'd', point: 'old-active', data: { value: 1 } }));
  const r = await store.runRetention(now);
  t.same((await store.events({ gateway: 'gw-a', limit: 100 })).map((e) => e.id), ['a0', 'a1', 'a2', 'a3', 'a4'], 'the newest 5 per gateway');
  t.same((await store.events({ gateway: 'gw-b', limit: 100 })).map((e) => e.id), ['new'], 'older than 5 days deleted');
  t.same((await store.alarms({ state: 'all' })).map((a) => a.point), ['old-active'], 'an active alarm is kept however old; a cleared one goes with its age');
  t.equal(r?.events, 3 + 4);
  t.equal(r?.alarms, 1);
});

t.test('the API across the raw-retention boundary: buckets from raw and rollups, raw history of the last day', async (t) => {
  let now = T0;
  const dataDir = path.join(tempDir(t, 'ioc-edge-ret-'), 'hub');
  const hub = await startHub({ dataDir, logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'required', scrypt: TEST_SCRYPT }, data: LIMITS, dataClock: () => now });
  t.teardown(() => hub.stop());
  const token = (await hub.identity.createApiToken({ name: 'v', role: 'viewer' }, { actor: 'test' })).token;
  const readings = series('level', T0 - 2 * DAY, T0, 60_000);
  await commitAll(hub.store as HubStore, 'gw', readings);
  const url = `/api/v1/readings/buckets?gateway=gw&device=d&point=level&from=${T0 - 2 * DAY}&to=${T0}&bucketMs=${HOUR}`;
  const before = (await api(hub, 'GET', url, { token })).body.items;
  now = T0 + HOUR;
  await hub.store.runRetention();
  const after = await api(hub, 'GET', url, { token });
  t.equal(after.status, 200);
  sameBuckets(t, after.body.items, before, 'the same answer with half the range rolled up');
  const raw = (await api(hub, 'GET', `/api/v1/readings?gateway=gw&device=d&point=level&from=${T0 - 2 * DAY}&to=${T0}&limit=100000`, { token })).body.items;
  t.ok(raw.length > 0 && raw.every((r: { ts: number }) => r.ts >= T0 + HOUR - DAY), 'raw history holds only the last day');
  const text = await (await fetch(`http://127.0.0.1:${hub.httpPort}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
  t.match(text, new RegExp(`ioc_edge_hub_readings_dropped_total\\{reason="age"\\} ${readings.filter((r) => r.ts < T0 + HOUR - DAY).length}\n`), 'the metric counts what retention deleted');
});
