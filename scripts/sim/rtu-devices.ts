/**
 * Simulated RS-485 field devices whose register maps match shipped profiles:
 * the Eastron SDM120 energy meter (float32 input registers, high word first)
 * and the cabinet environment monitor. Values are encoded with RegisterBank,
 * independently of the gateway's decoder; `served` holds the engineering
 * values as the profile should decode them.
 */
import type { SimDevice } from './field-devices.js';
import { RegisterBank } from './register-bank.js';

/** Eastron SDM120 single-phase meter (register map of eastron-sdm120.json). */
export class EastronSdm120 implements SimDevice {
  readonly model = 'eastron-sdm120';
  readonly bank = new RegisterBank();
  readonly served: Record<string, number | boolean | string> = {};
  private energy = 1234.5;

  constructor(private readonly phase = 0, readonly unitId = 1) {
    this.tick(0);
  }

  tick(t: number): void {
    const b = this.bank;
    const set = (name: string, addr: number, v: number, table: 'input' | 'holding' = 'input'): void => {
      b.setF32(table, addr, v, 'big');
      this.served[name] = Math.fround(v);
    };
    const voltage = 230 + 4 * Math.sin(t / 7000 + this.phase);
    const current = 4 + 2 * Math.sin(t / 11_000 + this.phase);
    const pf = 0.95;
    this.energy += (voltage * current * pf) / 3.6e6;
    set('voltage', 0, voltage);
    set('current', 6, current);
    set('active_power', 12, voltage * current * pf);
    set('apparent_power', 18, voltage * current);
    set('reactive_power', 24, voltage * current * Math.sqrt(1 - pf * pf));
    set('power_factor', 30, pf);
    set('phase_angle', 36, (Math.acos(pf) * 180) / Math.PI);
    set('frequency', 70, 50 + 0.02 * Math.sin(t / 3000));
    set('import_active_energy', 72, this.energy);
    set('export_active_energy', 74, 0);
    set('import_reactive_energy', 76, this.energy * 0.3);
    set('export_reactive_energy', 78, 0);
    set('total_power_demand', 84, voltage * current * pf);
    set('max_total_power_demand', 86, 1800);
    set('total_active_energy', 342, this.energy);
    set('total_reactive_energy', 344, this.energy * 0.3);
    set('relay_pulse_width', 12, 100, 'holding');
    set('parity_stop', 18, 0, 'holding');
    set('meter_id', 20, this.unitId, 'holding');
    set('baud_rate', 28, 2, 'holding');
  }
}

/** Street-cabinet environment monitor (register map of cabinet-environment.json). */
export class CabinetEnvironment implements SimDevice {
  readonly model = 'cabinet-environment';
  readonly bank = new RegisterBank();
  readonly served: Record<string, number | boolean | string> = {};
  /** Door contact and mains state, set by tests. */
  door = false;
  mainsFail = false;

  constructor() {
    this.bank.setI16('holding', 100, 350);
    this.tick(0);
  }

  tick(t: number): void {
    const b = this.bank;
    const temp = Math.round(280 + 60 * Math.sin(t / 40_000)); // 0.1 degC
    const charge = this.mainsFail ? Math.max(0, 100 - Math.floor(t / 60_000)) : 100;
    b.setI16('input', 0, temp);
    b.setU16('input', 1, 455);
    b.setU16('input', 2, charge);
    b.setU16('input', 3, 1352);
    b.setU16('input', 4, 95);
    b.setU16('input', 5, 23);
    b.setU16('input', 6, this.mainsFail ? 0 : 2301);
    b.discrete.set(0, this.door);
    b.discrete.set(1, this.mainsFail);
    b.discrete.set(2, charge < 20);
    b.discrete.set(3, false);
    b.discrete.set(4, false);
    Object.assign(this.served, {
      temperature: temp / 10, humidity: 45.5, ups_battery_charge: charge, ups_battery_voltage: 13.52, ups_runtime: 95, ups_load: 23,
      mains_voltage: this.mainsFail ? 0 : 230.1, door_open: this.door, ups_on_battery: this.mainsFail, ups_battery_low: charge < 20,
      smoke_alarm: false, water_leak: false, fan_on: b.bit('coil', 0), heater_on: b.bit('coil', 1), fan_threshold: (b.word('holding', 100) << 16 >> 16) / 10,
    });
  }
}
