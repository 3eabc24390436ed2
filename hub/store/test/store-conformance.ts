/**
 * The abstract conformance suite of the hub's storage port
 * ({@link TelemetryPort}, hub/store/port.ts), after MQTT.js's
 * `abstractStoreTest` and the gateway's outbox suite: every backend runs it
 * through `storeConformance(t, name, fixture)`.
 *
 * `fixture.location(t)` gives a fresh place for a store (a folder, a
 * PostgreSQL schema) that is cleaned up with `t`; `fixture.open(loc)` an
 * unstarted store over it. Opening the same location again must give the
 * same state: the suite stops and reopens stores to test durability.
 */
import type { Test } from 'tap';
import type { GatewayEvent, Reading } from '../../../contract/index.js';
import type { BatchToCommit, TelemetryPort } from '../port.js';

/** Settings the suite varies. */
export interface StoreOpenOptions {
  clock?: () => number;
  /** The hub's points-per-gateway cap (default: the hub's default). */
  maxSeriesPerGateway?: number;
}

/** How a backend is built for the suite. */
export interface StoreFixture {
  location(t: Test): Promise<string>;
  open(loc: string, opts?: StoreOpenOptions): TelemetryPort;
}

const NOW = Date.now();
const reading = (device: string, point: string, ts: number, value: Reading['value'], quality: Reading['quality'] = 'good'): Reading => ({ device, point, ts, value, quality });
const batch = (gateway: string, epoch: string, seq: number, readings: Reading[], historical = false): BatchToCommit => ({ gateway, epoch, seq, historical, readings });
const event = (id: string, ts: number, more: Partial<GatewayEvent> = {}): GatewayEvent => ({ v: 1, id, ts, type: 'device.down', severity: 'warning', message: `event ${id}`, ...more });

/** Runs the suite against one backend. */
export function storeConformance(t: Test, name: string, fx: StoreFixture): void {
  t.test(`${name}: storage port conformance`, async (t) => {
    const open = async (t: Test, loc?: string, opts?: StoreOpenOptions): Promise<{ store: TelemetryPort; loc: string }> => {
      const where = loc ?? (await fx.location(t));
      const store = fx.open(where, opts);
      await store.start();
      t.teardown(() => store.stop().catch(() => undefined));
      return { store, loc: where };
    };

    t.test('exactly-once: replays in the same group and in later groups are dropped', async (t) => {
      const { store } = await open(t);
      const b = (gw: string, epoch: string, seq: number) => batch(gw, epoch, seq, [reading('d1', 'p', NOW + seq + (epoch === 'f' ? 100 : 0), seq)]);
      const results = await Promise.all([b('g1', 'e', 1), b('g1', 'e', 1), b('g1', 'e', 2), b('g2', 'e', 1), b('g1', 'f', 1)].map((x) => store.commitBatch(x)));
      t.same(results, ['stored', 'duplicate', 'stored', 'stored', 'stored'], 'the second copy of a key in one group is a duplicate; epochs are separate');
      t.equal(await store.commitBatch(b('g1', 'e', 2)), 'duplicate', 'a later replay is a duplicate');
      t.equal(await store.commitBatch(b('g1', 'e', 3)), 'stored');
      t.same(await store.readingCounts('g1'), { total: 4, distinct: 4 });
      t.same(await store.readingCounts('g2'), { total: 1, distinct: 1 });
      t.same((await store.listGateways()).map((g) => g.id), ['g1', 'g2'], 'gateways seen by their telemetry');
      t.equal(store.counters.duplicates, 2);
      t.equal(store.counters.batches, 5);
    });

    t.test('exactly-once under shuffled replays from many gateways, and after a restart', async (t) => {
      const loc = await fx.location(t);
      let { store } = await open(t, loc);
      const all: BatchToCommit[] = [];
      for (let g = 0; g < 8; g++) for (let s = 1; s <= 25; s++) all.push(batch(`gw${g}`, 'e1', s, Array.from({ length: 4 }, (_, i) => reading('d', `p${i}`, NOW + s * 10 + i, s * 100 + i))));
      let x = 7;
      const rnd = (n: number): number => (x = (x * 1103515245 + 12345) % 2 ** 31) % n;
      // Three waves; each batch is offered 1-3 times in random order, waves overlapping the previous one.
      for (let wave = 0; wave < 3; wave++) {
        const offered = all.flatMap((b) => Array.from({ length: 1 + rnd(3) }, () => b)).sort(() => rnd(3) - 1);
        await Promise.all(offered.map((b) => store.commitBatch(b)));
      }
      for (let g = 0; g < 8; g++) t.same(await store.readingCounts(`gw${g}`), { total: 100, distinct: 100 }, `gw${g}: every reading once`);
      await store.stop();
      ({ store } = await open(t, loc));
      t.same(await Promise.all(all.slice(0, 30).map((b) => store.commitBatch(b))), all.slice(0, 30).map(() => 'duplicate'), 'replays after a restart are recognised');
      t.equal(await store.commitBatch(batch('gw0', 'e1', 26, [reading('d', 'p0', NOW + 999, 1)])), 'stored', 'the next seq is stored');
      t.equal(await store.commitBatch(batch('gw0', 'e2', 1, [reading('d', 'p0', NOW + 1000, 1)])), 'stored', 'a new epoch starts afresh');
      t.same(await store.readingCounts('gw0'), { total: 102, distinct: 102 });
    });

    t.test('a failed commit leaves nothing behind and does not record its seq', async (t) => {
      const { store } = await open(t);
      t.equal(await store.commitBatch(batch('g', 'e', 1, [reading('d', 'p', NOW, 1)])), 'stored');
      const bad = batch('g', 'e', 2, [reading('d', 'p', NOW + 1, 2), reading('d', 'p', Number.NaN, 3)]);
      await t.rejects(store.commitBatch(bad), { code: 'HUB_ERR_COMMIT' }, 'a reading that cannot be stored fails the commit');
      t.same(await store.readingCounts('g'), { total: 1, distinct: 1 }, 'nothing of the failed batch is stored');
      t.equal(await store.commitBatch(batch('g', 'e', 2, [reading('d', 'p', NOW + 1, 2)])), 'stored', 'its seq was not recorded as committed');
    });

    t.test('every value comes back as sent: doubles bit for bit, -0, subnormals, strings, booleans, null, quality', async (t) => {
      const { store } = await open(t);
      const bits = new Float64Array(1);
      const words = new Uint32Array(bits.buffer);
      let s = 12345;
      const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
      const values: Array<number | string | boolean | null> = [
        -0, 0, 0.1, 0.30000000000000004, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 2 ** 53, -(2 ** 53), 1e20,
        4.172717575328313, 6.989597459611955, 1.560258998805319e104, 'text', '', "it's \"quoted\" \\ {braces}, commas", 'nul\u0000inside', '\u0000', '[1,2]', '12.5', 'NULL', true, false, null,
      ];
      while (values.length < 1500) {
        words[0] = rnd();
        words[1] = rnd();
        if (Number.isFinite(bits[0])) values.push(bits[0]!);
      }
      const qualities: Reading['quality'][] = ['good', 'bad', 'stale'];
      const rs = values.map((value, i) => reading('d', 'p', NOW + i, value, qualities[i % 3]));
      t.equal(await store.commitBatch(batch('g', 'e', 1, rs)), 'stored');
      const back = await store.history({ gateway: 'g', device: 'd', point: 'p', from: 0, to: NOW + 1e9, limit: 10_000 });
      t.equal(back.length, values.length);
      const wrong = back.filter((r, i) => !Object.is(r.value, values[i]) || r.quality !== qualities[i % 3] || r.ts !== NOW + i);
      t.same(wrong.slice(0, 5), [], 'no value, quality or time changed on the way');
      t.same(back[0], { gateway: 'g', device: 'd', point: 'p', ts: NOW, value: -0, quality: 'good' });
    });

    t.test('latest: the newest reading per point, filtered, in key order; an older reading never replaces it', async (t) => {
      const { store } = await open(t);
      await store.commitBatch(batch('g1', 'e', 1, [reading('d1', 'a', NOW + 10, 1), reading('d1', 'a', NOW + 20, 2), reading('d1', 'b', NOW + 5, 'x'), reading('d2', 'a', NOW, true)]));
      await store.commitBatch(batch('g1', 'e', 2, [reading('d1', 'a', NOW + 15, 99)], true)); // older backlog reading
      await store.commitBatch(batch('g2', 'e', 1, [reading('d1', 'a', NOW, null, 'bad'), reading('D1', 'a', NOW, 5)]));
      const all = await store.latest({});
      t.same(all.map((r) => [r.gateway, r.device, r.point, r.value]), [
        ['g1', 'd1', 'a', 2], ['g1', 'd1', 'b', 'x'], ['g1', 'd2', 'a', true], ['g2', 'D1', 'a', 5], ['g2', 'd1', 'a', null],
      ], 'newest per point, ordered by gateway, device, point (byte order)');
      t.same((await store.latest({ gateway: 'g1', device: 'd1' })).map((r) => r.point), ['a', 'b']);
      t.same((await store.latest({ point: 'a', limit: 2 })).map((r) => `${r.gateway}/${r.device}`), ['g1/d1', 'g1/d2']);
      t.same((await store.latest({ gateway: 'g2', device: 'd1' }))[0]?.quality, 'bad');
      await store.commitBatch(batch('g1', 'e', 3, [reading('d1', 'a', NOW + 20, 3)]));
      t.equal((await store.latest({ gateway: 'g1', device: 'd1', point: 'a' }))[0]?.value, 3, 'a reading of the same time replaces it (the later commit wins)');
      t.same(await store.latest({ gateway: 'nobody' }), []);
    });

    t.test('history: one point between from and to inclusive, oldest first, limited', async (t) => {
      const { store } = await open(t);
      await store.commitBatch(batch('g', 'e', 1, Array.from({ length: 50 }, (_, i) => reading('d', 'p', NOW + i * 1000, i))));
      await store.commitBatch(batch('g', 'e', 2, [reading('d', 'q', NOW, 7), reading('d2', 'p', NOW, 8)]));
      const h = await store.history({ gateway: 'g', device: 'd', point: 'p', from: NOW + 10_000, to: NOW + 20_000, limit: 100 });
      t.same(h.map((r) => r.value), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], 'bounds inclusive, only that point');
      t.same((await store.history({ gateway: 'g', device: 'd', point: 'p', from: 0, to: NOW * 2, limit: 3 })).map((r) => r.value), [0, 1, 2]);
      t.same(await store.history({ gateway: 'g', device: 'd', point: 'nope', from: 0, to: NOW * 2, limit: 3 }), []);
    });

    t.test('downsample: min/max/avg/count of good numeric readings per bucket; empty buckets left out', async (t) => {
      const { store } = await open(t);
      const from = NOW - (NOW % 60_000);
      const rs = [
        reading('d', 'p', from + 1000, 1), reading('d', 'p', from + 2000, 3), reading('d', 'p', from + 3000, 100, 'bad'), reading('d', 'p', from + 4000, 'str'),
        reading('d', 'p', from + 5000, true), reading('d', 'p', from + 125_000, -2.5), reading('d', 'p', from + 130_000, null),
      ];
      await store.commitBatch(batch('g', 'e', 1, rs));
      const b = await store.downsample({ gateway: 'g', device: 'd', point: 'p', from, to: from + 180_000, bucketMs: 60_000 });
      t.same(b, [
        { ts: from, count: 3, min: 1, max: 3, avg: 5 / 3 },
        { ts: from + 120_000, count: 1, min: -2.5, max: -2.5, avg: -2.5 },
      ]);
    });

    t.test('events: stored once per (gateway, id), newest first, filtered by gateway, device, type prefix, severity, since', async (t) => {
      const { store } = await open(t);
      t.equal(await store.commitEvent('g1', event('a', NOW + 1, { device: 'd1', data: { n: 1, s: 'x' } })), true);
      t.equal(await store.commitEvent('g1', event('a', NOW + 1)), false, 'a replayed event is not stored again');
      t.equal(await store.commitEvent('g2', event('a', NOW + 2, { type: 'outbox.overflow', severity: 'critical', code: 'GW_ERR_OUTBOX_FULL' })), true, 'ids are per gateway');
      await store.commitEvent('g1', event('b', NOW + 3, { type: 'device_up', severity: 'info' }));
      await store.commitEvent('g1', event('c', NOW + 4, { type: 'deviceXup', severity: 'info' }));
      t.same((await store.events({ limit: 10 })).map((e) => `${e.gateway}/${e.id}`), ['g1/c', 'g1/b', 'g2/a', 'g1/a']);
      const a = (await store.events({ gateway: 'g1', device: 'd1', limit: 10 }))[0]!;
      t.match(a, { gateway: 'g1', id: 'a', ts: NOW + 1, type: 'device.down', severity: 'warning', device: 'd1', data: { n: 1, s: 'x' } });
      t.type(a.receivedAt, 'number');
      t.same((await store.events({ type: 'device_', limit: 10 })).map((e) => e.id), ['b'], "'_' in a type prefix is literal");
      t.same((await store.events({ type: 'outbox.', severity: 'critical', limit: 10 })).map((e) => e.gateway), ['g2']);
      t.same((await store.events({ since: NOW + 3, limit: 10 })).map((e) => e.id), ['c', 'b']);
      t.same((await store.events({ limit: 1 })).length, 1);
    });

    t.test('alarms: raised, refreshed, cleared, late raises, acknowledgement, counts', async (t) => {
      const { store } = await open(t);
      const alarm = (id: string, type: 'alarm.raised' | 'alarm.cleared', ts: number, point = 'level', severity: GatewayEvent['severity'] = 'critical') =>
        event(id, ts, { type, severity, device: 'd1', point, data: { limit: 'high', threshold: 5, value: type === 'alarm.raised' ? 7 : 4 } });
      await store.commitEvent('g', alarm('r1', 'alarm.raised', NOW));
      await store.commitEvent('g', alarm('r1', 'alarm.raised', NOW)); // replay: no second alarm
      await store.commitEvent('g', alarm('r2', 'alarm.raised', NOW + 5)); // refresh while active
      await store.commitEvent('g', alarm('x1', 'alarm.raised', NOW, 'flow', 'warning'));
      let list = await store.alarms({ state: 'active' });
      t.equal(list.length, 2, 'one active alarm per point');
      t.same(await store.activeAlarmCounts().then((r) => r.sort((a, b) => a.severity.localeCompare(b.severity))), [
        { gateway: 'g', severity: 'critical', count: 1 }, { gateway: 'g', severity: 'warning', count: 1 },
      ]);
      await store.commitEvent('g', alarm('c1', 'alarm.cleared', NOW + 10));
      list = await store.alarms({ state: 'all', gateway: 'g' });
      const level = list.find((a) => a.point === 'level')!;
      t.match(level, { state: 'cleared', raisedAt: NOW, clearedAt: NOW + 10, limit: 'high', threshold: 5, value: 7, clearValue: 4, severity: 'critical' });
      // A raise older than the newest clear arrives late: recorded as already cleared.
      await store.commitEvent('g', alarm('r0', 'alarm.raised', NOW - 5));
      t.equal((await store.alarms({ state: 'active' })).length, 1, 'the late raise did not open an active alarm');
      t.equal((await store.alarms({ state: 'cleared' })).length, 2);
      t.equal(await store.ackAlarm(level.id, 'alice'), true);
      t.equal(await store.ackAlarm(level.id, 'bob'), true, 'a second acknowledgement is accepted');
      t.match((await store.alarms({ state: 'all', id: level.id }))[0], { ackedBy: 'alice' }, 'and the first is kept');
      t.equal(await store.ackAlarm(999_999, 'alice'), false, 'no such alarm');
      t.same((await store.alarms({ state: 'all', since: NOW + 1 })).length, 0, 'since filters on the raise time');
    });

    t.test('quarantine: kept with its reason, newest first', async (t) => {
      const { store } = await open(t);
      await store.quarantine({ gateway: 'g', topic: 'ioc/v1/gw/g/telemetry', code: 'CONTRACT_ERR_BAD_JSON', error: 'not JSON', payload: Buffer.from('{') });
      await store.quarantine({ gateway: null, topic: 'x', code: 'CONTRACT_ERR_INVALID_PAYLOAD', error: 'bad', payload: Buffer.alloc(10) });
      const q = await store.quarantined(10);
      t.match(q, [{ gateway: null, topic: 'x', code: 'CONTRACT_ERR_INVALID_PAYLOAD' }, { gateway: 'g', code: 'CONTRACT_ERR_BAD_JSON', error: 'not JSON' }]);
      t.equal((await store.quarantined(1)).length, 1);
    });

    t.test('gateway state: online, status document, last seen; reopened stores start with everyone offline', async (t) => {
      const loc = await fx.location(t);
      let { store } = await open(t, loc);
      await store.setGatewayState('g1', { online: true });
      await store.setGatewayState('g1', { status: { v: 1, state: 'online', ts: NOW, version: '1.2.3' } as never });
      await store.setGatewayState('g2', { online: false });
      let gws = await store.listGateways();
      t.match(gws, [{ id: 'g1', online: true, status: { version: '1.2.3' } }, { id: 'g2', online: false, status: null }]);
      await store.setGatewayState('g1', { online: false });
      t.match((await store.listGateways())[0], { online: false, status: { version: '1.2.3' } }, 'a connection change keeps the status');
      await store.setGatewayState('g1', { online: true });
      await store.stop();
      ({ store } = await open(t, loc));
      gws = await store.listGateways();
      t.same(gws.map((g) => [g.id, g.online]), [['g1', false], ['g2', false]], 'nobody is connected to a hub that just started');
      t.ok(gws[0]!.firstSeen > 0 && gws[0]!.lastSeen >= gws[0]!.firstSeen);
    });

    t.test('points per gateway are capped: readings of new points past the cap are refused and counted, the rest stored', async (t) => {
      const { store } = await open(t, undefined, { maxSeriesPerGateway: 3 });
      const five = Array.from({ length: 5 }, (_, i) => reading('d', `p${i}`, NOW, i));
      t.equal(await store.commitBatch(batch('g', 'e', 1, five)), 'stored');
      t.same(await store.readingCounts('g'), { total: 3, distinct: 3 }, 'three points made, two refused');
      t.equal(store.dropped.series_limit, 2);
      t.equal(await store.commitBatch(batch('g', 'e', 2, five.map((r) => ({ ...r, ts: NOW + 1 })))), 'stored');
      t.same(await store.readingCounts('g'), { total: 6, distinct: 6 }, 'known points still take readings');
      t.equal(store.dropped.series_limit, 4);
      t.equal(await store.commitBatch(batch('g2', 'e', 1, five)), 'stored');
      t.same(await store.readingCounts('g2'), { total: 3, distinct: 3 }, 'the cap is per gateway');
      t.equal(await store.commitBatch(batch('g', 'e', 2, five)), 'duplicate', 'a batch with refused readings is still recorded as committed');
    });

    t.test('retention: raw readings older than the limit go, newer ones stay; old events go', async (t) => {
      const { store } = await open(t);
      const day = 86_400_000;
      const rawMs = store.limits.retention.rawMs;
      const at = Math.floor(NOW / day) * day + day / 2; // noon: far from day edges
      await store.commitBatch(batch('g', 'e', 1, [reading('d', 'p', at - rawMs - 3 * day, 1), reading('d', 'p', at - rawMs + 2 * day, 2), reading('d', 'p', at - 1000, 3)], true));
      await store.commitEvent('g', event('old', at - 400 * day));
      await store.commitEvent('g', event('new', at - 1000));
      const r = await store.runRetention(at);
      t.ok(r, 'the pass ran');
      t.ok(r!.age >= 1, 'readings removed for their age are counted');
      const left = await store.history({ gateway: 'g', device: 'd', point: 'p', from: 0, to: at, limit: 10 });
      t.same(left.map((x) => x.value), [2, 3], 'the reading days older than the limit is gone, the others stay');
      t.same((await store.events({ gateway: 'g', limit: 10 })).map((e) => e.id), ['new'], 'events past their keep time go');
      t.equal((await store.latest({ gateway: 'g' }))[0]?.value, 3, 'latest is kept');
    });

    t.test('retention keeps history in rollups: the buckets answer is the same before and after the raw readings go', async (t) => {
      const { store } = await open(t);
      const day = 86_400_000;
      const hour = 3_600_000;
      const at = Math.floor(NOW / day) * day + day / 2;
      const old = Math.floor((at - store.limits.retention.rawMs) / day) * day - 3 * day; // a whole day past the raw keep
      const rs: Reading[] = [];
      for (let i = 0; i < 48; i++) rs.push(reading('d', 'p', old + i * 1_800_000 + 1234, (i % 7) + 0.5)); // half-hourly for a day
      rs.push(reading('d', 'p', old + 5 * hour + 7, 1e6, 'bad'), reading('d', 'p', old + 6 * hour + 7, 'text')); // not in any aggregate
      rs.push(reading('d', 'b', old + hour, true), reading('d', 'b', old + hour + 60_000, false)); // a boolean point, as 1 / 0
      await store.commitBatch(batch('g', 'e', 1, rs, true));
      await store.commitBatch(batch('g', 'e', 2, [reading('d', 'p', at - 1000, 9)])); // a recent one (SQLite keeps its newest row)
      const q = { gateway: 'g', device: 'd', point: 'p', from: old, to: old + day - 1, bucketMs: hour };
      const before = await store.downsample(q);
      const dayBefore = await store.downsample({ ...q, bucketMs: day });
      const boolBefore = await store.downsample({ ...q, point: 'b' });
      t.equal(before.length, 24, 'an hourly bucket each');
      t.same(dayBefore.map((b) => b.count), [48], 'the good numeric readings only');
      const r = await store.runRetention(at);
      t.ok(r && r.age >= 52, 'the raw readings went');
      t.same(await store.history({ gateway: 'g', device: 'd', point: 'p', from: old, to: old + day, limit: 100 }), [], 'no raw reading of that day is left');
      t.same(await store.downsample(q), before, 'hourly buckets from the rollups equal those from the raw readings');
      t.same(await store.downsample({ ...q, bucketMs: day }), dayBefore, 'a day bucket too');
      t.same(await store.downsample({ ...q, point: 'b' }), boolBefore, 'booleans as 1 and 0');
      t.same((await store.downsample({ ...q, from: at - 2 * day, to: at, bucketMs: 2 * day })).map((b) => [b.count, b.max]), [[1, 9]], 'the recent raw reading alone there: nothing counted twice or elsewhere');
    });
  });
}
