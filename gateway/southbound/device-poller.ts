/**
 * Polls one Modbus device with its profile: the points are grouped by poll
 * interval, each group read with a coalesced plan (`planReads`), decoded,
 * filtered by deadband (report by exception) and handed to `onReadings`.
 *
 * Health: after `downAfter` consecutive failed polls the device is marked
 * down — a `device.down` event with the error code, and its points reported
 * once as `stale` with their last value — and polled with exponential backoff
 * and without retries, so a dead device does not hold its bus. The first good
 * poll brings it up (`device.up`). A failure never stops the other devices.
 * Reporting and health live in {@link DeviceState}, shared with the
 * serial-line and OPC UA drivers.
 */
import { IocError, isIocError, type GatewayEvent, type Reading } from '../../contract/index.js';
import { decodeBits, decodeRegisters, encodeValue, extractPoint, isBitTable, planReads, type ModbusPoint, type ModbusProfile, type ReadRequest } from '../../device-profiles/index.js';
import { Backoff, type Logger } from '../../lib/index.js';
import type { DeviceConfig } from '../config.js';
import { DeviceState, type DeviceDriver, type DeviceHealth, type DevicePollStats } from './device-state.js';
import type { ModbusRequestOptions, ModbusTransport, WriteMode } from './drivers/modbus-transport.js';
import { OverrunReport, type PollPacer } from './poll-pacer.js';

export { eventId, type DeviceHealth, type DevicePollStats } from './device-state.js';

/** Default cap of the backoff of a device that stopped answering (ms), as in gateway-config.schema.json. */
export const DEFAULT_BACKOFF_MAX_MS = 4000;

/** The backoff cap of a Modbus device: its own `backoffMaxMs`, else its bus's, else the default. */
export function backoffCap(device: Pick<DeviceConfig, 'backoffMaxMs'>, bus?: { backoffMaxMs?: number }): number {
  return device.backoffMaxMs ?? bus?.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS;
}

/** Dependencies of {@link DevicePoller}. */
export interface DevicePollerDeps {
  device: DeviceConfig;
  profile: ModbusProfile;
  transport: ModbusTransport;
  logger: Logger;
  onReadings: (readings: Reading[]) => void;
  onEvent: (event: GatewayEvent) => void;
  clock?: () => number;
  /** Consecutive failed polls before the device is declared down. Default 2. */
  downAfter?: number;
  /**
   * Longest wait between polls of a down device (ms). Default
   * {@link DEFAULT_BACKOFF_MAX_MS}: a device that answers again is read
   * within about that long (issue 14.3; a fixed 30 s cap took 14.6 s after a
   * 15 s outage). Configured per bus and per device (`backoffMaxMs`).
   */
  maxBackoffMs?: number;
  /**
   * The gateway's poll pacer (poll-pacer.ts): under overload it stretches
   * every poll interval so the uplink keeps its share. Absent: polls keep
   * their intervals (CLI tools, benches of the poller alone).
   */
  pacer?: PollPacer;
}

interface Group {
  intervalMs: number;
  plan: ReadRequest[];
  timer: NodeJS.Timeout | null;
  busy: boolean;
}

/** The poll loop of one Modbus device. */
export class DevicePoller implements DeviceDriver {
  private readonly groups: Group[] = [];
  private readonly backoff: Backoff;
  private readonly backoffCap: number;
  private readonly clock: () => number;
  private readonly state: DeviceState;
  private running = false;
  private readonly overrunReport = new OverrunReport();

  constructor(private readonly deps: DevicePollerDeps) {
    this.clock = deps.clock ?? Date.now;
    const d = deps.device;
    this.state = new DeviceState({
      deviceId: d.id, logger: deps.logger, onReadings: deps.onReadings, onEvent: deps.onEvent, clock: this.clock,
      where: `unit ${d.unitId} on bus ${d.bus}`, heartbeatS: deps.profile.heartbeatS,
    });
    const base = d.pollIntervalMs ?? deps.profile.pollIntervalMs;
    const byInterval = new Map<number, ModbusPoint[]>();
    for (const p of deps.profile.points) {
      const iv = Math.max(base, p.pollIntervalMs ?? base);
      byInterval.set(iv, [...(byInterval.get(iv) ?? []), p]);
    }
    for (const [intervalMs, points] of [...byInterval].sort((a, b) => a[0] - b[0])) {
      this.groups.push({ intervalMs, plan: planReads(points, deps.profile.modbus), timer: null, busy: false });
    }
    this.backoffCap = Math.max(base, deps.maxBackoffMs ?? DEFAULT_BACKOFF_MAX_MS);
    this.backoff = new Backoff({ minMs: base, maxMs: this.backoffCap });
  }

  get id(): string {
    return this.deps.device.id;
  }

  get health(): DeviceHealth {
    return this.state.health;
  }

  /** Longest wait between polls while the device does not answer (ms). */
  get backoffMaxMs(): number {
    return this.backoffCap;
  }

  get stats(): DevicePollStats {
    return this.state.stats;
  }

  async start(): Promise<void> {
    this.running = true;
    this.abort = new AbortController();
    this.options = null;
    for (const g of this.groups) this.schedule(g, 0);
  }

  /** Aborted at stop: this device's requests still queued on its bus leave the queue at once. */
  private abort = new AbortController();

  /** Stops scheduling and waits for polls in flight (each bounded by its transaction timeout), so none delivers readings after stop. */
  async stop(): Promise<void> {
    this.running = false;
    for (const g of this.groups) {
      if (g.timer) clearTimeout(g.timer);
      g.timer = null;
    }
    // Requests of this device queued behind others on a shared line (each waiting out its timeout when the
    // devices are silent) are cancelled; the one on the wire finishes. Stopping 5 silent devices on one bus
    // took 33 s before (fault test); now at most one transaction timeout.
    this.abort.abort();
    await Promise.allSettled([...this.inflight]);
  }

  private readonly inflight = new Set<Promise<void>>();

  /**
   * Arms the next poll of `g` in `delayMs`. After each poll the next one is
   * due one interval after this one started: the group's interval, a down
   * device's backoff, or, under overload, the interval times the pacer's
   * stretch. A poll that could not keep its interval is an overrun
   * ({@link overrun}): stretched by the pacer, started an interval or more
   * late (the event loop was behind), or longer than its interval.
   */
  private schedule(g: Group, delayMs: number): void {
    if (!this.running) return;
    const due = this.clock() + delayMs;
    g.timer = setTimeout(() => {
      g.timer = null;
      const started = this.clock();
      const lateMs = started - due;
      void this.pollGroup(g).finally(() => {
        if (!this.running) return; // stopped meanwhile: a poll cut short by the stop is no overrun
        const elapsed = this.clock() - started;
        const down = this.state.health === 'down';
        const base = down ? this.backoff.next() : g.intervalMs;
        // A down device is already spaced by its backoff; the pacer stretches live polling.
        const stretch = down ? 1 : (this.deps.pacer?.stretch ?? 1);
        const interval = stretch > 1 ? Math.round(base * stretch) : base;
        this.state.stats.spacingMs = interval;
        if (stretch > 1 || elapsed > base || lateMs >= base) this.overrun(g, interval, lateMs, elapsed);
        this.schedule(g, Math.max(0, interval - elapsed));
      });
    }, delayMs);
  }

  /**
   * Counts one overrun of group `g` (now spaced `intervalMs`), and at most
   * once per device per minute reports them: a `driver.fault` event with code GW_ERR_POLL_OVERRUN naming the interval,
   * what it became and why (SCADA drivers report scan overruns the same way),
   * and a warn log line unless the pacer stretched it (the pacer logs that once for the gateway).
   */
  private overrun(g: Group, intervalMs: number, lateMs: number, elapsedMs: number): void {
    this.state.stats.overruns++;
    const pacer = this.deps.pacer;
    pacer?.countOverrun(intervalMs);
    const n = this.overrunReport.note(this.clock());
    if (n === 0) return;
    const d = this.deps.device;
    const p = pacer?.stats();
    const why = p && p.stretch > 1
      ? `the gateway is overloaded (${p.backlog} readings waiting for the hub, event loop ${Math.round(p.eventLoopUtilization * 100)} % busy): polls stretched ×${p.stretch.toFixed(1)} so the uplink keeps its share`
      : elapsedMs > g.intervalMs ? `a poll took ${Math.round(elapsedMs)} ms` : `a poll started ${Math.round(lateMs)} ms late (the gateway's event loop was behind)`;
    const message = `device ${d.id} (unit ${d.unitId} on bus ${d.bus}): polls every ${g.intervalMs} ms overran ${n} time${n === 1 ? '' : 's'} since the last report; next poll in ${Math.round(intervalMs)} ms; ${why}. Lengthen pollIntervalMs or spread the devices over more gateways (GW_ERR_POLL_OVERRUN)`;
    // The log line under overload is the pacer's, once for the gateway; the event names this device.
    if (!p || p.stretch === 1) this.deps.logger.warn({ device: d.id, code: 'GW_ERR_POLL_OVERRUN', overruns: n, intervalMs: g.intervalMs, lateMs: Math.round(lateMs), pollMs: Math.round(elapsedMs) }, 'poll overrun');
    this.state.event('driver.fault', 'warning', message, 'GW_ERR_POLL_OVERRUN', {
      overruns: n, intervalMs: g.intervalMs, stretchedMs: Math.round(intervalMs), lateMs: Math.round(Math.max(0, lateMs)), pollMs: Math.round(elapsedMs),
      ...(p ? { stretch: Math.round(p.stretch * 100) / 100, backlog: p.backlog, eventLoopUtilization: Math.round(p.eventLoopUtilization * 100) / 100 } : {}),
    });
  }

  /** Per-request options: the device's timeout/retries; no retries while it is down. Two fixed objects, not one per poll. */
  private requestOptions(): ModbusRequestOptions {
    const d = this.deps.device;
    if (!this.options) {
      const up: ModbusRequestOptions = { signal: this.abort.signal };
      const down: ModbusRequestOptions = { retries: 0, signal: this.abort.signal };
      if (d.timeoutMs !== undefined) up.timeoutMs = down.timeoutMs = d.timeoutMs;
      if (d.retries !== undefined) up.retries = d.retries;
      this.options = { up: Object.freeze(up), down: Object.freeze(down) };
    }
    return this.state.health === 'down' ? this.options.down : this.options.up;
  }

  private options: { up: ModbusRequestOptions; down: ModbusRequestOptions } | null = null;

  /** Reads one group now. Exposed for "read now" commands and tests. */
  pollGroup(g: Group = this.groups[0]!): Promise<void> {
    const p = this.pollGroupNow(g);
    this.inflight.add(p);
    void p.catch(() => undefined).finally(() => this.inflight.delete(p));
    return p;
  }

  private async pollGroupNow(g: Group): Promise<void> {
    if (g.busy) return;
    g.busy = true;
    const { device, transport, logger } = this.deps;
    const state = this.state;
    const started = this.clock();
    // Created after the first answer, not before the first await: an object that waits out a
    // network round trip can be promoted (or its allocation site pretenured) by V8, and an old
    // array keeps the young readings pushed into it alive until the next full GC.
    let out: Reading[] | null = null;
    let failures = 0;
    let answered = 0;
    let lastError: unknown = null;
    const opts = this.requestOptions();
    try {
      for (const req of g.plan) {
        if (!this.running && answered + failures > 0) break; // stopping: no further requests of this poll
        let data: number[] | boolean[];
        try {
          data = await transport.read(device.unitId, req.table, req.address, req.count, opts);
        } catch (err) {
          failures++;
          lastError = err;
          if (isIocError(err, 'GW_ERR_MODBUS_TIMEOUT')) state.stats.timeouts = (state.stats.timeouts ?? 0) + 1;
          if (isIocError(err, 'GW_ERR_MODBUS_EXCEPTION')) {
            answered++;
            state.fault(err.code, err.message, { table: req.table, address: req.address, count: req.count });
          } else if (isIocError(err) && isGarbled(err.code)) {
            // Something answered, but garbled: say so once, and count it as a failed poll.
            state.fault(err.code, err.message, { table: req.table, address: req.address, count: req.count });
          }
          // A timeout or a dead connection fails the rest of this poll at once.
          if (isIocError(err) && err.code !== 'GW_ERR_MODBUS_EXCEPTION') break;
          out ??= [];
          for (const e of req.points) state.report(out, e.point, null, 'bad', started);
          continue;
        }
        answered++;
        const ts = this.clock();
        out ??= [];
        try {
          // decodeResponse, without its per-point result objects.
          const bits = isBitTable(req.table);
          for (const e of req.points) {
            const slice = extractPoint<number | boolean>(req, data, e);
            state.report(out, e.point, bits ? decodeBits(e.point, slice as boolean[]) : decodeRegisters(e.point, slice as number[]), 'good', ts);
          }
        } catch (err) {
          failures++;
          lastError = err;
          state.fault('GW_ERR_DECODE', (err as Error).message, { table: req.table, address: req.address, count: req.count });
        }
      }
    } finally {
      g.busy = false;
    }
    // Stopped while this poll waited: a request cancelled by the stop says nothing about the device
    // (no 'down', no bad readings); what it did read is still delivered.
    if (!this.running && answered === 0) return;
    state.stats.polls++;
    state.stats.lastLatencyMs = this.clock() - started;
    // Down means "does not answer": an exception response is an answer (the device is alive).
    out ??= [];
    if (answered === 0 && g.plan.length > 0) {
      state.markFailed(lastError, this.allPoints(), out, this.deps.downAfter ?? 2);
    } else {
      if (state.health !== 'up') this.backoff.reset();
      state.markGood();
    }
    state.flush(out);
    if (failures > 0) logger.debug({ device: device.id, failures, err: (lastError as Error)?.message }, 'poll had failures');
  }

  private *allPoints(): Iterable<ModbusPoint> {
    for (const g of this.groups) for (const req of g.plan) for (const e of req.points) yield e.point;
  }

  /**
   * Writes one point: only points marked `writable`, only in the writable
   * tables (coils, holding registers), the value checked by the profile's
   * `encodeValue` (type, min/max, raw range). A `bit` point is a
   * read-modify-write of its register. After the write the point's group is
   * read again so the new value is reported promptly.
   * @throws IocError GW_ERR_WRITE_REFUSED, GW_ERR_WRITE_VALUE, or the transport's error.
   */
  async write(pointName: string, value: unknown): Promise<void> {
    const { device, profile, transport, logger } = this.deps;
    const point = profile.points.find((p) => p.name === pointName);
    const ctx = { device: device.id, point: pointName };
    if (!point) throw new IocError('GW_ERR_WRITE_REFUSED', `device ${device.id} (${profile.model}) has no point '${pointName}'`, { context: ctx });
    if (!point.writable) throw new IocError('GW_ERR_WRITE_REFUSED', `point '${pointName}' of ${profile.model} is not writable`, { context: ctx });
    if (point.table !== 'coil' && point.table !== 'holding') {
      throw new IocError('GW_ERR_WRITE_REFUSED', `point '${pointName}' is in the read-only ${point.table} table`, { context: ctx });
    }
    const opts: ModbusRequestOptions & { mode?: WriteMode } = { ...this.requestOptions(), retries: 0 };
    if (profile.modbus.writeMode) opts.mode = profile.modbus.writeMode;
    let current: number | undefined;
    if (point.bit !== undefined) current = ((await transport.read(device.unitId, 'holding', point.address, 1, this.requestOptions())) as number[])[0];
    let encoded: number[] | boolean;
    try {
      encoded = encodeValue(point, value, current);
    } catch (err) {
      throw new IocError('GW_ERR_WRITE_VALUE', `cannot write ${JSON.stringify(value)} to '${pointName}': ${(err as Error).message}`, { cause: err, context: ctx });
    }
    const values = typeof encoded === 'boolean' ? [encoded] : encoded;
    await transport.write(device.unitId, point.table, point.address, values, opts);
    logger.info({ device: device.id, point: pointName, value }, 'point written');
    const group = this.groups.find((g) => g.plan.some((r) => r.points.some((e) => e.point === point)));
    if (group && this.running) void this.pollGroup(group).catch(() => undefined);
  }
}

/** Codes that mean "bytes came back, but not a usable answer". */
function isGarbled(code: string): boolean {
  return code === 'GW_ERR_MODBUS_CRC' || code === 'GW_ERR_MODBUS_FRAME' || code === 'GW_ERR_MODBUS_WRONG_UNIT';
}
