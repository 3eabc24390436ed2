/**
 * The poll pacer's control law with an injected clock and outbox counters
 * (the end-to-end behaviour with real parts is test/poll-overload.test.ts):
 * it stretches while readings wait beyond the low-water mark and the drivers
 * append faster than the hub acknowledges, judges capacity by the best second
 * of the last 10 s so a short stall near saturation costs little, creeps
 * further only while the backlog grows, leaves a draining backlog alone
 * while live readings leave the drain room, returns to 1 when the backlog is
 * small, and slowly while the hub is away.
 */
import t from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { OverrunReport, OVERRUN_EVENT_GAP_MS, PollPacer } from '../poll-pacer.js';

/**
 * A pacer over counters the test moves: `run(P, D, ticks)` appends P and acknowledges up to D readings per
 * second (D may depend on the tick's time in ms, for a drain that varies).
 */
function rig(connected = true, lagTicks = 0, pollMs = 0): { pacer: PollPacer; run(p: number, d: number | ((ms: number) => number), ticks: number): void; ob: { rows: number; appended: number; acked: number }; link: { up: boolean } } {
  let now = 0;
  const ob = { rows: 0, appended: 0, acked: 0 };
  const link = { up: connected };
  const pacer = new PollPacer({ logger: silentLogger(), clock: () => now, lowWater: 1000, sources: { outbox: () => ob, connected: () => link.up } });
  // Stretches in force, newest last: production follows the stretch of `lagTicks` ago (polls already scheduled).
  const seen: number[] = [];
  const due = Array.from({ length: pollMs > 0 ? 100 : 0 }, (_, k) => (k * pollMs) / 100);
  return {
    pacer, ob, link,
    run(p, d, ticks) {
      for (let i = 0; i < ticks; i++) {
        now += 250;
        let appended: number;
        if (pollMs > 0) {
          // 100 pollers, each due pollMs × the stretch in force when it last polled (device-poller.ts), so a
          // new stretch shows only as the polls already spaced by the old one come round.
          appended = 0;
          for (let k = 0; k < due.length; k++) {
            while (due[k]! <= now) {
              appended += (p * pollMs) / 1000 / due.length;
              const spacing = pollMs * pacer.stretch;
              if (pacer.stretch > 1) pacer.countOverrun(spacing);
              due[k] = due[k]! + spacing;
            }
          }
          appended = Math.round(appended);
        } else {
          seen.push(pacer.stretch);
          if (seen.length > lagTicks + 1) seen.shift();
          // The drivers' production shrinks with the stretch (`lagTicks` late), as the pollers' would.
          appended = Math.round((p / seen[0]!) / 4);
          // The pollers report the spacing of their next poll, as device-poller.ts does while stretched.
          if (lagTicks > 0 && pacer.stretch > 1) pacer.countOverrun(lagTicks * 250);
        }
        const acked = Math.min(ob.rows + appended, Math.round((typeof d === 'number' ? d : d(now)) / 4));
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

t.test('offer 6x with production following the stretch late (polls already spaced by the old one): no runaway, no swing', async (t) => {
  for (const lagTicks of [4, 12, 20]) {
    const r = rig(true, lagTicks);
    r.run(60_000, 10_000, 400);
    const s = r.pacer.stats();
    t.ok(s.stretch > 5 && s.stretch < 9, `lag ${lagTicks * 250} ms: settles (x${s.stretch.toFixed(2)})`);
    t.ok(s.maxStretch < 10, `lag ${lagTicks * 250} ms: overshoot bounded (peak x${s.maxStretch.toFixed(2)}, x6.7 needed)`);
    const rows = r.ob.rows;
    r.run(60_000, 10_000, 80);
    t.ok(r.ob.rows <= rows, `lag ${lagTicks * 250} ms: backlog not growing (${rows} then ${r.ob.rows})`);
  }
});

// Polls bunch after each step; with P over one second the stretch swung x4.7..x10.8 at 250 ms polls and reached
// only x3.2 in 15 s at 500 ms. P over a whole poll spacing settles it.
t.test('pollers spaced by the stretch in force at their last poll (100 devices): a sudden 6x overload is caught within seconds, without a runaway', async (t) => {
  for (const pollMs of [250, 500, 1000]) {
    const r = rig(true, 0, pollMs);
    r.run(9_000, 10_000, 40); // below saturation
    t.equal(r.pacer.stats().maxStretch, 1, `${pollMs} ms: not stretched below saturation`);
    r.run(60_000, 10_000, 60); // 15 s of 6x
    t.ok(r.pacer.stretch >= 4, `${pollMs} ms: x${r.pacer.stretch.toFixed(2)} after 15 s (x6.7 needed)`);
    r.run(60_000, 10_000, 240);
    const s = r.pacer.stats();
    t.ok(s.maxStretch < 12 && s.stretch > 5 && s.stretch < 9, `${pollMs} ms: settles (x${s.stretch.toFixed(2)}, peak x${s.maxStretch.toFixed(2)})`);
  }
});

t.test('a 2-s drain stall near saturation does not halve the rate, and the backlog it left drains', async (t) => {
  const r = rig();
  r.run(9_500, 10_000, 60); // 95 % of what the path carries, for 15 s: nothing waits, nothing stretched
  t.equal(r.pacer.stats().maxStretch, 1, 'below saturation: never stretched');
  r.run(9_500, 0, 8); // the hub stalls for 2 s: 19,000 readings pile up
  const after = r.ob.rows;
  t.ok(after > 15_000, `the stall left a backlog (${after})`);
  r.run(9_500, 10_000, 8);
  const peak = r.pacer.stats().maxStretch;
  t.ok(peak < 1.5, `the stretch stayed below x1.5 (x${peak.toFixed(2)}): polling kept more than two thirds of its rate, not half`);
  t.ok(r.pacer.stats().capacity >= 9_500, `capacity still estimated from the best second (${Math.round(r.pacer.stats().capacity)}/s)`);
  r.run(9_500, 10_000, 200);
  t.equal(r.pacer.stretch, 1, 'on time again after the backlog drained');
  t.ok(r.ob.rows < after / 4, `backlog drained (${after} -> ${r.ob.rows})`);
});

t.test('sustained overload over a drain that varies second by second: still settles, backlog bounded', async (t) => {
  const r = rig();
  // 14,000 and 6,000 readings/s alternating: the best second (14,000) overestimates the 10,000 carried on average,
  // so the stretch the estimate gives is too small; it must creep above it while the backlog grows.
  const drain = (ms: number): number => (Math.floor(ms / 1000) % 2 === 0 ? 14_000 : 6_000);
  r.run(60_000, drain, 120);
  const s = r.pacer.stats();
  t.ok(s.stretch > 4 && s.stretch < 12, `stretch ${s.stretch.toFixed(2)}`);
  const rows = r.ob.rows;
  r.run(60_000, drain, 120);
  t.ok(r.ob.rows <= rows + 20_000, `backlog bounded (${rows} then ${r.ob.rows})`);
  r.run(60_000, drain, 480);
  t.ok(r.ob.rows < 40_000, `the backlog left by the ramp drains towards the mark (14,000) while still overloaded (${r.ob.rows})`);
  t.ok(r.pacer.stretch > 5, `still paced (x${r.pacer.stretch.toFixed(2)})`);
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
