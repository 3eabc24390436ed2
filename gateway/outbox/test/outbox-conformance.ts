/**
 * The abstract conformance suite of the {@link Outbox} interface (after
 * MQTT.js's `abstractStoreTest`): every implementation runs it through
 * `outboxConformance(t, name, build)`. `build(dir, limits)` must return a
 * fresh, unstarted outbox over the state in `dir`; calling it twice with the
 * same `dir` must reopen the same state for durable implementations.
 */
import type { Test } from 'tap';
import { once } from 'node:events';
import { validateTelemetryBatch, type GatewayEvent, type Reading } from '../../../contract/index.js';
import type { Outbox, OutboxLimits } from '../outbox.js';

/** Builds an outbox over `dir`. */
export type BuildOutbox = (dir: string, opts?: { limits?: Partial<OutboxLimits>; clock?: () => number; backlogThreshold?: number; liveShare?: number }) => Outbox;

const T0 = Date.now();
const reading = (i: number, ts = T0 + i): Reading => ({ device: 'dev-1', point: `p${i % 7}`, ts, value: i, quality: 'good' });
const event = (id: string): GatewayEvent => ({ v: 1, id, ts: 1, type: 'device.down', severity: 'warning', message: `event ${id}` });

/** Runs the suite. `durable` implementations also run the restart cases. */
export function outboxConformance(t: Test, name: string, build: BuildOutbox, caps: { durable: boolean }): void {
  t.test(`${name}: conformance`, async (t) => {
    const open = async (dir: string, opts?: Parameters<BuildOutbox>[1]): Promise<Outbox> => {
      const o = build(dir, opts);
      await o.start();
      t.teardown(() => o.stop().catch(() => undefined));
      return o;
    };

    t.test('readings come back in batches, in order, as valid contract payloads', async (t) => {
      const o = await open(t.testdir());
      o.append(Array.from({ length: 25 }, (_, i) => reading(i)));
      await o.flush();
      t.equal(o.stats().rows, 25);
      const b1 = await o.nextBatch(10);
      const b2 = await o.nextBatch(10);
      const b3 = await o.nextBatch(10);
      t.equal(await o.nextBatch(10), null, 'nothing more to reserve');
      t.same([b1!.count, b2!.count, b3!.count], [10, 10, 5]);
      t.ok(b1!.seq < b2!.seq && b2!.seq < b3!.seq, 'seq strictly increases');
      const all = [b1, b2, b3].flatMap((b) => validateTelemetryBatch(JSON.parse(b!.payload)).readings);
      t.same(all.map((r) => r.value), Array.from({ length: 25 }, (_, i) => i), 'every reading once, in order');
      const parsed = validateTelemetryBatch(JSON.parse(b1!.payload));
      t.equal(parsed.seq, b1!.seq);
      t.equal(parsed.epoch, o.epoch);
    });

    t.test('ack removes exactly its batch and is idempotent', async (t) => {
      const o = await open(t.testdir());
      o.append(Array.from({ length: 20 }, (_, i) => reading(i)));
      await o.flush();
      const b1 = (await o.nextBatch(8))!;
      const b2 = (await o.nextBatch(8))!;
      await o.ack(b2.seq);
      t.equal(o.stats().rows, 12, 'out-of-order ack removes only that batch');
      await o.ack(b2.seq);
      t.equal(o.stats().rows, 12, 'a second ack changes nothing');
      await o.ack(b1.seq);
      t.equal(o.stats().rows, 4);
      t.equal(o.stats().acked, 16);
      const b3 = (await o.nextBatch(100))!;
      t.equal(b3.count, 4);
      await o.ack(b3.seq);
      t.equal(o.stats().rows, 0);
      t.equal(o.stats().oldestTs, null, 'empty outbox has no oldest reading');
    });

    t.test('readings appended after a full drain are found (ids never reused)', async (t) => {
      const o = await open(t.testdir());
      o.append([reading(1), reading(2)]);
      await o.flush();
      const b = (await o.nextBatch(10))!;
      await o.ack(b.seq);
      o.append([reading(3)]);
      await o.flush();
      const next = await o.nextBatch(10);
      t.equal(next?.count, 1);
    });

    t.test('readable fires when new data is durable', async (t) => {
      const o = await open(t.testdir());
      const readable = once(o, 'readable');
      o.append([reading(1)]);
      await readable;
      t.equal(o.stats().rows, 1);
    });

    t.test('events: stored, handed out once, acknowledged; duplicates ignored', async (t) => {
      const o = await open(t.testdir());
      await o.appendEvent(event('a'));
      await o.appendEvent(event('b'));
      await o.appendEvent(event('a'));
      t.equal(o.stats().events, 2);
      const first = await o.nextEvents(10);
      t.same(first.map((e) => e.id), ['a', 'b']);
      t.same(await o.nextEvents(10), [], 'events in flight are not handed out twice');
      await o.ackEvent('a');
      await o.ackEvent('a');
      t.equal(o.stats().events, 1);
    });

    t.test('row budget drops the oldest readings, counted, with an overflow signal', async (t) => {
      const o = await open(t.testdir(), { limits: { maxRows: 1000 } });
      const overflow = once(o, 'overflow');
      o.append(Array.from({ length: 1500 }, (_, i) => reading(i)));
      await o.flush();
      const [info] = (await overflow) as [{ dropped: number; reason: string }];
      t.equal(info.reason, 'maxRows');
      const s = o.stats();
      t.ok(s.rows <= 1000, `rows ${s.rows} within the budget`);
      t.equal(s.dropped, 1500 - s.rows, 'every dropped reading counted');
      const b = (await o.nextBatch(1))!;
      t.equal(validateTelemetryBatch(JSON.parse(b.payload)).readings[0]!.value, s.dropped, 'the oldest were dropped, the newest kept');
    });

    t.test('age budget drops readings older than maxAge', async (t) => {
      let now = T0 + 100_000;
      const o = await open(t.testdir(), { limits: { maxAgeMs: 60_000 }, clock: () => now });
      o.append([reading(1, now - 120_000), reading(2, now - 1000)]);
      await o.flush();
      t.equal(o.stats().rows, 1);
      t.equal(o.stats().dropped, 1);
      now += 1;
    });

    t.test('a backlog drains as historical batches while live readings keep flowing', async (t) => {
      const o = await open(t.testdir(), { backlogThreshold: 100, liveShare: 0.5 });
      o.append(Array.from({ length: 500 }, (_, i) => reading(i)));
      await o.flush();
      const first = (await o.nextBatch(50))!;
      t.equal(first.historical, true, 'the backlog is sent as historical');
      o.append(Array.from({ length: 10 }, (_, i) => reading(1000 + i)));
      await o.flush();
      t.ok(o.stats().historical > 0, 'stats count the historical backlog');
      const seen: Array<{ historical: boolean; values: number[] }> = [{ historical: true, values: JSON.parse(first.payload).readings.map((r: Reading) => r.value) }];
      for (;;) {
        const b = await o.nextBatch(50);
        if (!b) break;
        seen.push({ historical: b.historical, values: JSON.parse(b.payload).readings.map((r: Reading) => r.value) });
        await o.ack(b.seq);
      }
      const liveAt = seen.findIndex((b) => !b.historical);
      t.ok(liveAt > 0 && liveAt <= 2, `live readings sent in batch ${liveAt}, not after the whole backlog (${seen.length} batches)`);
      t.same(seen[liveAt]!.values, Array.from({ length: 10 }, (_, i) => 1000 + i));
      t.ok(seen.filter((b) => b.historical).every((b) => b.values.every((v) => v < 500)), 'only backlog readings are marked historical');
      const all = seen.flatMap((b) => b.values).sort((a, b) => a - b);
      t.same(all, [...Array.from({ length: 500 }, (_, i) => i), ...Array.from({ length: 10 }, (_, i) => 1000 + i)], 'every reading exactly once');
      o.append([reading(2000)]);
      await o.flush();
      t.equal((await o.nextBatch(50))!.historical, false, 'after the backlog, batches are live again');
      t.equal(o.stats().historical, 0);
    });

    t.test('event budget keeps warnings and alarms over info events', async (t) => {
      const o = await open(t.testdir(), { limits: { maxEvents: 5 } });
      for (const [id, sev] of [['i1', 'info'], ['w1', 'warning'], ['i2', 'info'], ['c1', 'critical'], ['i3', 'info'], ['w2', 'warning'], ['w3', 'warning']] as const) {
        await o.appendEvent({ ...event(id), severity: sev });
      }
      t.equal(o.stats().events, 5);
      t.same((await o.nextEvents(10)).map((e) => e.id), ['w1', 'c1', 'i3', 'w2', 'w3'], 'oldest info events dropped first');
    });

    if (caps.durable) {
      t.test('a backlog split and the historical flag survive a restart', async (t) => {
        const dir = t.testdir();
        const o1 = build(dir, { backlogThreshold: 10 });
        await o1.start();
        o1.append(Array.from({ length: 30 }, (_, i) => reading(i)));
        await o1.flush();
        const b1 = (await o1.nextBatch(5))!;
        t.equal(b1.historical, true);
        await o1.stop();
        const o2 = await open(dir, { backlogThreshold: 10 });
        const again = (await o2.nextBatch(5))!;
        t.equal(again.seq, b1.seq);
        t.equal(again.historical, true, 'resent with its flag');
        const next = (await o2.nextBatch(5))!;
        t.equal(next.historical, true, 'still draining the backlog');
        t.same(JSON.parse(next.payload).readings.map((r: Reading) => r.value), [5, 6, 7, 8, 9]);
      });

      t.test('an unacknowledged batch is offered again after a restart, with the same seq', async (t) => {
        const dir = t.testdir();
        const o1 = build(dir);
        await o1.start();
        o1.append(Array.from({ length: 10 }, (_, i) => reading(i)));
        await o1.flush();
        const b1 = (await o1.nextBatch(6))!;
        const epoch = o1.epoch;
        await o1.stop();

        const o2 = await open(dir);
        t.equal(o2.epoch, epoch, 'epoch persists');
        t.equal(o2.stats().rows, 10);
        const again = (await o2.nextBatch(100))!;
        t.equal(again.seq, b1.seq, 'same seq: the hub will drop it if it already has it');
        t.same(JSON.parse(again.payload).readings, JSON.parse(b1.payload).readings, 'same readings');
        const rest = (await o2.nextBatch(100))!;
        t.ok(rest.seq > b1.seq);
        t.equal(rest.count, 4);
      });

      t.test('seq is never reused, even when everything was acknowledged before a restart', async (t) => {
        const dir = t.testdir();
        const o1 = build(dir);
        await o1.start();
        o1.append([reading(1)]);
        await o1.flush();
        const b = (await o1.nextBatch(10))!;
        await o1.ack(b.seq);
        await o1.stop();
        const o2 = await open(dir);
        o2.append([reading(2)]);
        await o2.flush();
        t.ok((await o2.nextBatch(10))!.seq > b.seq);
      });

      t.test('buffered readings and events survive a clean stop', async (t) => {
        const dir = t.testdir();
        const o1 = build(dir);
        await o1.start();
        o1.append([reading(1), reading(2)]); // still in the write buffer
        await o1.appendEvent(event('x'));
        await o1.stop();
        const o2 = await open(dir);
        t.equal(o2.stats().rows, 2);
        t.same((await o2.nextEvents(5)).map((e) => e.id), ['x']);
      });
    }

    t.test('append after stop is refused with a clear error', async (t) => {
      const o = build(t.testdir());
      await o.start();
      await o.stop();
      t.throws(() => o.append([reading(1)]), { code: 'GW_ERR_OUTBOX_CLOSED' });
    });
  });
}
