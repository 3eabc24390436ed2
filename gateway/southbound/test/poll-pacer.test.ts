/**
 * The poll pacer's control law with an injected clock and outbox counters
 * (the end-to-end behaviour with real parts is test/poll-overload.test.ts):
 * it stretches while readings wait beyond the low-water mark and the drivers
 * append faster than the hub acknowledges, leaves a draining backlog alone
 * while live readings leave the drain room, returns to 1 when the backlog is
 * small, and slowly while the hub is away.
 */
import t from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { OverrunReport, OVERRUN_EVENT_GAP_MS, PollPacer } from '../poll-pacer.js';

/** A pacer over counters the test moves: `run(P, D, ticks)` appends P and acknowledges D readings per second. */
function rig(connected = true): { pacer: PollPacer; run(p: number, d: number, ticks: number): void; ob: { rows: number; appended: number; acked: number }; link: { up: boolean } } {
  let now = 0;
  const ob = { rows: 0, appended: 0, acked: 0 };
  const link = { up: connected };
  const pacer = new PollPacer({ logger: silentLogger(), clock: () => now, lowWater: 1000, sources: { outbox: () => ob, connected: () => link.up } });
  return {
    pacer, ob, link,
    run(p, d, ticks) {
      for (let i = 0; i < ticks; i++) {
        now += 250;
        // The drivers' production shrinks with the stretch, as the pollers' would.
        const appended = Math.round((p / pacer.stretch) / 4);
        const acked = Math.min(ob.rows + appended, Math.round(d / 4));
        ob.appended += appended;
        ob.acked += acked;
        ob.rows += appended - acked;
        pacer.tick();
      }
    },
  };
}

t.test('offer 6x the drain: the stretch settles near 6 and the backlog stops growing', async (t) => {
  const r = rig();
  r.run(60_000, 10_000, 80);
  const s = r.pacer.stats();
  t.ok(s.stretch > 4 && s.stretch < 9, `stretch ${s.stretch.toFixed(2)}`);
  const rows = r.ob.rows;
  r.run(60_000, 10_000, 40);
  t.ok(r.ob.rows <= rows + 10_000, `backlog bounded (${rows} then ${r.ob.rows})`);
});

t.test('a backlog draining with room to spare is not paced; a small backlog is never paced', async (t) => {
  const r = rig();
  r.ob.rows = 500_000; // after an outage
  r.run(5_000, 40_000, 40);
  t.equal(r.pacer.stats().maxStretch, 1, 'live polling at full rate while the backlog drains');
  const q = rig();
  q.run(9_000, 10_000, 40);
  t.equal(q.pacer.stats().maxStretch, 1, 'the drain keeps up: never stretched');
});

t.test('back to 1 when the overload ends; slowly while the hub is away', async (t) => {
  const r = rig();
  r.run(60_000, 10_000, 60);
  const high = r.pacer.stretch;
  t.ok(high > 2);
  r.link.up = false;
  r.run(60_000, 0, 4);
  t.ok(r.pacer.stretch > 1 && r.pacer.stretch < high, `decays while the hub is away (${high.toFixed(2)} -> ${r.pacer.stretch.toFixed(2)})`);
  r.link.up = true;
  r.ob.rows = 0;
  r.run(1_000, 10_000, 80);
  t.equal(r.pacer.stretch, 1, 'on time again');
});

t.test('overrun reports: the first at once, then at most one per minute with the count', async (t) => {
  const rep = new OverrunReport();
  t.equal(rep.note(1000), 1);
  t.equal(rep.note(2000), 0);
  t.equal(rep.note(1000 + OVERRUN_EVENT_GAP_MS - 1), 0);
  t.equal(rep.note(1000 + OVERRUN_EVENT_GAP_MS), 3, 'the next report counts every overrun since the last');
});
