/**
 * Command-line options shared by `scan`, `probe` and `write`: where the
 * field device is (a serial port, a Modbus TCP endpoint, a serial device
 * server speaking raw RTU over TCP, an OPC UA server) and how to talk to it.
 * Builds the same transports the gateway uses, so what a technician sees at
 * the cabinet is what the gateway will see.
 */
import { IocError } from '../../contract/index.js';
import { silentLogger, type Logger } from '../../lib/index.js';
import type { ModbusRtuBusConfig, ModbusRtuTcpBusConfig, ModbusTcpBusConfig } from '../config.js';
import { openSerialPort, type SerialPortFactory } from '../southbound/drivers/byte-link.js';
import { ModbusTcpTransport } from '../southbound/drivers/modbus-tcp.js';
import type { ModbusTransport } from '../southbound/drivers/modbus-transport.js';

/** `parseArgs` option definitions for the line options. */
export const LINE_OPTIONS = {
  serial: { type: 'string' },
  tcp: { type: 'string' },
  'rtu-tcp': { type: 'string' },
  opcua: { type: 'string' },
  baud: { type: 'string' },
  parity: { type: 'string' },
  'data-bits': { type: 'string' },
  'stop-bits': { type: 'string' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  'frame-delay': { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  'security-mode': { type: 'string' },
  'security-policy': { type: 'string' },
  trust: { type: 'string', multiple: true },
  'pki-dir': { type: 'string' },
  'dev-mode': { type: 'boolean' },
} as const;

/** Help text for the line options. */
export const LINE_HELP = `Where the device is (one of):
  --serial PATH          Modbus RTU on a serial port (e.g. /dev/ttyUSB0)
  --tcp HOST:PORT        Modbus TCP
  --rtu-tcp HOST:PORT    raw Modbus RTU over TCP (serial device server)
  --opcua URL            OPC UA server (opc.tcp://host:4840/…)
Serial settings: --baud 9600 --parity even|odd|none --data-bits 8 --stop-bits 1
Modbus: --timeout MS (200) --retries N (0) --frame-delay MS (extra inter-frame silence)
OPC UA: --user NAME --password PW --security-mode None|Sign|SignAndEncrypt
        --security-policy Basic256Sha256 --trust CERT.pem (repeatable) --pki-dir DIR --dev-mode`;

/** Parsed line option values. */
export type LineValues = { [K in keyof typeof LINE_OPTIONS]?: (typeof LINE_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof LINE_OPTIONS)[K] extends { type: 'boolean' } ? boolean : string };

function usage(message: string): IocError {
  return new IocError('CONFIG_ERR_INVALID', message);
}

function int(value: string | undefined, name: string, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw usage(`--${name}: '${value}' is not an integer in ${min}..${max}`);
  return n;
}

/** HOST:PORT → parts. */
export function hostPort(value: string, name: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(value);
  if (!m) throw usage(`--${name}: expected HOST:PORT, got '${value}'`);
  return { host: m[1] as string, port: int(m[2], name, 0, 1, 65535) };
}

/** Which kind of line the options name. */
export function lineKind(v: LineValues): 'serial' | 'tcp' | 'rtu-tcp' | 'opcua' {
  const given = (['serial', 'tcp', 'rtu-tcp', 'opcua'] as const).filter((k) => v[k] !== undefined);
  if (given.length !== 1) throw usage(given.length === 0 ? 'say where the device is: --serial PATH, --tcp HOST:PORT, --rtu-tcp HOST:PORT or --opcua URL' : `give only one of --${given.join(', --')}`);
  return given[0] as 'serial' | 'tcp' | 'rtu-tcp' | 'opcua';
}

/** Serial settings from the options (Modbus RTU defaults: 9600 8E1). */
export function serialSettings(v: LineValues, defaults: { parity: 'none' | 'even' | 'odd' } = { parity: 'even' }): { baudRate: number; parity: 'none' | 'even' | 'odd'; dataBits: 7 | 8; stopBits: 1 | 2 } {
  const parity = v.parity ?? defaults.parity;
  if (parity !== 'none' && parity !== 'even' && parity !== 'odd') throw usage(`--parity: '${parity}' is not none, even or odd`);
  return {
    baudRate: int(v.baud, 'baud', 9600, 300, 921600),
    parity,
    dataBits: int(v['data-bits'], 'data-bits', 8, 7, 8) as 7 | 8,
    stopBits: int(v['stop-bits'], 'stop-bits', 1, 1, 2) as 1 | 2,
  };
}

/**
 * Builds (not started) the Modbus transport the options describe. The RTU
 * transport (modbus-serial) is imported only when asked for: every command
 * module is loaded by the dispatcher, `run` included.
 */
export async function modbusTransport(v: LineValues, opts: { logger?: Logger; openPort?: SerialPortFactory; timeoutMs?: number } = {}): Promise<ModbusTransport> {
  const kind = lineKind(v);
  const logger = opts.logger ?? silentLogger();
  const common = {
    id: 'cli', timeoutMs: int(v.timeout, 'timeout', opts.timeoutMs ?? 200, 10, 60000), retries: int(v.retries, 'retries', 0, 0, 5),
    reconnectMinMs: 200, reconnectMaxMs: 1000,
  };
  const frameDelay = v['frame-delay'] === undefined ? 0 : Number(v['frame-delay']);
  if (!(frameDelay >= 0 && frameDelay <= 1000)) throw usage(`--frame-delay: '${v['frame-delay']}' is not 0..1000 ms`);
  if (kind === 'serial') {
    const config: ModbusRtuBusConfig = { ...common, type: 'modbus-rtu', path: v.serial as string, ...serialSettings(v), interFrameDelayMs: frameDelay };
    const { ModbusRtuTransport } = await import('../southbound/drivers/modbus-rtu.js');
    return new ModbusRtuTransport({ config, logger, openPort: opts.openPort ?? openSerialPort });
  }
  if (kind === 'rtu-tcp') {
    const config: ModbusRtuTcpBusConfig = { ...common, type: 'modbus-rtu-tcp', ...hostPort(v['rtu-tcp'] as string, 'rtu-tcp'), baudRate: int(v.baud, 'baud', 9600, 300, 921600), interFrameDelayMs: frameDelay };
    const { ModbusRtuTransport } = await import('../southbound/drivers/modbus-rtu.js');
    return new ModbusRtuTransport({ config, logger, openPort: opts.openPort ?? openSerialPort });
  }
  if (kind === 'tcp') {
    const config: ModbusTcpBusConfig = { ...common, type: 'modbus-tcp', ...hostPort(v.tcp as string, 'tcp') };
    return new ModbusTcpTransport({ config, logger });
  }
  throw usage('this command talks Modbus: use --serial, --tcp or --rtu-tcp');
}

/** Parses a unit id list: "1-247", "1,2,10-12". */
export function unitList(spec: string): number[] {
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    const m = /^\s*(\d{1,3})\s*(?:-\s*(\d{1,3}))?\s*$/.exec(part);
    if (!m) throw usage(`--units: '${part}' is not a unit id or range`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 0 || b > 255 || a > b) throw usage(`--units: '${part}' is not within 0..255`);
    for (let u = a; u <= b; u++) out.add(u);
  }
  return [...out].sort((x, y) => x - y);
}
