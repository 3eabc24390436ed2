/**
 * The southbound half of the gateway's composition root: builds one line
 * service per bus (Modbus TCP endpoint, Modbus RTU serial line, RTU over TCP,
 * serial-line port, OPC UA client) and one driver per enabled device, the
 * right kind for its profile's protocol. Every driver reports through the
 * same `onReadings` / `onEvent` callbacks. node-opcua is imported only when
 * an OPC UA bus exists, so gateways without one start fast; modbus-serial
 * only when a Modbus RTU line exists (and serialport, in byte-link.ts, only
 * when a serial port is opened), so a Modbus-TCP-only gateway loads neither.
 */
import { IocError, type GatewayEvent, type Reading } from '../../contract/index.js';
import type { DeviceProfile } from '../../device-profiles/index.js';
import type { Logger } from '../../lib/index.js';
import type { BusConfig, GatewayConfig, OpcuaBusConfig } from '../config.js';
import { backoffCap, DevicePoller } from './device-poller.js';
import type { DeviceDriver } from './device-state.js';
import { ModbusTcpTransport } from './drivers/modbus-tcp.js';
import type { ModbusTransport } from './drivers/modbus-transport.js';
import { openSerialPort, type SerialPortFactory } from './drivers/byte-link.js';
import { SerialLineDevice } from './drivers/serial-line-device.js';
import type { PollPacer } from './poll-pacer.js';
// Type only: the module itself is imported lazily below.
import type { OpcuaLine } from './drivers/opcua-line.js';

/** A long-lived part with start/stop. */
export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What {@link buildSouthbound} needs. */
export interface SouthboundDeps {
  config: GatewayConfig;
  profiles: ReadonlyMap<string, DeviceProfile>;
  logger: Logger;
  onReadings: (readings: Reading[]) => void;
  onEvent: (event: GatewayEvent) => void;
  /** Opens serial ports; tests pass one over serialport's mock binding. */
  serialPortFactory?: SerialPortFactory;
  /** Stretches Modbus polls under overload (poll-pacer.ts). */
  pacer?: PollPacer;
}

/** The built southbound side. Start `lines` before `drivers`, stop in reverse. */
export interface Southbound {
  lines: Service[];
  drivers: DeviceDriver[];
}

/** Builds lines and device drivers for a validated configuration. */
export async function buildSouthbound(deps: SouthboundDeps): Promise<Southbound> {
  const { config, profiles, logger, onReadings, onEvent } = deps;
  const openPort = deps.serialPortFactory ?? openSerialPort;
  const modbusLines = new Map<string, ModbusTransport>();
  const lines: Service[] = [];
  const busById = new Map<string, BusConfig>(config.buses.map((b) => [b.id, b]));
  // modbus-serial (RTU framing) only when an RTU line exists: Modbus TCP has its own client.
  const rtu = config.buses.some((b) => b.type === 'modbus-rtu' || b.type === 'modbus-rtu-tcp') ? await import('./drivers/modbus-rtu.js') : null;
  for (const b of config.buses) {
    const log = logger.child({ component: b.type, bus: b.id });
    if (b.type === 'modbus-tcp') modbusLines.set(b.id, new ModbusTcpTransport({ config: b, logger: log }));
    else if ((b.type === 'modbus-rtu' || b.type === 'modbus-rtu-tcp') && rtu) modbusLines.set(b.id, new rtu.ModbusRtuTransport({ config: b, logger: log, openPort, onEvent }));
  }
  lines.push(...modbusLines.values());

  const enabled = config.devices.filter((d) => d.enabled);
  // node-opcua takes about a second to import: only when an OPC UA bus carries a device.
  const opcuaBuses = config.buses.filter((b): b is OpcuaBusConfig => b.type === 'opcua' && enabled.some((d) => d.bus === b.id));
  const opcua = opcuaBuses.length === 0 ? null : await import('./drivers/opcua-line.js').catch((err: unknown) => {
    throw new IocError('GW_ERR_OPCUA_UNAVAILABLE', `OPC UA buses are configured but node-opcua cannot be loaded: ${(err as Error).message}`, { cause: err });
  });
  const opcuaLines = new Map<string, OpcuaLine>();
  for (const b of opcuaBuses) {
    if (!opcua) break;
    const line = new opcua.OpcuaLine({ config: b, logger: logger.child({ component: 'opcua', bus: b.id }), onEvent });
    opcuaLines.set(b.id, line);
    lines.push(line);
  }

  const drivers: DeviceDriver[] = [];
  for (const d of enabled) {
    const bus = busById.get(d.bus) as BusConfig;
    const profile = profiles.get(d.profile) as DeviceProfile;
    // Every log line of a device driver carries `device` itself.
    const common = { logger: logger.child({ component: 'device' }), onReadings, onEvent };
    if (profile.protocol === 'modbus') {
      drivers.push(new DevicePoller({ ...common, device: d, profile, transport: modbusLines.get(d.bus) as ModbusTransport, maxBackoffMs: backoffCap(d, bus as { backoffMaxMs?: number }), ...(deps.pacer ? { pacer: deps.pacer } : {}) }));
    } else if (profile.protocol === 'serial-line' && bus.type === 'serial-line') {
      drivers.push(new SerialLineDevice({ ...common, device: d, profile, bus, openPort }));
    } else if (profile.protocol === 'opcua' && bus.type === 'opcua') {
      drivers.push((opcuaLines.get(bus.id) as OpcuaLine).addDevice({ ...common, device: d, profile }));
    } else {
      throw new IocError('CONFIG_ERR_INVALID', `device ${d.id}: profile ${profile.model} (${profile.protocol}) cannot run on bus ${bus.id} (${bus.type})`, { context: { device: d.id } });
    }
  }
  return { lines, drivers };
}
