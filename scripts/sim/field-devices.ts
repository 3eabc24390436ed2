/**
 * Simulated field devices whose register maps match the shipped profiles
 * `flood-level-sensor` and `traffic-signal-controller`. Each keeps the
 * engineering values it last served (`served`), computed from the raw
 * registers the same way the profile describes, so tests can compare what
 * reached the hub with what the device really served.
 */
import { RegisterBank } from './register-bank.js';

/** A simulated device: a register bank that changes over time. */
export interface SimDevice {
  readonly model: string;
  readonly bank: RegisterBank;
  /** Engineering values currently served, by point name. */
  readonly served: Record<string, number | boolean | string>;
  /** Advances the simulation to time `t` (ms). */
  tick(t: number): void;
  /** Called just before a read request is answered (holding registers). */
  onRead?(table: string, address: number, count: number): void;
}

/**
 * A device whose uint32 counter (holding 0–1) advances by one on every read,
 * and which remembers when it served each value: fault tests compare what it
 * served with what the hub stored.
 */
export class CounterDevice implements SimDevice {
  readonly model = 'fault-counter';
  readonly bank = new RegisterBank();
  readonly served: Record<string, number | boolean | string> = {};
  /** servedAt[v - 1] = time (ms) value v was served. */
  readonly servedAt: number[] = [];

  tick(): void {}

  onRead(table: string, address: number): void {
    if (table !== 'holding' || address !== 0) return;
    const v = this.servedAt.length + 1;
    this.servedAt.push(Date.now());
    this.bank.setU32('holding', 0, v, 'big');
    this.served.count = v;
  }
}

/** A river-side flood level sensor: level rises and falls in a slow wave. */
export class FloodLevelSensor implements SimDevice {
  readonly model = 'flood-level-sensor';
  readonly bank = new RegisterBank();
  readonly served: Record<string, number | boolean | string> = {};
  private samples = 70_000; // crosses the 16-bit boundary of a uint32 soon after start

  constructor(private readonly phase = 0) {
    this.tick(0);
  }

  tick(t: number): void {
    const b = this.bank;
    const levelMm = Math.round(1500 + 700 * Math.sin(t / 20_000 + this.phase) + ((t / 1000) % 7));
    const rate = Math.round(35 * Math.cos(t / 20_000 + this.phase)); // 0.1 mm/min units
    const temp = Math.round((12 + 3 * Math.sin(t / 60_000)) * 100) / 100;
    const battery = 1260 - Math.floor(t / 600_000);
    this.samples++;
    b.setU16('input', 0, levelMm);
    b.setI16('input', 1, rate);
    b.setF32('input', 2, temp, 'big');
    b.setU16('input', 4, battery);
    b.setU32('input', 10, this.samples, 'little');
    if (!b.holding.has(100)) b.setU16('holding', 100, 2500);
    b.discrete.set(0, levelMm > 2100);
    Object.assign(this.served, {
      level: levelMm * 0.001,
      level_rate: rate * 0.1,
      water_temp: Math.fround(temp),
      battery: battery * 0.01,
      sample_count: this.samples,
      alarm_level: b.word('holding', 100) * 0.001,
      float_switch: levelMm > 2100,
    });
  }
}

/** A traffic signal controller cycling through its phases. */
export class TrafficSignalController implements SimDevice {
  readonly model = 'traffic-signal-controller';
  readonly bank = new RegisterBank();
  readonly served: Record<string, number | boolean | string> = {};

  constructor() {
    this.bank.setU16('holding', 1, 3);
    this.tick(0);
  }

  tick(t: number): void {
    const b = this.bank;
    const cycle = 90;
    const sec = Math.floor(t / 1000);
    const phase = Math.floor((sec % cycle) / 15) + 1;
    const temp = Math.round(250 + 80 * Math.sin(t / 45_000)); // 0.1 °C, can go negative in winter sims
    const detectors = 65_530 + Math.floor(t / 250); // crosses 2^16 early: checks word order
    b.setU16('holding', 0, phase);
    b.setU16('holding', 2, cycle);
    b.setI16('holding', 3, temp);
    b.setU32('holding', 4, 86_400 + sec, 'big');
    b.setU32('holding', 6, detectors, 'big');
    b.setString('holding', 20, 'TSC-2.41', 4);
    b.setU16('input', 0, 0);
    b.setU16('input', 1, 0b111);
    b.discrete.set(0, false);
    b.discrete.set(1, false);
    if (!b.coil.has(0)) b.coil.set(0, false);
    Object.assign(this.served, {
      phase,
      plan: b.word('holding', 1),
      cycle_time: cycle,
      cabinet_temp: temp * 0.1,
      uptime: 86_400 + sec,
      detector_count: detectors,
      fw_version: 'TSC-2.41',
      lamp_faults: 0,
      red_lamp_ok: true,
      amber_lamp_ok: true,
      green_lamp_ok: true,
      flash_mode: b.bit('coil', 0),
      door_open: false,
      power_fail: false,
    });
  }
}
