/**
 * Polls one Modbus device with its profile: the points are grouped by poll
 * interval, each group read with a coalesced plan (`planReads`), decoded,
 * filtered by deadband (report by exception) and handed to `onReadings`.
 *
 * Health: after `downAfter` consecutive failed polls the device is marked
 * down — a `device.down` event with the error code, and its points reported
 * once as `stale` with their last value — and polled with exponential backoff
 * so a dead device does not hold its bus. The first good poll brings it up
 * (`device.up`). A failure never stops the other devices.
 */
import { randomBytes } from 'node:crypto';
import { isIocError, type GatewayEvent, type Quality, type Reading, type ReadingValue } from '../contract/index.js';
import { decodeResponse, planReads, type DeviceProfile, type ModbusPoint, type ReadRequest } from '../device-profiles/index.js';
import { Backoff, type Logger } from '../lib/index.js';
import type { DeviceConfig } from './config.js';
import type { ModbusTransport } from './drivers/modbus-transport.js';

/** Health of a device as the gateway sees it. */
export type DeviceHealth = 'up' | 'down' | 'unknown';

/** Dependencies of {@link DevicePoller}. */
export interface DevicePollerDeps {
  device: DeviceConfig;
  profile: DeviceProfile;
  transport: ModbusTransport;
  logger: Logger;
  onReadings: (readings: Reading[]) => void;
  onEvent: (event: GatewayEvent) => void;
  clock?: () => number;
  /** Consecutive failed polls before the device is declared down. Default 2. */
  downAfter?: number;
  /** Longest wait between polls of a down device (ms). Default 30 s. */
  maxBackoffMs?: number;
}

interface Group {
  intervalMs: number;
  plan: ReadRequest[];
  timer: NodeJS.Timeout | null;
  busy: boolean;
}

interface LastReported {
  value: ReadingValue;
  quality: Quality;
}

/** Creates a short unique id for an event. */
export function eventId(): string {
  return `${Date.now().toString(36)}-${randomBytes(6).toString('base64url')}`;
}

/** Per-device poll statistics. */
export interface DevicePollStats {
  polls: number;
  failures: number;
  overruns: number;
  lastLatencyMs: number;
  health: DeviceHealth;
}

/** The poll loop of one device. */
export class DevicePoller {
  private readonly groups: Group[] = [];
  private readonly last = new Map<string, LastReported>();
  private readonly backoff: Backoff;
  private readonly clock: () => number;
  private consecutiveFailures = 0;
  private running = false;
  private faultCodes = new Set<string>();
  readonly stats: DevicePollStats = { polls: 0, failures: 0, overruns: 0, lastLatencyMs: 0, health: 'unknown' };

  constructor(private readonly deps: DevicePollerDeps) {
    this.clock = deps.clock ?? Date.now;
    const base = deps.device.pollIntervalMs ?? deps.profile.pollIntervalMs;
    const byInterval = new Map<number, ModbusPoint[]>();
    for (const p of deps.profile.points) {
      const iv = Math.max(base, p.pollIntervalMs ?? base);
      byInterval.set(iv, [...(byInterval.get(iv) ?? []), p]);
    }
    for (const [intervalMs, points] of [...byInterval].sort((a, b) => a[0] - b[0])) {
      this.groups.push({ intervalMs, plan: planReads(points, deps.profile.modbus), timer: null, busy: false });
    }
    this.backoff = new Backoff({ minMs: base, maxMs: Math.max(base, deps.maxBackoffMs ?? 30_000) });
  }

  get id(): string {
    return this.deps.device.id;
  }

  get health(): DeviceHealth {
    return this.stats.health;
  }

  async start(): Promise<void> {
    this.running = true;
    for (const g of this.groups) this.schedule(g, 0);
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const g of this.groups) {
      if (g.timer) clearTimeout(g.timer);
      g.timer = null;
    }
  }

  private schedule(g: Group, delayMs: number): void {
    if (!this.running) return;
    g.timer = setTimeout(() => {
      g.timer = null;
      const started = this.clock();
      void this.pollGroup(g).finally(() => {
        const elapsed = this.clock() - started;
        const interval = this.stats.health === 'down' ? this.backoff.next() : g.intervalMs;
        if (elapsed > interval) this.stats.overruns++;
        this.schedule(g, Math.max(0, interval - elapsed));
      });
    }, delayMs);
  }

  /** Reads one group now. Exposed for "read now" commands and tests. */
  async pollGroup(g: Group = this.groups[0]!): Promise<void> {
    if (g.busy) return;
    g.busy = true;
    const { device, transport, logger } = this.deps;
    const started = this.clock();
    const out: Reading[] = [];
    let failures = 0;
    let answered = 0;
    let lastError: unknown = null;
    try {
      for (const req of g.plan) {
        let data: number[] | boolean[];
        try {
          data = await transport.read(device.unitId, req.table, req.address, req.count);
        } catch (err) {
          failures++;
          lastError = err;
          if (isIocError(err, 'GW_ERR_MODBUS_EXCEPTION')) {
            answered++;
            this.fault(err.code, err.message, req);
          }
          // A timeout or a dead connection fails the rest of this poll at once.
          if (isIocError(err) && err.code !== 'GW_ERR_MODBUS_EXCEPTION') break;
          for (const e of req.points) this.emitIfChanged(out, e.point, null, 'bad', started);
          continue;
        }
        answered++;
        const ts = this.clock();
        try {
          for (const { point, value } of decodeResponse(req, data)) this.emitIfChanged(out, point, value, 'good', ts);
        } catch (err) {
          failures++;
          lastError = err;
          this.fault('GW_ERR_DECODE', (err as Error).message, req);
        }
      }
    } finally {
      g.busy = false;
    }
    this.stats.polls++;
    this.stats.lastLatencyMs = this.clock() - started;
    // Down means "does not answer": an exception response is an answer (the device is alive).
    if (answered === 0 && g.plan.length > 0) this.onFailedPoll(lastError, out);
    else this.onGoodPoll();
    if (out.length > 0) this.deps.onReadings(out);
    if (failures > 0) logger.debug({ device: device.id, failures, err: (lastError as Error)?.message }, 'poll had failures');
  }

  private emitIfChanged(out: Reading[], point: ModbusPoint, value: ReadingValue, quality: Quality, ts: number): void {
    const prev = this.last.get(point.name);
    if (prev && prev.quality === quality) {
      const db = point.deadband ?? 0;
      if (prev.value === value) return;
      if (db > 0 && typeof value === 'number' && typeof prev.value === 'number' && Math.abs(value - prev.value) < db) return;
    }
    this.last.set(point.name, { value, quality });
    out.push({ device: this.deps.device.id, point: point.name, ts, value, quality });
  }

  private onGoodPoll(): void {
    this.consecutiveFailures = 0;
    if (this.stats.health !== 'up') {
      const was = this.stats.health;
      this.stats.health = 'up';
      this.backoff.reset();
      if (was === 'down') {
        this.deps.logger.info({ device: this.id }, 'device is answering again');
        this.event('device.up', 'info', `device ${this.id} is answering again`);
      }
    }
    this.faultCodes.clear();
  }

  private onFailedPoll(err: unknown, out: Reading[]): void {
    this.stats.failures++;
    this.consecutiveFailures++;
    if (this.stats.health === 'down' || this.consecutiveFailures < (this.deps.downAfter ?? 2)) return;
    this.stats.health = 'down';
    const code = isIocError(err) ? err.code : 'GW_ERR_MODBUS_IO';
    const message = `device ${this.id} (unit ${this.deps.device.unitId} on bus ${this.deps.device.bus}) stopped answering: ${(err as Error)?.message ?? 'unknown error'}`;
    this.deps.logger.warn({ device: this.id, code, failures: this.consecutiveFailures }, 'device down');
    this.event('device.down', 'warning', message, code);
    // Its points go stale, keeping their last value so consumers see what was last known.
    const ts = this.clock();
    for (const g of this.groups) {
      for (const req of g.plan) {
        for (const e of req.points) {
          const prev = this.last.get(e.point.name);
          this.emitIfChanged(out, e.point, prev?.value ?? null, 'stale', ts);
        }
      }
    }
  }

  private fault(code: string, message: string, req: ReadRequest): void {
    if (this.faultCodes.has(code)) return;
    this.faultCodes.add(code);
    this.deps.logger.warn({ device: this.id, code, table: req.table, address: req.address, count: req.count }, message);
    this.event('driver.fault', 'warning', message, code, { table: req.table, address: req.address, count: req.count });
  }

  private event(type: string, severity: GatewayEvent['severity'], message: string, code?: string, data?: Record<string, unknown>): void {
    const ev: GatewayEvent = { v: 1, id: eventId(), ts: this.clock(), type, severity, device: this.id, message: message.slice(0, 1024) };
    if (code) ev.code = code;
    if (data) ev.data = data;
    this.deps.onEvent(ev);
  }
}
