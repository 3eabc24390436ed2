/**
 * A serial line-protocol sensor (one per port): frames cut by the profile's
 * framing, checked (NMEA XOR, CRC-16/MODBUS, sum-8), split into fields and
 * reported as readings through the same {@link DeviceState} as Modbus and
 * OPC UA devices.
 *
 * Corrupted frames are counted and dropped: a `driver.fault` event and a warn
 * line at the first one and then at most once a minute with the count, a
 * debug line each. No valid frame for `staleAfterMs` → points stale,
 * `device.down` (GW_ERR_LINE_SILENT). The port vanishing (USB adapter
 * unplugged) → `device.down` with GW_ERR_SERIAL_PORT_GONE at once, then the
 * port is reopened with backoff; the next valid frame brings the device up.
 * A port silent for three stale periods is closed and reopened, since a
 * receive-only port may not notice that its adapter went away.
 * Sensors that must be asked get the profile's `request` every poll interval.
 */
import { IocError, isIocError, type GatewayEvent, type Reading } from '../../../contract/index.js';
import { LineFramer, byteString, decodeLine, printable, type SerialLineProfile } from '../../../device-profiles/index.js';
import { Backoff, type Logger } from '../../../lib/index.js';
import type { DeviceConfig, SerialLineBusConfig } from '../../config.js';
import { DeviceState, type DeviceDriver, type DeviceHealth, type DevicePollStats } from '../device-state.js';
import type { ByteLink, SerialPortFactory } from './byte-link.js';

/** Dependencies of {@link SerialLineDevice}. */
export interface SerialLineDeviceDeps {
  device: DeviceConfig;
  profile: SerialLineProfile;
  bus: SerialLineBusConfig;
  openPort: SerialPortFactory;
  logger: Logger;
  onReadings: (readings: Reading[]) => void;
  onEvent: (event: GatewayEvent) => void;
  clock?: () => number;
  /** Minimum time between two fault events of one code (ms). Default 60 s. */
  faultEveryMs?: number;
}

/** What the line delivered. */
export interface SerialLineStats {
  frames: number;
  good: number;
  checksumErrors: number;
  formatErrors: number;
  badFields: number;
  ignored: number;
  noiseBytes: number;
  overflows: number;
}

/** One serial line-protocol sensor on its own port. */
export class SerialLineDevice implements DeviceDriver {
  readonly lineStats: SerialLineStats = { frames: 0, good: 0, checksumErrors: 0, formatErrors: 0, badFields: 0, ignored: 0, noiseBytes: 0, overflows: 0 };
  private readonly state: DeviceState;
  private readonly framer: LineFramer;
  private readonly backoff: Backoff;
  private readonly clock: () => number;
  private link: ByteLink | null = null;
  private running = false;
  private lastGoodAt = 0;
  private lastRecycleAt = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private reopenTimer: NodeJS.Timeout | null = null;
  private requestTimer: NodeJS.Timeout | null = null;
  private opening: Promise<void> | null = null;
  private readonly faults = new Map<string, { lastAt: number; count: number }>();

  constructor(private readonly deps: SerialLineDeviceDeps) {
    this.clock = deps.clock ?? Date.now;
    this.state = new DeviceState({
      deviceId: deps.device.id, logger: deps.logger, onReadings: deps.onReadings, onEvent: deps.onEvent, clock: this.clock,
      where: `serial line ${deps.bus.path}`, heartbeatS: deps.profile.heartbeatS,
    });
    this.framer = new LineFramer(deps.profile.serialLine.framing, deps.profile.serialLine.maxFrameBytes);
    this.backoff = new Backoff({ minMs: deps.bus.reconnectMinMs, maxMs: deps.bus.reconnectMaxMs });
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

  async start(): Promise<void> {
    this.running = true;
    this.lastGoodAt = this.clock();
    const stale = this.deps.profile.serialLine.staleAfterMs;
    this.watchdog = setInterval(() => this.checkSilence(), Math.max(50, Math.min(1000, stale / 4)));
    this.watchdog.unref();
    this.opening = this.open();
    await this.opening;
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const t of [this.watchdog, this.reopenTimer, this.requestTimer]) if (t) clearTimeout(t);
    this.watchdog = this.reopenTimer = this.requestTimer = null;
    await this.opening?.catch(() => undefined);
    const link = this.link;
    this.link = null;
    await link?.close();
  }

  private async open(): Promise<void> {
    const b = this.deps.bus;
    let link: ByteLink;
    try {
      link = await this.deps.openPort({ path: b.path, baudRate: b.baudRate, parity: b.parity, dataBits: b.dataBits, stopBits: b.stopBits });
    } catch (err) {
      const e = isIocError(err) ? err : new IocError('GW_ERR_SERIAL_OPEN', `cannot open serial port ${b.path}: ${(err as Error).message}`, { cause: err });
      if (this.backoff.attempts === 0 || (this.backoff.attempts + 1) % 10 === 0) {
        this.deps.logger.warn({ device: this.id, path: b.path, code: e.code, attempts: this.backoff.attempts + 1 }, e.message);
      }
      this.goDown(e);
      this.scheduleReopen();
      return;
    }
    if (!this.running) {
      await link.close();
      return;
    }
    this.backoff.reset();
    this.framer.reset();
    this.link = link;
    link.on('data', (d: Buffer) => this.onBytes(d));
    link.once('close', (err: Error | null) => this.onClosed(link, err));
    this.deps.logger.debug({ device: this.id, path: b.path }, 'serial line open');
    this.scheduleRequest(0);
  }

  private scheduleReopen(): void {
    if (!this.running) return;
    const wait = this.backoff.next();
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = null;
      this.opening = this.open();
    }, wait);
  }

  private onClosed(link: ByteLink, err: Error | null): void {
    if (this.link !== link) return;
    this.link = null;
    if (!this.running || err === null) return;
    const e = new IocError('GW_ERR_SERIAL_PORT_GONE', `serial port ${this.deps.bus.path} went away: ${err.message}`, { cause: err, context: { device: this.id, path: this.deps.bus.path } });
    this.deps.logger.warn({ device: this.id, path: this.deps.bus.path, code: e.code }, e.message);
    this.goDown(e);
    this.scheduleReopen();
  }

  /** Writes the profile's `request` every poll interval (query-response sensors). */
  private scheduleRequest(delayMs: number): void {
    const request = this.deps.profile.serialLine.request;
    if (request === undefined || !this.running) return;
    if (this.requestTimer) clearTimeout(this.requestTimer);
    this.requestTimer = setTimeout(() => {
      this.requestTimer = null;
      this.link?.write(byteString(request));
      this.scheduleRequest(this.deps.device.pollIntervalMs ?? this.deps.profile.pollIntervalMs);
    }, delayMs);
  }

  private onBytes(chunk: Buffer): void {
    const before = { noise: this.framer.stats.noiseBytes, overflows: this.framer.stats.overflows };
    const frames = this.framer.push(chunk);
    this.lineStats.noiseBytes += this.framer.stats.noiseBytes - before.noise;
    this.lineStats.overflows += this.framer.stats.overflows - before.overflows;
    if (this.framer.stats.overflows > before.overflows) this.lineFault(new IocError('GW_ERR_LINE_FORMAT', `more than ${this.deps.profile.serialLine.maxFrameBytes} bytes without a frame boundary (wrong baud rate or framing?)`));
    if (frames.length === 0) return;
    const out: Reading[] = [];
    for (const frame of frames) this.onFrame(frame, out);
    this.state.flush(out);
  }

  private onFrame(frame: Buffer, out: Reading[]): void {
    this.lineStats.frames++;
    let values;
    try {
      values = decodeLine(this.deps.profile, frame);
    } catch (err) {
      if (isIocError(err, 'GW_ERR_LINE_CHECKSUM')) this.lineStats.checksumErrors++;
      else this.lineStats.formatErrors++;
      this.state.stats.failures++;
      this.lineFault(err as IocError);
      return;
    }
    if (values.length === 0) {
      this.lineStats.ignored++;
      return;
    }
    const ts = this.clock();
    this.lineStats.good++;
    this.state.stats.polls++;
    this.lastGoodAt = ts;
    this.state.markGood();
    for (const v of values) {
      if (v.error) {
        this.lineStats.badFields++;
        this.lineFault(new IocError('GW_ERR_LINE_FORMAT', `point '${v.point.name}': ${v.error}`, { context: { device: this.id, point: v.point.name, frame: printable(frame) } }));
      }
      this.state.report(out, v.point, v.value, v.quality, ts);
    }
  }

  /** Counts a bad frame; an event and a warn line at most once per `faultEveryMs` per code. */
  private lineFault(err: IocError): void {
    const now = this.clock();
    const f = this.faults.get(err.code) ?? { lastAt: -Infinity, count: 0 };
    f.count++;
    this.faults.set(err.code, f);
    this.deps.logger.debug({ device: this.id, code: err.code, frame: err.context.frame }, err.message);
    if (now - f.lastAt < (this.deps.faultEveryMs ?? 60_000)) return;
    const message = f.count > 1 ? `${err.message} (${f.count} such frames since the last report)` : err.message;
    this.deps.logger.warn({ device: this.id, code: err.code, count: f.count, frame: err.context.frame }, 'bad frame from serial line sensor');
    this.state.event('driver.fault', 'warning', `device ${this.id}: ${message}`, err.code, { count: f.count, ...(err.context.frame ? { frame: err.context.frame } : {}) });
    f.lastAt = now;
    f.count = 0;
  }

  private checkSilence(): void {
    if (!this.running) return;
    const stale = this.deps.profile.serialLine.staleAfterMs;
    const silentFor = this.clock() - Math.max(this.lastGoodAt, this.lastRecycleAt);
    // A port that only ever receives may not notice its adapter is gone (no I/O error without a
    // write): after three silent periods, close and reopen it — a re-enumerated adapter comes back.
    if (this.link && silentFor >= 3 * stale) {
      this.lastRecycleAt = this.clock();
      const link = this.link;
      this.link = null;
      this.deps.logger.info({ device: this.id, path: this.deps.bus.path }, 'serial line silent: reopening the port');
      void link.close().then(() => {
        if (this.running) this.opening = this.open();
      });
    }
    if (this.state.health === 'down') return;
    if (this.clock() - this.lastGoodAt < stale) return;
    this.goDown(new IocError('GW_ERR_LINE_SILENT', `no valid frame for ${stale} ms on ${this.deps.bus.path} (${this.lineStats.checksumErrors} checksum errors, ${this.lineStats.noiseBytes} noise bytes so far)`, { context: { device: this.id } }));
  }

  private goDown(err: IocError): void {
    if (this.state.health === 'down') return;
    const out: Reading[] = [];
    this.state.markFailed(err, this.deps.profile.points, out, 1);
    this.state.flush(out);
  }
}
