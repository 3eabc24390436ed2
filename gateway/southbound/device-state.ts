/**
 * What every device driver of the gateway shares, whatever its protocol
 * (Modbus polling, serial-line streams, OPC UA subscriptions): report by
 * exception with deadbands and a heartbeat (a value is reported when it or
 * its quality changes — beyond the point's deadband, if any — and, unchanged,
 * again at least every `heartbeatS` seconds, as SCADA drivers do, so a steady
 * device is told from a dead one), reading quality (good / bad / stale), device
 * health with `device.up` / `device.down` events, and driver faults reported
 * once per code until the device recovers. Drivers decide *when* a device
 * answered or failed; this class decides what goes out.
 */
import { randomBytes } from 'node:crypto';
import { isIocError, type GatewayEvent, type Quality, type Reading, type ReadingValue } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';

/** Health of a device as the gateway sees it. */
export type DeviceHealth = 'up' | 'down' | 'unknown';

/** Creates a short unique id for an event. */
export function eventId(): string {
  return `${Date.now().toString(36)}-${randomBytes(6).toString('base64url')}`;
}

/** Per-device statistics (every driver kind fills the ones that apply). */
export interface DevicePollStats {
  polls: number;
  failures: number;
  overruns: number;
  lastLatencyMs: number;
  health: DeviceHealth;
  /** Requests that got no answer in time (Modbus timeouts), for metrics. */
  timeouts?: number;
  /** Spacing of the last scheduled poll (ms): the interval, a down device's backoff, or the interval stretched under overload (poll-pacer.ts). Polling drivers only. */
  spacingMs?: number;
}

/** A point as far as reporting goes. */
export interface ReportedPoint {
  readonly name: string;
  readonly deadband?: number;
  /** Heartbeat of this point in seconds (0 = only on change); absent = the device's. */
  readonly heartbeatS?: number;
}

/** Heartbeat when the profile names none (s), as in profile.schema.json. */
export const DEFAULT_HEARTBEAT_S = 60;

/** A running device driver, whatever its protocol: what the gateway composes and reports on. */
export interface DeviceDriver {
  readonly id: string;
  readonly health: DeviceHealth;
  readonly stats: DevicePollStats;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Writes one point (engineering value, checked against the profile).
   * @throws IocError GW_ERR_WRITE_REFUSED / GW_ERR_WRITE_VALUE, or the transport's error.
   */
  write?(point: string, value: unknown): Promise<void>;
}

/** Dependencies of {@link DeviceState}. */
export interface DeviceStateDeps {
  deviceId: string;
  logger: Logger;
  onReadings: (readings: Reading[]) => void;
  onEvent: (event: GatewayEvent) => void;
  clock?: () => number;
  /** Where the device is, for messages: "unit 3 on bus rs485-1". */
  where: string;
  /** The profile's heartbeat in seconds (0 = only on change). Default {@link DEFAULT_HEARTBEAT_S}. */
  heartbeatS?: number;
}

interface LastReported {
  value: ReadingValue;
  quality: Quality;
  /** Timestamp of the reading last reported. */
  ts: number;
}

/** Reporting and health bookkeeping of one device. */
export class DeviceState {
  readonly stats: DevicePollStats = { polls: 0, failures: 0, overruns: 0, lastLatencyMs: 0, health: 'unknown', timeouts: 0 };
  private readonly last = new Map<string, LastReported>();
  private readonly faultCodes = new Set<string>();
  private consecutiveFailures = 0;
  readonly clock: () => number;

  constructor(private readonly deps: DeviceStateDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  get health(): DeviceHealth {
    return this.stats.health;
  }

  /** Consecutive failures since the last success. */
  get failuresInARow(): number {
    return this.consecutiveFailures;
  }

  /** Heartbeat of `point` in ms; 0 = none. */
  heartbeatMs(point: ReportedPoint): number {
    return (point.heartbeatS ?? this.deps.heartbeatS ?? DEFAULT_HEARTBEAT_S) * 1000;
  }

  /**
   * Adds a reading to `out` unless it is the same as the last one reported
   * for the point (same quality and equal value, or within the deadband) and
   * that one is younger than the point's heartbeat.
   */
  report(out: Reading[], point: ReportedPoint, value: ReadingValue, quality: Quality, ts: number): void {
    const prev = this.last.get(point.name);
    if (prev && prev.quality === quality) {
      const db = point.deadband ?? 0;
      const same = prev.value === value || (db > 0 && typeof value === 'number' && typeof prev.value === 'number' && Math.abs(value - prev.value) < db);
      if (same) {
        const hb = this.heartbeatMs(point);
        if (hb === 0 || ts - prev.ts < hb) return;
      }
    }
    if (prev) {
      prev.value = value;
      prev.quality = quality;
      prev.ts = ts;
    } else this.last.set(point.name, { value, quality, ts });
    out.push({ device: this.deps.deviceId, point: point.name, ts, value, quality });
  }

  /**
   * Re-reports, with timestamp `now`, every point in `points` whose last
   * report is at least its heartbeat old (same value and quality): for
   * drivers that are not called when nothing changes (OPC UA subscriptions).
   * Points never reported are left alone.
   */
  heartbeat(points: Iterable<ReportedPoint>, out: Reading[], now = this.clock()): void {
    for (const p of points) {
      const prev = this.last.get(p.name);
      const hb = this.heartbeatMs(p);
      if (prev && hb > 0 && now - prev.ts >= hb) this.report(out, p, prev.value, prev.quality, now);
    }
  }

  /** Last value reported for a point (undefined if never). */
  lastValue(name: string): ReadingValue | undefined {
    return this.last.get(name)?.value;
  }

  /** Hands `out` to `onReadings` if it holds anything. */
  flush(out: Reading[]): void {
    if (out.length > 0) this.deps.onReadings(out);
  }

  /** The device answered: resets the failure count; a down (or unknown) device comes up. */
  markGood(): void {
    this.consecutiveFailures = 0;
    if (this.stats.health !== 'up') {
      const was = this.stats.health;
      this.stats.health = 'up';
      if (was === 'down') {
        this.deps.logger.info({ device: this.deps.deviceId }, 'device is answering again');
        this.event('device.up', 'info', `device ${this.deps.deviceId} is answering again`);
      }
    }
    this.faultCodes.clear();
  }

  /**
   * The device did not answer. After `downAfter` failures in a row it goes
   * down: a `device.down` event with the error's code, a warn log line, and
   * every point in `points` reported once as `stale` with its last value.
   * @returns true when this failure took the device down.
   */
  markFailed(err: unknown, points: Iterable<ReportedPoint>, out: Reading[], downAfter = 2): boolean {
    this.stats.failures++;
    this.consecutiveFailures++;
    if (this.stats.health === 'down' || this.consecutiveFailures < downAfter) return false;
    this.stats.health = 'down';
    const code = isIocError(err) ? err.code : 'GW_ERR_MODBUS_IO';
    const message = `device ${this.deps.deviceId} (${this.deps.where}) stopped answering: ${(err as Error)?.message ?? 'unknown error'}`;
    this.deps.logger.warn({ device: this.deps.deviceId, code, failures: this.consecutiveFailures }, 'device down');
    this.event('device.down', 'warning', message, code);
    this.staleAll(points, out);
    return true;
  }

  /** Reports every point as `stale`, keeping its last value, so consumers see what was last known. */
  staleAll(points: Iterable<ReportedPoint>, out: Reading[]): void {
    const ts = this.clock();
    for (const p of points) this.report(out, p, this.last.get(p.name)?.value ?? null, 'stale', ts);
  }

  /**
   * A driver fault (exception response, bad checksum, decode error…): one
   * event and one warn log line per code until the device is good again, so
   * a device that sends garbage every second does not flood the uplink.
   */
  fault(code: string, message: string, data?: Record<string, unknown>): void {
    if (this.faultCodes.has(code)) return;
    this.faultCodes.add(code);
    this.deps.logger.warn({ device: this.deps.deviceId, code, ...data }, message);
    this.event('driver.fault', 'warning', message, code, data);
  }

  /** Emits an event about this device. */
  event(type: string, severity: GatewayEvent['severity'], message: string, code?: string, data?: Record<string, unknown>): void {
    const ev: GatewayEvent = { v: 1, id: eventId(), ts: this.clock(), type, severity, device: this.deps.deviceId, message: message.slice(0, 1024) };
    if (code) ev.code = code;
    if (data) ev.data = data;
    this.deps.onEvent(ev);
  }
}
