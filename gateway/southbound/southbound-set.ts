/**
 * The gateway's running southbound side, kept per bus so a new configuration
 * touches only what changed (part of the composition root, with
 * southbound.ts and gateway.ts).
 *
 * Each bus is a group: its line (Modbus TCP/RTU transport, OPC UA client; a
 * serial-line port belongs to its one device) and the drivers of its enabled
 * devices, built by {@link buildSouthbound} from a one-bus configuration.
 * {@link SouthboundSet.apply} compares a new configuration (and profiles)
 * with the running one:
 *
 * - a bus whose settings changed, appeared or went away is rebuilt with all
 *   its devices;
 * - on an unchanged Modbus bus only the devices whose settings or profile
 *   changed restart, on the same transport; the others keep polling;
 * - on an unchanged OPC UA bus any device change rebuilds the bus's session
 *   (its devices share one subscription); a serial-line device is its bus.
 *
 * Everything new is built, and new serial ports are opened once as a probe,
 * before anything running is stopped: a configuration naming a port that does
 * not exist fails without having touched the running one.
 */
import { canonicalJson, IocError, isIocError, type GatewayEvent, type Reading } from '../../contract/index.js';
import { decodeResponse, isModbusProfile, planReads, type DeviceProfile, type ModbusProfile } from '../../device-profiles/index.js';
import { startAll, type Logger } from '../../lib/index.js';
import type { BusConfig, DeviceConfig, GatewayConfig } from '../config.js';
import { backoffCap, DevicePoller } from './device-poller.js';
import type { DeviceDriver } from './device-state.js';
import { openSerialPort, type SerialPortFactory } from './drivers/byte-link.js';
import type { ModbusTransport } from './drivers/modbus-transport.js';
import { buildSouthbound, type Service } from './southbound.js';
import type { PollPacer } from './poll-pacer.js';

/** Dependencies of {@link SouthboundSet}. */
export interface SouthboundSetDeps {
  logger: Logger;
  onReadings: (readings: Reading[]) => void;
  onEvent: (event: GatewayEvent) => void;
  serialPortFactory?: SerialPortFactory;
  /** Stretches Modbus polls under overload (poll-pacer.ts). */
  pacer?: PollPacer;
}

interface Group {
  bus: BusConfig;
  lines: Service[];
  drivers: Map<string, DeviceDriver>;
}

/** What an {@link SouthboundSet.apply} restarted (ids), for the report. */
export interface SouthboundChange {
  buses: string[];
  devices: string[];
}

const same = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);
const SERIAL_TYPES = new Set(['modbus-rtu', 'serial-line']);

/** Lines and drivers per bus, reconfigurable. */
export class SouthboundSet {
  private groups = new Map<string, Group>();
  private config: GatewayConfig | null = null;
  private profiles: ReadonlyMap<string, DeviceProfile> = new Map();
  /**
   * What is running: nothing yet ('built'), the lines ('lines'), lines and
   * drivers ('running'), or on the way down ('stopping': nothing starts any
   * more). A change applied before the start (the configuration agent starts
   * before the drivers and may apply a retained document at once) starts
   * only what the phase has reached; the start phases start what the set
   * holds at that moment, never a list taken earlier, so no replaced driver
   * is ever started and left running.
   */
  private phase: 'built' | 'lines' | 'running' | 'stopping' = 'built';
  private lock: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: SouthboundSetDeps) {}

  /** Every line, in bus order. */
  lines(): Service[] {
    return [...this.groups.values()].flatMap((g) => g.lines);
  }

  /** Every device driver, in bus order. */
  drivers(): DeviceDriver[] {
    return [...this.groups.values()].flatMap((g) => [...g.drivers.values()]);
  }

  /** The driver of an enabled device. */
  driver(deviceId: string): DeviceDriver | undefined {
    for (const g of this.groups.values()) {
      const d = g.drivers.get(deviceId);
      if (d) return d;
    }
    return undefined;
  }

  /** Builds every group of `config` (nothing started). */
  async build(config: GatewayConfig, profiles: ReadonlyMap<string, DeviceProfile>): Promise<void> {
    const groups = new Map<string, Group>();
    for (const bus of config.buses) groups.set(bus.id, await this.buildGroup(config, bus, profiles));
    this.groups = groups;
    this.config = config;
    this.profiles = profiles;
  }

  /** Starts the lines the set holds now (before the uplink); a change from then on starts the lines it builds. */
  startLines(): Promise<void> {
    return this.exclusive(async () => {
      if (this.phase !== 'built') return;
      await startAll(this.lines());
      this.phase = 'lines';
    });
  }

  /** Starts the drivers the set holds now (last); a change from then on starts its replacements itself. */
  startDrivers(): Promise<void> {
    return this.exclusive(async () => {
      if (this.phase !== 'lines') return;
      await startAll(this.drivers());
      this.phase = 'running';
    });
  }

  /**
   * Stops every driver (first: no new readings). Nothing starts after this
   * call, and a change in progress finishes before the stop, so whatever it
   * started is stopped too.
   */
  stopDrivers(onError: (err: unknown) => void): Promise<void> {
    this.phase = 'stopping';
    // All at once: one by one, the devices not yet stopped kept queueing polls on a shared line meanwhile.
    return this.exclusive(async () => {
      await Promise.all(this.drivers().map((d) => d.stop().catch(onError)));
    });
  }

  /** Stops every line (after the drivers). */
  stopLines(onError: (err: unknown) => void): Promise<void> {
    this.phase = 'stopping';
    return this.exclusive(async () => {
      for (const l of this.lines()) await l.stop().catch(onError);
    });
  }

  private get linesStarted(): boolean {
    return this.phase === 'lines' || this.phase === 'running';
  }

  private get driversStarted(): boolean {
    return this.phase === 'running';
  }

  private async buildGroup(config: GatewayConfig, bus: BusConfig, profiles: ReadonlyMap<string, DeviceProfile>): Promise<Group> {
    const devices = config.devices.filter((d) => d.bus === bus.id);
    const sb = await buildSouthbound({ ...this.deps, config: { ...config, buses: [bus], devices }, profiles });
    return { bus, lines: sb.lines, drivers: new Map(sb.drivers.map((d) => [d.id, d])) };
  }

  /**
   * Moves to `next`: builds and probes what is new, then stops what changed
   * or went away and starts its replacement. Devices not in the change keep
   * running untouched.
   * @throws the first build, probe or start error. A build or probe error
   *   leaves the running configuration as it was; after a start error the set
   *   holds `next` partly started, and applying the previous configuration
   *   again restores it.
   */
  apply(next: GatewayConfig, nextProfiles: ReadonlyMap<string, DeviceProfile>): Promise<SouthboundChange> {
    return this.exclusive(() => this.applyNow(next, nextProfiles));
  }

  /** Runs changes to the set one at a time (a configuration apply and a "restart driver" command may meet). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async applyNow(next: GatewayConfig, nextProfiles: ReadonlyMap<string, DeviceProfile>): Promise<SouthboundChange> {
    const prev = this.config;
    if (!prev) throw new Error('southbound set not built');
    const prevProfiles = this.profiles;
    const profileOf = (profiles: ReadonlyMap<string, DeviceProfile>, d: DeviceConfig): DeviceProfile | undefined => profiles.get(d.profile);
    const deviceChanged = (a: DeviceConfig | undefined, b: DeviceConfig | undefined): boolean =>
      !a || !b || !same(a, b) || !same(profileOf(prevProfiles, a), profileOf(nextProfiles, b));
    const prevDevices = new Map(prev.devices.map((d) => [d.id, d]));

    // 1. Build (nothing running is touched yet).
    const rebuilt = new Map<string, Group>();
    const newDrivers = new Map<string, Map<string, DeviceDriver | null>>(); // bus → device → new driver (null: remove)
    for (const bus of next.buses) {
      const old = this.groups.get(bus.id);
      const devs = next.devices.filter((d) => d.bus === bus.id);
      const oldDevs = prev.devices.filter((d) => d.bus === bus.id);
      const changed = [...devs.filter((d) => deviceChanged(prevDevices.get(d.id), d)), ...oldDevs.filter((d) => !devs.some((n) => n.id === d.id))];
      if (!old || !same(old.bus, bus) || (bus.type !== 'modbus-tcp' && bus.type !== 'modbus-rtu' && bus.type !== 'modbus-rtu-tcp' && changed.length > 0)) {
        rebuilt.set(bus.id, await this.buildGroup(next, bus, nextProfiles));
        continue;
      }
      if (changed.length === 0) continue;
      const perDevice = new Map<string, DeviceDriver | null>();
      const transport = old.lines[0] as unknown as ModbusTransport;
      for (const d of changed) {
        const nd = devs.find((n) => n.id === d.id);
        if (!nd || !nd.enabled) perDevice.set(d.id, null);
        else perDevice.set(d.id, this.modbusDriver(nd, profileOf(nextProfiles, nd) as ModbusProfile, transport));
      }
      newDrivers.set(bus.id, perDevice);
    }
    const removedBuses = [...this.groups.keys()].filter((id) => !next.buses.some((b) => b.id === id));

    // 2. Probe serial ports that are new to this gateway.
    const heldPaths = new Set(prev.buses.filter((b) => SERIAL_TYPES.has(b.type)).map((b) => (b as { path: string }).path));
    for (const g of rebuilt.values()) {
      const b = g.bus;
      if ((b.type !== 'modbus-rtu' && b.type !== 'serial-line') || heldPaths.has(b.path)) continue;
      if (b.type === 'serial-line' && !next.devices.some((d) => d.bus === b.id && d.enabled)) continue;
      await this.probe(b);
    }

    // 3. Stop what changed, swap, start the replacements.
    const onError = (err: unknown): void => this.deps.logger.warn({ err }, 'stop failed during reconfiguration');
    for (const id of [...rebuilt.keys(), ...removedBuses]) {
      const g = this.groups.get(id);
      if (!g) continue;
      for (const d of g.drivers.values()) await d.stop().catch(onError);
      for (const l of g.lines) await l.stop().catch(onError);
    }
    for (const [busId, per] of newDrivers) {
      const g = this.groups.get(busId)!;
      for (const id of per.keys()) await g.drivers.get(id)?.stop().catch(onError);
    }
    const groups = new Map<string, Group>();
    for (const bus of next.buses) groups.set(bus.id, rebuilt.get(bus.id) ?? this.groups.get(bus.id)!);
    for (const [busId, per] of newDrivers) {
      const g = groups.get(busId)!;
      for (const [id, drv] of per) {
        if (drv) g.drivers.set(id, drv);
        else g.drivers.delete(id);
      }
      // Keep configuration order.
      g.drivers = new Map(next.devices.filter((d) => g.drivers.has(d.id)).map((d) => [d.id, g.drivers.get(d.id)!]));
    }
    this.groups = groups;
    this.config = next;
    this.profiles = nextProfiles;
    const change: SouthboundChange = {
      buses: [...rebuilt.keys(), ...removedBuses],
      devices: [
        ...[...rebuilt.values()].flatMap((g) => [...g.drivers.keys()]),
        ...removedBuses.flatMap((id) => prev.devices.filter((d) => d.bus === id).map((d) => d.id)),
        ...[...newDrivers.values()].flatMap((per) => [...per.keys()]),
      ].filter((v, i, a) => a.indexOf(v) === i),
    };
    if (this.linesStarted) for (const g of rebuilt.values()) for (const l of g.lines) await l.start();
    if (!this.driversStarted) return change;
    for (const g of rebuilt.values()) for (const d of g.drivers.values()) await d.start();
    for (const per of newDrivers.values()) for (const d of per.values()) if (d) await d.start();
    return change;
  }

  /** Stops and starts again the driver of one device, or a bus with its devices (the "restart driver" command). */
  restart(target: { device: string } | { bus: string }): Promise<string[]> {
    return this.exclusive(() => this.restartNow(target));
  }

  private async restartNow(target: { device: string } | { bus: string }): Promise<string[]> {
    const config = this.config;
    if (!config) throw new Error('southbound set not built');
    if ('device' in target) {
      const g = [...this.groups.values()].find((x) => x.drivers.has(target.device));
      if (!g) throw new IocError('GW_ERR_NO_DEVICE', `no enabled device '${target.device}' on this gateway`, { context: { device: target.device } });
      if (g.bus.type === 'modbus-tcp' || g.bus.type === 'modbus-rtu' || g.bus.type === 'modbus-rtu-tcp') {
        const old = g.drivers.get(target.device)!;
        const d = config.devices.find((x) => x.id === target.device)!;
        const fresh = this.modbusDriver(d, this.profiles.get(d.profile) as ModbusProfile, g.lines[0] as unknown as ModbusTransport);
        await old.stop();
        g.drivers.set(d.id, fresh);
        if (this.driversStarted) await fresh.start();
        return [d.id];
      }
      return this.restartNow({ bus: g.bus.id });
    }
    const g = this.groups.get(target.bus);
    if (!g) throw new IocError('GW_ERR_NO_DEVICE', `no bus '${target.bus}' on this gateway`, { context: { bus: target.bus } });
    const fresh = await this.buildGroup(config, g.bus, this.profiles);
    for (const d of g.drivers.values()) await d.stop();
    for (const l of g.lines) await l.stop();
    this.groups.set(g.bus.id, fresh);
    if (this.linesStarted) for (const l of fresh.lines) await l.start();
    if (this.driversStarted) for (const d of fresh.drivers.values()) await d.start();
    return [...fresh.drivers.keys()];
  }

  /**
   * Reads points of a Modbus device now, on its bus's transport (queued with
   * the polls like any request), without waiting for the next poll. Null for
   * devices of other protocols (streams and subscriptions have no "now").
   * @throws IocError GW_ERR_NO_DEVICE (unknown device or point), or the transport's error (timeout, exception…).
   */
  async readNow(deviceId: string, points?: readonly string[]): Promise<Reading[] | null> {
    const g = [...this.groups.values()].find((x) => x.drivers.has(deviceId));
    const d = this.config?.devices.find((x) => x.id === deviceId);
    if (!g || !d) throw new IocError('GW_ERR_NO_DEVICE', `no enabled device '${deviceId}' on this gateway`, { context: { device: deviceId } });
    const profile = this.profiles.get(d.profile);
    if (!profile || !isModbusProfile(profile)) return null;
    const unknown = (points ?? []).filter((p) => !profile.points.some((x) => x.name === p));
    if (unknown.length > 0) throw new IocError('GW_ERR_NO_DEVICE', `device '${deviceId}' (${profile.model}) has no point ${unknown.map((p) => `'${p}'`).join(', ')}`, { context: { device: deviceId, point: unknown[0] } });
    const selected = points ? profile.points.filter((p) => points.includes(p.name)) : profile.points;
    const transport = g.lines[0] as unknown as ModbusTransport;
    const out: Reading[] = [];
    for (const req of planReads(selected, profile.modbus)) {
      const data = await transport.read(d.unitId, req.table, req.address, req.count, d.timeoutMs !== undefined ? { timeoutMs: d.timeoutMs } : {});
      const ts = Date.now();
      for (const { point, value } of decodeResponse(req, data)) out.push({ device: deviceId, point: point.name, ts, value, quality: 'good' });
    }
    return out;
  }

  private modbusDriver(device: DeviceConfig, profile: ModbusProfile, transport: ModbusTransport): DeviceDriver {
    // Only devices of an unchanged bus get a driver here, so the running bus settings are the new ones too.
    const bus = this.config?.buses.find((x) => x.id === device.bus) as { backoffMaxMs?: number } | undefined;
    return new DevicePoller({ logger: this.deps.logger.child({ component: 'device' }), onReadings: this.deps.onReadings, onEvent: this.deps.onEvent, device, profile, transport, maxBackoffMs: backoffCap(device, bus), ...(this.deps.pacer ? { pacer: this.deps.pacer } : {}) });
  }

  /** Opens a serial port once and closes it: proves it exists and can be opened before anything is stopped. */
  private async probe(b: Extract<BusConfig, { type: 'modbus-rtu' | 'serial-line' }>): Promise<void> {
    const open = this.deps.serialPortFactory ?? openSerialPort;
    try {
      const link = await open({ path: b.path, baudRate: b.baudRate, parity: b.parity, dataBits: b.dataBits, stopBits: b.stopBits });
      await link.close();
    } catch (err) {
      const detail = isIocError(err) ? err.message : `cannot open serial port ${b.path}: ${(err as Error).message}`;
      throw new IocError('GW_ERR_SERIAL_OPEN', `bus '${b.id}': ${detail.replace(/ \(GW_ERR_[A-Z_]+\)$/, '')}`, { cause: err, context: { bus: b.id, path: b.path } });
    }
  }
}
