/**
 * Simulated serial line-protocol sensors matching the shipped profiles
 * `water-level-radar` (streams NMEA-style sentences with an XOR checksum)
 * and `rain-gauge-tipping` (answers ENQ with an STX…ETX telegram with a sum-8
 * checksum). Checksums are computed here, independently of the gateway.
 * Each can go silent, corrupt every Nth frame (one character flipped, so the
 * checksum fails) and throw noise bytes on the line. Attach them with
 * serial-adapters.ts (mock binding or a socat pty).
 */
import type { SerialEndpoint } from './serial-adapters.js';

function xor(s: string): number {
  let x = 0;
  for (let i = 0; i < s.length; i++) x ^= s.charCodeAt(i);
  return x;
}

function sum8(s: string): number {
  let x = 0;
  for (let i = 0; i < s.length; i++) x = (x + s.charCodeAt(i)) & 0xff;
  return x;
}

const hex2 = (n: number): string => n.toString(16).toUpperCase().padStart(2, '0');

/** Flips one payload character so the frame keeps its shape but fails its checksum. */
function corrupt(frame: string, at: number): string {
  const i = Math.min(Math.max(1, at), frame.length - 1);
  return `${frame.slice(0, i)}${String.fromCharCode(frame.charCodeAt(i) ^ 0x04)}${frame.slice(i + 1)}`;
}

/** Common knobs of the line sensors. */
export interface LineSensorOptions {
  /** Corrupt every Nth frame (0 = never). */
  corruptEvery?: number;
  /** Put this many noise bytes before every Nth frame (0 = never). */
  noiseEvery?: number;
  /** Radar: repeat the alarm sentence every Nth tick even when the stage did not change (0 = only on change). */
  alarmRepeatEvery?: number;
}

abstract class LineSensor implements SerialEndpoint {
  send: (data: Buffer) => void = () => undefined;
  protected muted = false;
  /** Frames sent, corrupted ones included. */
  frames = 0;
  corrupted = 0;
  /** Engineering values of the last good frame, as the profile should decode them. */
  readonly served: Record<string, number | boolean | string> = {};

  constructor(protected readonly opts: LineSensorOptions = {}) {}

  /** Stop (or resume) sending. */
  silent(on: boolean): void {
    this.muted = on;
  }

  receive(_data: Buffer): void {}

  /** Sends one frame, corrupting or prefixing noise when it is that frame's turn. */
  protected emit(frame: string, build: () => void): void {
    if (this.muted) return;
    this.frames++;
    let out = frame;
    const { corruptEvery = 0, noiseEvery = 0 } = this.opts;
    if (corruptEvery > 0 && this.frames % corruptEvery === 0) {
      out = corrupt(frame, 3 + (this.frames % 5));
      this.corrupted++;
    } else build();
    if (noiseEvery > 0 && this.frames % noiseEvery === 0) out = `\x00\xff~${out}`;
    this.send(Buffer.from(out, 'latin1'));
  }
}

/** Radar water-level sensor streaming `$WLRAD` once per period (profile water-level-radar). */
export class WaterLevelRadarSim extends LineSensor {
  private timer: NodeJS.Timeout | null = null;
  private stage = -1;
  private readonly t0 = Date.now();
  /** Level to serve instead of the built-in wave (m). */
  level: number | null = null;

  constructor(private readonly periodMs = 100, opts: LineSensorOptions = {}, private readonly mountHeight = 7) {
    super(opts);
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.periodMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Sends the next sentence(s) now. */
  tick(): void {
    const t = Date.now() - this.t0;
    const level = this.level ?? Math.round((2 + 0.8 * Math.sin(t / 5000)) * 1000) / 1000;
    const distance = Math.round((this.mountHeight - level) * 1000) / 1000;
    const quality = 80 + (Math.floor(t / 1000) % 15);
    const temp = Math.round((14 + Math.sin(t / 60_000)) * 10) / 10;
    const body = `WLRAD,${level.toFixed(3)},${distance.toFixed(3)},${quality},${temp.toFixed(1)},A`;
    this.emit(`$${body}*${hex2(xor(body))}\r\n`, () => Object.assign(this.served, { level, distance, signal_quality: quality, sensor_temp: temp, valid: true }));
    const stage = level > 3.5 ? 3 : level > 3 ? 2 : level > 2.5 ? 1 : 0;
    const repeat = this.opts.alarmRepeatEvery ?? 0;
    if (stage !== this.stage || (repeat > 0 && this.frames % repeat === 0)) {
      const alarm = `WLALM,${stage}`;
      this.emit(`$${alarm}*${hex2(xor(alarm))}\r\n`, () => {
        this.stage = stage;
        this.served.flood_stage = stage;
      });
    }
  }
}

/** Tipping-bucket rain gauge answering ENQ (0x05) with an STX…ETX telegram (profile rain-gauge-tipping). */
export class RainGaugeSim extends LineSensor {
  /** Bucket tips so far (0.2 mm each). */
  tips = 100;
  intensity = 2.4;
  requests = 0;

  constructor(private readonly station = 7, opts: LineSensorOptions = {}) {
    super(opts);
  }

  override receive(data: Buffer): void {
    for (const byte of data) {
      if (byte !== 0x05) continue;
      this.requests++;
      this.tips += 1;
      const rain = Math.round(this.tips * 0.2 * 10) / 10;
      const station = String(this.station).padStart(2, '0');
      const body = `RG${station} T=${String(this.tips).padStart(6, '0')} R=${rain.toFixed(1)} I=${this.intensity.toFixed(1)} B=12.61`;
      this.emit(`\x02${body};${hex2(sum8(body))}\x03`, () =>
        Object.assign(this.served, { station, tips: this.tips, rain_total: rain, intensity: this.intensity, battery: 12.61 }));
    }
  }
}
