/**
 * Poll pacing under overload (issue 14.10): when the devices offer more
 * readings than the gateway can carry to the hub, polling yields to the
 * uplink instead of starving it.
 *
 * Without it, a gateway whose pollers were configured faster than its CPU
 * (or the hub) can carry kept every poll on time: the pollers took the whole
 * event loop, the uplink got what was left, delivery into the hub fell from
 * ~47,600 points/s (250 ms polls, bench:modbus-scale) to 3,700 (83 ms) and
 * the outbox backlog grew by millions.
 *
 * How: one pacer per gateway, shared by every Modbus poller
 * (device-poller.ts). Every `tickMs` it looks at the outbox while the drain
 * is connected: the readings waiting, and over the last second the rate the
 * drivers append (P) and the rate the hub acknowledges (D). It keeps one
 * **stretch** factor (≥ 1) that every poll interval is multiplied by.
 *
 * P is measured over a whole poll spacing (at least a second; the pollers
 * report their spacing through {@link PollPacer.countOverrun}): polls
 * stretched together come round together, and P over one second swings
 * between bunches and gaps.
 *
 * The path's **capacity** C is the best D of any second in the last
 * `capacityWindowMs` (10 s), not the last second's: a drain that stalls for
 * a moment near saturation (the hub busy, the ramp after a connect) does not
 * read as a path that got slower. The low-water mark is the larger of
 * `lowWater` (two uplink windows: what the uplink needs waiting to stay busy)
 * and one second of C:
 *
 * - the backlog is above the mark and grows (it drains slower than 5 % of C a
 *   second, over the last second and over the last 5 s): the stretch steps
 *   so that P becomes 90 % of C, by at most × `increase` (1.5) a step, and
 *   the next step waits until this one shows in P's whole window: at least
 *   `settleMs` (2 s), else the old spacing (polls already spaced by the old
 *   stretch) plus the new one (steps on a P that does not show them yet
 *   compound into a runaway or a swing); where P is
 *   already below 0.9 C but the backlog still grows (a drain that varies
 *   second by second overstates its best second) it creeps, × `creep` (1.02)
 *   per tick;
 * - the backlog is above the mark and drains faster than 15 % of C a second:
 *   the stretch steps down towards P = 0.9 × the mean drain of the last 5 s
 *   (at most ÷ `decrease`, 2, one step per `settleMs`): it rises slower
 *   than it falls; in between it holds;
 * - the backlog is below the mark (the drain has slack): stretch ÷
 *   `release` (1.1) per tick, back to 1.
 *
 * So the backlog settles near the mark: the uplink always has work, the
 * pollers produce about what it can carry. A backlog after an outage
 * drains while live polling goes on at full rate, as long as the live
 * readings leave the drain room (P < 0.9 C). Before, the law compared P
 * with the last second's D and rose × 1.25 per tick whenever the backlog
 * was above the mark, so a 2-s stall alone could multiply the stretch by 6
 * (one bench run: 24,000 of 30,000 points/s reached the hub at 500 ms polls);
 * a set-point law (offer = P × stretch) tried next ran away, the offer
 * being overstated while stretched polls were still scheduled.
 * While the drain is not connected the stretch returns to 1 (halved about
 * every 9 s, so a connection that drops under the overload itself does not
 * bring the overload straight back): polling goes on at full rate into the
 * outbox (DESIGN.md: the outbox is bounded and drops the oldest when full).
 *
 * A poll that cannot start on time (stretched by the pacer, started an
 * interval or more late because the event loop is behind, or longer than its
 * interval) is an **overrun**, as SCADA drivers report scan overruns: counted
 * per device (`ioc_edge_device_poll_overruns_total`) and in total
 * (`ioc_edge_poll_overruns_total`), and reported at most once per device per
 * {@link OVERRUN_EVENT_GAP_MS} as a `driver.fault` event with code
 * `GW_ERR_POLL_OVERRUN` ({@link OverrunReport}). The pacer also samples the
 * event-loop utilisation (perf_hooks) for the event text and the metrics.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Logger } from '../../lib/index.js';

/** What the pacer watches: the readings waiting in the outbox, and whether the drain (uplink or Sparkplug) is connected. */
export interface PollPacerSources {
  /** The outbox's counters: readings waiting, appended and acknowledged since start. */
  outbox(): { rows: number; appended: number; acked: number };
  connected(): boolean;
}

/** Dependencies and settings of {@link PollPacer}. */
export interface PollPacerDeps {
  logger: Logger;
  sources: PollPacerSources;
  /** Control period (ms). Default 250. */
  tickMs?: number;
  /** Backlog (readings) the drain may have waiting before growth stretches polls, at least. Default 16,000 (two windows of 8 batches × 1,000); read at every tick. */
  lowWater?: number | (() => number);
  /** Largest stretch factor. Default 32. */
  maxStretch?: number;
  /** Largest factor of one step while the backlog grows (slower than `decrease`). Default 1.5. */
  increase?: number;
  /** Largest divisor of one step while the backlog drains fast. Default 2. */
  decrease?: number;
  /** Divisor per tick while the backlog is below the mark (back to 1). Default 1.1. */
  release?: number;
  /** Shortest time between two steps by the ratio (ms). Default 2,000; longer where polls are spaced longer (the old spacing plus the new). */
  settleMs?: number;
  /** Factor per tick while the backlog grows though production is already below 0.9 C (C overstated). Default 1.02. */
  creep?: number;
  /** The capacity is the best one-second drain of this window (ms). Default 10,000. */
  capacityWindowMs?: number;
  clock?: () => number;
}

/** What the pacer reports (status, metrics, tests). */
export interface PollPacerStats {
  /** Factor every poll interval is multiplied by now (1 = on time). */
  stretch: number;
  /** Largest stretch since start. */
  maxStretch: number;
  /** Overruns of every poller since start. */
  overruns: number;
  /** Event-loop utilisation over the last tick, 0..1. */
  eventLoopUtilization: number;
  /** Backlog seen at the last tick (readings). */
  backlog: number;
  /** Capacity estimate: the best one-second drain of the capacity window (readings/s; 0 before a second was seen). */
  capacity: number;
}

/** Shortest gap between two overrun events of one device (ms). */
export const OVERRUN_EVENT_GAP_MS = 60_000;

/** The gateway's poll pacer: a service (start/stop) the composition root hands to every Modbus poller. */
export class PollPacer {
  private timer: NodeJS.Timeout | null = null;
  private factor = 1;
  private peak = 1;
  private overrunCount = 0;
  private elu = 0;
  private lastElu: EventLoopUtilization | null = null;
  private lastBacklog = 0;
  /** Outbox samples of the last 30 s, oldest first, with the longest poll spacing reported in each tick. */
  private history: Array<{ t: number; appended: number; acked: number; rows: number; spacing: number }> = [];
  /** One-second drain rates and backlogs of the capacity window, oldest first. */
  private drains: Array<{ t: number; rate: number; rows: number; acked: number }> = [];
  private capacity = 0;
  /** Before this time the last step does not show yet in P's whole window (ms, clock). */
  private settleUntil = Number.NEGATIVE_INFINITY;
  /** Longest poll spacing reported in this tick (ms). */
  private spacingTick = 0;
  private readonly clock: () => number;
  private loggedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly deps: PollPacerDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  async start(): Promise<void> {
    if (this.timer) return;
    this.lastElu = performance.eventLoopUtilization();
    this.timer = setInterval(() => this.tick(), this.deps.tickMs ?? 250);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.factor = 1;
  }

  /** The factor poll intervals are multiplied by now. */
  get stretch(): number {
    return this.factor;
  }

  stats(): PollPacerStats {
    return { stretch: this.factor, maxStretch: this.peak, overruns: this.overrunCount, eventLoopUtilization: this.elu, backlog: this.lastBacklog, capacity: this.capacity };
  }

  /**
   * A poller counts one overrun (for the gateway total), with the spacing of
   * its next poll (ms): a step of the stretch shows in production only once
   * the polls already spaced by the old one have come round.
   */
  countOverrun(spacingMs = 0): void {
    this.overrunCount++;
    if (spacingMs > this.spacingTick) this.spacingTick = spacingMs;
  }

  /** One control step; exposed for tests. */
  tick(): void {
    const now = performance.eventLoopUtilization();
    if (this.lastElu) this.elu = performance.eventLoopUtilization(now, this.lastElu).utilization;
    this.lastElu = now;
    const { sources } = this.deps;
    const ob = sources.outbox();
    const backlog = ob.rows;
    this.lastBacklog = backlog;
    const t = this.clock();
    this.history.push({ t, appended: ob.appended, acked: ob.acked, rows: backlog, spacing: this.spacingTick });
    this.spacingTick = 0;
    while (this.history.length > 1 && this.history[0]!.t < t - 30_000) this.history.shift();
    /** The newest sample at least `ms` old (the oldest if none is). */
    const ago = (ms: number): { t: number; appended: number; acked: number; rows: number } => {
      let pick = this.history[0]!;
      for (const h of this.history) if (h.t <= t - ms) pick = h;
      return pick;
    };
    const before = this.factor;
    const up = this.deps.increase ?? 1.5;
    const down = this.deps.decrease ?? 2;
    const creep = this.deps.creep ?? 1.02;
    if (!sources.connected()) {
      // Hub away: everything goes to the outbox anyway; back to full rate (DESIGN.md), but slowly
      // (halved about every 9 s): an uplink that drops under the very overload must not return to it at once.
      this.factor = Math.max(1, this.factor / 1.02);
      this.history = [];
      this.drains = [];
      this.capacity = 0;
    } else if (this.history[0]!.t <= t - 1000) {
      const old = ago(1000);
      const drained = (ob.acked - old.acked) / (Math.max(1, t - old.t) / 1000);
      // P over a whole poll spacing (at least a second): polls stretched together come round together,
      // so P over one second swings between bunches and gaps.
      let spacing = 0;
      for (const h of this.history) if (h.t > t - 10_000 && h.spacing > spacing) spacing = h.spacing;
      const pw = ago(Math.min(30_000, Math.max(1000, spacing)));
      const produced = (ob.appended - pw.appended) / (Math.max(1, t - pw.t) / 1000);
      // Capacity: the best second of the window, so a short stall does not read as a slower path.
      const windowMs = this.deps.capacityWindowMs ?? 10_000;
      this.drains.push({ t, rate: drained, rows: backlog, acked: ob.acked });
      while (this.drains.length > 0 && this.drains[0]!.t <= t - windowMs) this.drains.shift();
      this.capacity = Math.max(...this.drains.map((d) => d.rate));
      const lw = this.deps.lowWater;
      const low = Math.max(typeof lw === 'function' ? lw() : (lw ?? 16_000), this.capacity);
      if (backlog > low) {
        // P × (old stretch / new stretch) = 0.9 C; nothing drained in 10 s (the hub stalls for good): the largest step.
        const ratio = this.capacity > 0 ? produced / (0.9 * this.capacity) : up;
        // The backlog's trend over the last second and over half the capacity window: at 0.9 C the excess
        // drains at 10 % of capacity a second. It rises only while the backlog grows (drains slower than
        // 5 % of C a second on both scales), slowly, so a stall costs little: by the ratio (at most × up),
        // or × creep where the ratio says enough but the backlog still grows (a drain that varies second
        // by second overstates its best second). It falls while the backlog drains faster than 15 %.
        const pick = this.drains.find((d) => d.t >= t - windowMs / 2) ?? this.drains[0]!;
        const fell = (from: number, ms: number): number => (this.capacity > 0 ? (from - backlog) / Math.max(0.25, ms / 1000) / this.capacity : 0);
        const growing = fell(old.rows, t - old.t) < 0.05 && fell(pick.rows, t - pick.t) < 0.05;
        const draining = fell(old.rows, t - old.t) > 0.15 && fell(pick.rows, t - pick.t) > 0.15;
        // A step by the ratio only once the last one shows in P's whole window (settleUntil): a stretch
        // takes effect a poll later, and steps taken on the old P compound into a runaway or a swing.
        const settled = t >= this.settleUntil;
        const step = (f: number): void => {
          this.factor *= f;
          // Shown once the polls spaced by the old stretch came round and P's window holds only new ones.
          this.settleUntil = t + Math.max(this.deps.settleMs ?? 2000, spacing + Math.max(1000, spacing * f));
        };
        if (growing && ratio > 1) {
          if (settled) step(Math.min(up, ratio));
        } else if (growing) this.factor *= creep;
        else if (draining && settled) {
          // Down towards 0.9 of the mean drain of the last 5 s, not of the best second: where the best
          // second overstates the path, stepping to it would undo what the creep learnt.
          const mean = pick.t < t ? (ob.acked - pick.acked) / ((t - pick.t) / 1000) : this.capacity;
          const fallRatio = mean > 0 ? produced / (0.9 * mean) : 1;
          if (fallRatio < 1) step(Math.max(1 / down, fallRatio));
        }
        this.factor = Math.min(this.deps.maxStretch ?? 32, Math.max(1, this.factor));
      } else this.factor = Math.max(1, this.factor / (this.deps.release ?? 1.1));
    }
    if (this.factor < 1.01) this.factor = 1;
    if (this.factor > this.peak) this.peak = this.factor;
    // One line when stretching begins (at most once a minute: the factor may touch 1 and rise again).
    if (before === 1 && this.factor > 1 && t - this.loggedAt >= OVERRUN_EVENT_GAP_MS) {
      this.loggedAt = t;
      this.deps.logger.warn({ code: 'GW_ERR_POLL_OVERRUN', backlog, eventLoopUtilization: round2(this.elu) }, 'gateway overloaded: the uplink does not keep up with the polls; stretching poll intervals so it keeps its share');
    }
  }
}

/** Rate limit of one device's overrun events: at most one per {@link OVERRUN_EVENT_GAP_MS}, carrying the count since the last one. */
export class OverrunReport {
  private lastAt = Number.NEGATIVE_INFINITY;
  private since = 0;

  /** Notes an overrun at `now`; returns the overruns to report (this one included) when an event is due, else 0. */
  note(now: number): number {
    this.since++;
    if (now - this.lastAt < OVERRUN_EVENT_GAP_MS) return 0;
    this.lastAt = now;
    const n = this.since;
    this.since = 0;
    return n;
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
