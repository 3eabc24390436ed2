/**
 * Test harness for the Modbus RTU transport: a simulated RTU line behind
 * serialport's mock binding, a transport over it, and collected events.
 */
import type { GatewayEvent } from '../../../../contract/index.js';
import { silentLogger, type Logger } from '../../../../lib/index.js';
import { EastronSdm120, CabinetEnvironment } from '../../../../scripts/sim/rtu-devices.js';
import { RtuSlaveLine, type RtuSlaveOptions } from '../../../../scripts/sim/rtu-slave.js';
import { MockSerialHub } from '../../../../scripts/sim/serial-adapters.js';
import type { SimDevice } from '../../../../scripts/sim/field-devices.js';
import type { ModbusRtuBusConfig } from '../../../config.js';
import { ModbusRtuTransport } from '../modbus-rtu.js';

let seq = 0;

/** A unique mock port path per test (the mock binding's port registry is process-wide). */
export function mockPath(): string {
  return `/dev/ttyMOCK${process.pid}-${++seq}`;
}

/** Bus settings with test-friendly timeouts. */
export function rtuBus(path: string, extra: Partial<ModbusRtuBusConfig> = {}): ModbusRtuBusConfig {
  return { id: 'rs485', type: 'modbus-rtu', path, baudRate: 19200, parity: 'even', dataBits: 8, stopBits: 1, timeoutMs: 150, retries: 0, interFrameDelayMs: 0, reconnectMinMs: 50, reconnectMaxMs: 200, ...extra };
}

/** A line with an SDM120 at unit 1 and a cabinet monitor at unit 2, behind a mock port. */
export interface RtuRig {
  hub: MockSerialHub;
  line: RtuSlaveLine;
  meter: EastronSdm120;
  cabinet: CabinetEnvironment;
  transport: ModbusRtuTransport;
  events: GatewayEvent[];
  path: string;
}

/** Builds and starts a rig; the caller's teardown must call `transport.stop()` and `line.close()`. */
export async function rtuRig(opts: { bus?: Partial<ModbusRtuBusConfig>; sim?: RtuSlaveOptions; logger?: Logger } = {}): Promise<RtuRig> {
  const path = mockPath();
  const meter = new EastronSdm120();
  const cabinet = new CabinetEnvironment();
  const line = new RtuSlaveLine(new Map<number, SimDevice>([[1, meter], [2, cabinet]]), opts.sim);
  const hub = new MockSerialHub();
  hub.connect(path, line);
  const events: GatewayEvent[] = [];
  const transport = new ModbusRtuTransport({ config: rtuBus(path, opts.bus), logger: opts.logger ?? silentLogger(), openPort: hub.factory, onEvent: (e) => events.push(e) });
  await transport.start();
  return { hub, line, meter, cabinet, transport, events, path };
}

/** Polls `fn` until it returns truthy (bounded), for waiting on background effects. */
export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
