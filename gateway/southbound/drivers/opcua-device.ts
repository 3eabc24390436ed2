/**
 * One device read over OPC UA: its points are monitored items of the bus's
 * subscription ({@link OpcuaLine} owns the session). Values arrive as data
 * change notifications and go out through the same {@link DeviceState} as
 * Modbus and serial-line readings. OPC UA status codes map to quality:
 * Good → good; "no communication"-like codes (the server's own source is
 * offline: BadNoCommunication, BadOutOfService, BadWaitingForInitialData,
 * UncertainLastUsableValue) → stale; anything else → bad.
 *
 * A subscription says nothing while values do not change, so the device
 * re-reports unchanged values itself at their heartbeat (a timer while the
 * session is up), as the polled drivers do at their polls.
 */
import { IocError, type GatewayEvent, type Quality, type Reading } from '../../../contract/index.js';
import { coerceOpcuaValue, type OpcuaPoint, type OpcuaProfile } from '../../../device-profiles/index.js';
import type { Logger } from '../../../lib/index.js';
import type { DeviceConfig } from '../../config.js';
import { DeviceState, type DeviceDriver, type DeviceHealth, type DevicePollStats } from '../device-state.js';

/** Dependencies of {@link OpcuaDevice}. */
export interface OpcuaDeviceDeps {
  device: DeviceConfig;
  profile: OpcuaProfile;
  logger: Logger;
  onReadings: (readings: Reading[]) => void;
  onEvent: (event: GatewayEvent) => void;
  clock?: () => number;
}

/** What the device needs from its line to write. */
export interface OpcuaWriter {
  writeValue(device: OpcuaDevice, point: OpcuaPoint, raw: number | boolean | string): Promise<void>;
}

const STALE_STATUS = /NoCommunication|OutOfService|WaitingForInitialData|LastUsableValue|LastKnownValue/;

/** Integer ranges of the OPC UA integer types we write. */
const INT_RANGES: Partial<Record<OpcuaPoint['type'], readonly [number, number]>> = {
  int16: [-0x8000, 0x7fff], uint16: [0, 0xffff], int32: [-0x8000_0000, 0x7fff_ffff], uint32: [0, 0xffff_ffff],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], uint64: [0, Number.MAX_SAFE_INTEGER],
};

/** Quality of an OPC UA status code name (e.g. "Good", "BadNoCommunication"). */
export function qualityOf(statusName: string): Quality {
  if (statusName.startsWith('Good')) return 'good';
  return STALE_STATUS.test(statusName) ? 'stale' : 'bad';
}

/**
 * Checks a value for an OPC UA write and converts it to the raw (unscaled)
 * value: bool points take booleans, string points strings, numeric points
 * finite numbers within min/max; raw = (value − offset) / scale, integral and
 * in range for integer types.
 * @throws IocError GW_ERR_WRITE_VALUE
 */
export function opcuaRawValue(point: OpcuaPoint, value: unknown): number | boolean | string {
  const bad = (why: string): IocError => new IocError('GW_ERR_WRITE_VALUE', `cannot write ${JSON.stringify(value)} to '${point.name}': ${why}`, { context: { point: point.name } });
  if (point.type === 'bool') {
    if (typeof value !== 'boolean') throw bad('expected a boolean');
    return value;
  }
  if (point.type === 'string') {
    if (typeof value !== 'string') throw bad('expected a string');
    return value;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad('expected a finite number');
  if (point.min !== undefined && value < point.min) throw bad(`below min ${point.min}`);
  if (point.max !== undefined && value > point.max) throw bad(`above max ${point.max}`);
  const raw = (value - point.offset) / point.scale;
  const range = INT_RANGES[point.type];
  if (range) {
    const int = Math.round(raw);
    if (int < range[0] || int > range[1]) throw bad(`raw ${raw} is outside the ${point.type} range`);
    return int;
  }
  return raw;
}

/** A device whose points are monitored items on its bus's OPC UA session. */
export class OpcuaDevice implements DeviceDriver {
  readonly state: DeviceState;
  private writer: OpcuaWriter | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;

  constructor(readonly deps: OpcuaDeviceDeps) {
    this.state = new DeviceState({
      deviceId: deps.device.id, logger: deps.logger, onReadings: deps.onReadings, onEvent: deps.onEvent, clock: deps.clock,
      where: `OPC UA bus ${deps.device.bus}`, heartbeatS: deps.profile.heartbeatS,
    });
  }

  get id(): string {
    return this.deps.device.id;
  }

  get health(): DeviceHealth {
    return this.state.health;
  }

  get stats(): DevicePollStats {
    return this.state.stats;
  }

  get points(): readonly OpcuaPoint[] {
    return this.deps.profile.points;
  }

  /** The line attaches itself (the line's lifecycle drives the device). */
  attach(writer: OpcuaWriter): void {
    this.writer = writer;
  }

  async start(): Promise<void> {}

  /** Stops the heartbeat timer (the line owns the session). Idempotent. */
  async stop(): Promise<void> {
    this.stopHeartbeat();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  /** Checks the heartbeats a few times per shortest heartbeat (between 0.1 and 5 s). */
  private startHeartbeat(): void {
    this.stopHeartbeat();
    const beats = this.points.map((p) => this.state.heartbeatMs(p)).filter((ms) => ms > 0);
    if (beats.length === 0) return;
    const tick = Math.min(5000, Math.max(100, Math.min(...beats) / 4));
    this.heartbeatTimer = setInterval(() => {
      const out: Reading[] = [];
      this.state.heartbeat(this.points, out);
      this.state.flush(out);
    }, tick);
    this.heartbeatTimer.unref();
  }

  /** A data change notification for `point` (raw variant value, status code name, source time). */
  onValue(point: OpcuaPoint, raw: unknown, statusName: string, ts: number | null): void {
    const out: Reading[] = [];
    let quality = qualityOf(statusName);
    let value = null;
    try {
      value = coerceOpcuaValue(point, raw);
    } catch (err) {
      quality = 'bad';
      this.state.fault('GW_ERR_DECODE', (err as Error).message, { point: point.name });
    }
    if (quality !== 'good' && statusName !== 'Good') {
      this.state.fault('GW_ERR_OPCUA_NODE', `point '${point.name}' of ${this.id}: server reports ${statusName}`, { point: point.name, status: statusName });
      if (quality === 'stale') value = this.state.lastValue(point.name) ?? null;
    }
    this.state.stats.polls++;
    this.state.report(out, point, value, quality, ts ?? this.state.clock());
    this.state.flush(out);
  }

  /** The session is up and the device's items are monitored. */
  onConnected(): void {
    this.state.markGood();
    this.startHeartbeat();
  }

  /** A monitored item could not be created (unknown node, bad filter…): the point is bad. */
  onItemError(point: OpcuaPoint, err: IocError): void {
    this.state.fault(err.code, err.message, { point: point.name, nodeId: point.nodeId });
    const out: Reading[] = [];
    this.state.report(out, point, null, 'bad', this.state.clock());
    this.state.flush(out);
  }

  /** The session is gone (or never came): down with the line's error code, points stale. */
  onDisconnected(err: IocError): void {
    this.stopHeartbeat();
    if (this.state.health === 'down') return;
    const out: Reading[] = [];
    this.state.markFailed(err, this.points, out, 1);
    this.state.flush(out);
  }

  /**
   * Writes one point (OPC UA Write service, Part 4 §5.10.4): writable points
   * only, value checked against type and min/max.
   * @throws IocError GW_ERR_WRITE_REFUSED, GW_ERR_WRITE_VALUE, GW_ERR_OPCUA_SESSION or GW_ERR_OPCUA_NODE.
   */
  async write(pointName: string, value: unknown): Promise<void> {
    const point = this.points.find((p) => p.name === pointName);
    const ctx = { device: this.id, point: pointName };
    if (!point) throw new IocError('GW_ERR_WRITE_REFUSED', `device ${this.id} (${this.deps.profile.model}) has no point '${pointName}'`, { context: ctx });
    if (!point.writable) throw new IocError('GW_ERR_WRITE_REFUSED', `point '${pointName}' of ${this.deps.profile.model} is not writable`, { context: ctx });
    const raw = opcuaRawValue(point, value);
    if (!this.writer) throw new IocError('GW_ERR_OPCUA_SESSION', `device ${this.id} has no OPC UA line`, { context: ctx });
    await this.writer.writeValue(this, point, raw);
    this.deps.logger.info({ device: this.id, point: pointName, value }, 'point written');
  }
}
