/**
 * Issue 14.2: no message a user can see (error text, event, log line, CLI
 * output) contains `undefined`, `NaN` or `[object Object]`, and each carries
 * exactly one catalogue code. Checked across every code of the catalogue and
 * every transport failure — refused, timeout, reset, garbled frame, exception
 * response — of Modbus TCP, Modbus RTU (serial line), RTU over TCP, the
 * serial line-protocol port and OPC UA, with real peers on loopback (raw TCP
 * servers that misbehave on purpose, the RTU simulator behind serialport's
 * mock binding and behind a TCP converter, a real node-opcua client).
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ERRORS, IocError, type ErrorCode, type GatewayEvent } from '../../../../contract/index.js';
import { PROFILES_DIR, loadProfileFile, type ModbusProfile, type OpcuaProfile, type SerialLineProfile } from '../../../../device-profiles/index.js';
import { WaterLevelRadarSim } from '../../../../scripts/sim/line-sensors.js';
import { MockSerialHub } from '../../../../scripts/sim/serial-adapters.js';
import { CabinetEnvironment, EastronSdm120 } from '../../../../scripts/sim/rtu-devices.js';
import { RtuSlaveLine } from '../../../../scripts/sim/rtu-slave.js';
import { RtuTcpServer } from '../../../../scripts/sim/rtu-tcp-server.js';
import { freePort } from '../../../../scripts/sim/free-port.js';
import type { SimDevice } from '../../../../scripts/sim/field-devices.js';
import { silentLogger } from '../../../../lib/index.js';
import type { ModbusRtuTcpBusConfig, ModbusTcpBusConfig, OpcuaBusConfig, SerialLineBusConfig } from '../../../config.js';
import { DevicePoller } from '../../device-poller.js';
import { openSerialPort } from '../byte-link.js';
import { describeRequest, toModbusError } from '../modbus-errors.js';
import { ModbusRtuTransport } from '../modbus-rtu.js';
import { ModbusTcpTransport } from '../modbus-tcp.js';
import { SerialLineDevice } from '../serial-line-device.js';
import { captureLogger } from './log-capture.js';
import { rtuRig, until } from './rtu-harness.js';

const UNREADABLE = /undefined|NaN|\[object Object\]/;
const CODE = /\([A-Z]+_ERR_[A-Z0-9_]+\)/g;

/** A message is readable: no undefined/NaN/[object Object], at most one code. */
function readable(t: Test, text: string | undefined, label: string): void {
  t.type(text, 'string', `${label}: has a message`);
  t.notMatch(text ?? '', UNREADABLE, `${label}: ${text}`);
  t.ok((text?.match(CODE) ?? []).length <= 1, `${label}: one code at most: ${text}`);
}

/** Rejection of `p`, which must reject with an IocError of `code`; its message must be readable. */
async function failsReadably(t: Test, p: Promise<unknown>, code: ErrorCode | RegExp, label: string): Promise<IocError> {
  const err = await p.then(() => null, (e: unknown) => e);
  t.ok(err instanceof IocError, `${label}: an IocError`);
  const e = err as IocError;
  t.match(e.code, code, `${label}: code`);
  readable(t, e.message, label);
  t.notMatch(e.message, /retrying in/, `${label}: no promise of a retry in the error itself`);
  t.notMatch(JSON.stringify(e.toJSON()), UNREADABLE, `${label}: wire form`);
  return e;
}

/** A TCP server that does `onData` with each connection's first bytes. */
async function rawServer(t: Test, onData: (socket: net.Socket, data: Buffer) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    s.on('data', (d) => onData(s, d));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return (server.address() as net.AddressInfo).port;
}

t.test('every code of the catalogue, with representative and missing context', async (t) => {
  for (const code of Object.keys(ERRORS) as ErrorCode[]) {
    readable(t, new IocError(code).message, `${code} default`);
    readable(t, new IocError(code, undefined, { context: {} }).message, `${code} no context`);
    readable(t, new IocError(code, 'device flood-1 point level: detail', { context: { device: 'flood-1', point: 'level' } }).message, `${code} with context`);
    // A message built from another error's message keeps one code: the outer one.
    const nested = new IocError(code, `cannot write 99 to 'x': ${new IocError('GW_ERR_DECODE', 'above max 60').message}`);
    t.equal(nested.message.match(CODE)?.join(), `(${code})`, `${code}: nested code dropped`);
  }
  // The Modbus mapper with whatever context it is given.
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1502'), { code: 'ECONNREFUSED', errno: -111 });
  t.equal(toModbusError(refused, { endpoint: '127.0.0.1:1502', bus: 'lan' }).code, 'GW_ERR_MODBUS_CONNECT', 'numeric errno, named code: still a connect error');
  for (const ctx of [{}, { bus: 'lan' }, { endpoint: '10.0.0.5:502' }, { unitId: 3 }, { unitId: 3, table: 'holding' }, { unitId: 3, table: 'holding', address: 40, count: 2, endpoint: 'h:1' }]) {
    for (const err of [refused, new Error('weird'), { name: 'TransactionTimedOutError' }, { modbusCode: 2 }, { modbusCode: 77 }, {}, null, undefined, 'text', 42]) {
      readable(t, toModbusError(err, ctx).message, `toModbusError(${JSON.stringify(err) ?? String(err)}, ${JSON.stringify(ctx)})`);
    }
  }
  t.equal(describeRequest({ unitId: 3, table: 'holding', address: 40, count: 2, endpoint: 'h:1' }), 'unit 3 holding @40×2 on h:1');
  t.equal(describeRequest({}), '');
});

function tcpBus(port: number): ModbusTcpBusConfig {
  return { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port, timeoutMs: 200, retries: 0, reconnectMinMs: 50, reconnectMaxMs: 200 };
}

t.test('Modbus TCP: refused, timeout, reset, garbled frame, exception response', async (t) => {
  const refusedPort = await freePort();
  const tr = new ModbusTcpTransport({ config: tcpBus(refusedPort), logger: silentLogger() });
  await tr.start();
  t.teardown(() => tr.stop());
  const first = await failsReadably(t, tr.read(1, 'holding', 0, 2), 'GW_ERR_MODBUS_CONNECT', 'TCP refused');
  t.match(first.message, `127.0.0.1:${refusedPort}`, 'names the endpoint');
  await failsReadably(t, tr.read(1, 'holding', 0, 2), 'GW_ERR_MODBUS_CONNECT', 'TCP refused, while backing off');

  const cases: [string, (s: net.Socket, d: Buffer) => void, ErrorCode][] = [
    ['timeout', () => undefined, 'GW_ERR_MODBUS_TIMEOUT'],
    ['reset', (s) => s.resetAndDestroy(), 'GW_ERR_MODBUS_CONNECT'],
    ['garbled', (s) => s.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')), 'GW_ERR_MODBUS_IO'],
    // MBAP echo of the transaction id, protocol 0, length 3, unit, FC|0x80, exception 2 (illegal data address).
    ['exception', (s, d) => s.write(Buffer.from([d[0] as number, d[1] as number, 0, 0, 0, 3, d[6] as number, (d[7] as number) | 0x80, 2])), 'GW_ERR_MODBUS_EXCEPTION'],
  ];
  for (const [label, behave, code] of cases) {
    const port = await rawServer(t, behave);
    const x = new ModbusTcpTransport({ config: tcpBus(port), logger: silentLogger() });
    await x.start();
    t.teardown(() => x.stop());
    const e = await failsReadably(t, x.read(7, 'holding', 40, 2), code, `TCP ${label}`);
    if (code !== 'GW_ERR_MODBUS_CONNECT') t.match(e.message, /unit 7 holding @40×2/, `TCP ${label}: names unit and registers`);
  }
});

t.test('Modbus TCP refused, as the hub sees it: the device.down event and the log line', async (t) => {
  const profile = (await loadProfileFile(path.join(PROFILES_DIR, 'flood-level-sensor.json'))) as ModbusProfile;
  const tr = new ModbusTcpTransport({ config: tcpBus(await freePort()), logger: silentLogger() });
  await tr.start();
  const { logger, lines } = captureLogger('debug');
  const events: GatewayEvent[] = [];
  const poller = new DevicePoller({ device: { id: 'flood-1', bus: 'lan', profile: profile.model, unitId: 1, enabled: true }, profile, transport: tr, logger, onReadings: () => undefined, onEvent: (e) => events.push(e) });
  await poller.start();
  t.teardown(async () => {
    await poller.stop();
    await tr.stop();
  });
  const down = (await until(() => events.find((e) => e.type === 'device.down'), 'device.down', 10_000)) as GatewayEvent;
  readable(t, down.message, 'device.down event');
  t.match(down.message, /device flood-1 \(unit 1 on bus lan\) stopped answering: cannot connect to Modbus TCP 127\.0\.0\.1:\d+/);
  for (const l of lines) readable(t, JSON.stringify(l), `log line ${l.msg}`);
});

t.test('Modbus RTU on a serial line: open failure, timeout, port gone, garbled (CRC, short, wrong unit), exception', async (t) => {
  const rig = await rtuRig();
  t.teardown(async () => {
    await rig.transport.stop();
    rig.line.close();
  });
  await failsReadably(t, openSerialPort({ path: '/dev/ttyIOC-EDGE-NOPE', baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 }), 'GW_ERR_SERIAL_OPEN', 'serial open refused');
  rig.line.silent(true, 1);
  await failsReadably(t, rig.transport.read(1, 'input', 0, 2), 'GW_ERR_MODBUS_TIMEOUT', 'RTU timeout');
  rig.line.silent(false, 1);
  for (const [fault, code] of [[{ kind: 'crc' }, 'GW_ERR_MODBUS_CRC'], [{ kind: 'short' }, 'GW_ERR_MODBUS_FRAME'], [{ kind: 'wrong-unit', unit: 9 }, 'GW_ERR_MODBUS_WRONG_UNIT'], [{ kind: 'exception', code: 2 }, 'GW_ERR_MODBUS_EXCEPTION'], [{ kind: 'garbage' }, /GW_ERR_MODBUS_(CRC|FRAME|TIMEOUT)/]] as const) {
    rig.line.inject(1, fault);
    await failsReadably(t, rig.transport.read(1, 'input', 0, 2), code, `RTU ${fault.kind}`);
    await until(async () => rig.transport.read(1, 'input', 0, 2).catch(() => null), `RTU answers again after ${fault.kind}`);
  }
  rig.hub.unplug(rig.path);
  await until(() => rig.events.find((e) => e.type === 'bus.down'), 'bus.down');
  await failsReadably(t, rig.transport.read(1, 'input', 0, 2), /GW_ERR_SERIAL_(PORT_GONE|OPEN)/, 'RTU port gone');
  for (const e of rig.events) readable(t, e.message, `RTU event ${e.type}`);
});

t.test('Modbus RTU over TCP: refused, timeout, reset, garbled, exception', async (t) => {
  const config = (port: number): ModbusRtuTcpBusConfig => ({ id: 'converter', type: 'modbus-rtu-tcp', host: '127.0.0.1', port, baudRate: 19200, timeoutMs: 150, retries: 0, interFrameDelayMs: 0, reconnectMinMs: 50, reconnectMaxMs: 200 });
  const events: GatewayEvent[] = [];
  const make = async (port: number): Promise<ModbusRtuTransport> => {
    const tr = new ModbusRtuTransport({ config: config(port), logger: silentLogger(), openPort: openSerialPort, onEvent: (e) => events.push(e) });
    await tr.start();
    t.teardown(() => tr.stop());
    return tr;
  };
  const refusedPort = await freePort();
  const refused = await make(refusedPort);
  const e = await failsReadably(t, refused.read(1, 'input', 0, 2), 'GW_ERR_MODBUS_CONNECT', 'RTU/TCP refused');
  t.match(e.message, `127.0.0.1:${refusedPort}`);
  await failsReadably(t, refused.read(1, 'input', 0, 2), 'GW_ERR_MODBUS_CONNECT', 'RTU/TCP refused, while backing off');

  const line = new RtuSlaveLine(new Map<number, SimDevice>([[1, new EastronSdm120()], [2, new CabinetEnvironment()]]));
  const server = new RtuTcpServer(line);
  await server.start();
  t.teardown(async () => {
    line.close();
    await server.stop();
  });
  const tr = await make(server.port);
  line.silent(true, 1);
  await failsReadably(t, tr.read(1, 'input', 0, 2), 'GW_ERR_MODBUS_TIMEOUT', 'RTU/TCP timeout');
  line.silent(false, 1);
  line.inject(1, { kind: 'crc' });
  await failsReadably(t, tr.read(1, 'input', 0, 2), 'GW_ERR_MODBUS_CRC', 'RTU/TCP garbled');
  line.inject(1, { kind: 'exception', code: 2 });
  await failsReadably(t, tr.read(1, 'input', 0, 2), 'GW_ERR_MODBUS_EXCEPTION', 'RTU/TCP exception');

  const resetPort = await rawServer(t, (s) => s.resetAndDestroy());
  const reset = await make(resetPort);
  await failsReadably(t, reset.read(1, 'input', 0, 2), /GW_ERR_(SERIAL_PORT_GONE|MODBUS_CONNECT|MODBUS_IO)/, 'RTU/TCP reset');
  for (const ev of events) readable(t, ev.message, `RTU/TCP event ${ev.type}`);
});

t.test('serial line-protocol sensor: open refused, corrupted and noisy lines, silence, port gone', async (t) => {
  const profile = (await loadProfileFile(path.join(PROFILES_DIR, 'water-level-radar.json'))) as SerialLineProfile;
  const fast = { ...profile, serialLine: { ...profile.serialLine, staleAfterMs: 300 } } as SerialLineProfile;
  const port = `/dev/ttyREADABLE${process.pid}`;
  const hub = new MockSerialHub();
  const sim = new WaterLevelRadarSim(20, { corruptEvery: 2, noiseEvery: 3 });
  hub.connect(port, sim);
  const events: GatewayEvent[] = [];
  const { logger, lines } = captureLogger('debug');
  const bus: SerialLineBusConfig = { id: 'com1', type: 'serial-line', path: port, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1, reconnectMinMs: 50, reconnectMaxMs: 200 };
  const dev = new SerialLineDevice({ device: { id: 'river-1', bus: 'com1', profile: fast.model, unitId: 1, enabled: true }, profile: fast, bus, openPort: hub.factory, logger, onReadings: () => undefined, onEvent: (e) => events.push(e) });
  await dev.start();
  t.teardown(async () => {
    sim.stop();
    await dev.stop();
  });
  sim.start();
  await until(() => events.some((e) => e.code === 'GW_ERR_LINE_CHECKSUM'), 'a checksum fault');
  sim.silent(true);
  await until(() => events.some((e) => e.code === 'GW_ERR_LINE_SILENT'), 'the sensor is silent', 10_000);
  sim.silent(false);
  await until(() => dev.health === 'up', 'lines again');
  hub.unplug(port);
  await until(() => events.some((e) => e.code === 'GW_ERR_SERIAL_PORT_GONE' || e.code === 'GW_ERR_SERIAL_OPEN'), 'the port went away', 10_000);
  for (const e of events) readable(t, e.message, `serial line event ${e.type} ${e.code ?? ''}`);
  for (const l of lines) readable(t, JSON.stringify(l), `serial line log line ${l.msg}`);
});

t.test('OPC UA: refused, reset, garbled, no answer', async (t) => {
  const home = mkdtempSync(path.join(tmpdir(), 'ioc-edge-readable-'));
  process.env.HOME = home;
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const { OpcuaLine } = await import('../opcua-line.js');
  const shipped = (await loadProfileFile(path.join(PROFILES_DIR, 'camera-health-opcua.json'))) as OpcuaProfile;
  // A short keep-alive (100 ms × 10): the transport timeout, and so how long a server that never answers takes to be given up, follows it.
  const camera = { ...shipped, opcua: { ...shipped.opcua, publishingIntervalMs: 100 } } as OpcuaProfile;
  const ports: [string, number][] = [
    ['refused', await freePort()],
    ['reset', await rawServer(t, (s) => s.resetAndDestroy())],
    ['garbled', await rawServer(t, (s) => s.write(Buffer.from('ERRF\x10\x00\x00\x00garbage-garbage-garbage')))],
    ['no answer', await rawServer(t, () => undefined)],
  ];
  for (const [label, port] of ports) {
    const config: OpcuaBusConfig = {
      id: `ua-${label.replace(' ', '-')}`, type: 'opcua', endpointUrl: `opc.tcp://127.0.0.1:${port}/UA/Camera`, securityMode: 'None', securityPolicy: 'None', trustList: [],
      pkiDir: path.join(home, 'pki'), devMode: false, timeoutMs: 500, reconnectMinMs: 100, reconnectMaxMs: 300,
    };
    const events: GatewayEvent[] = [];
    const { logger, lines } = captureLogger('info');
    const line = new OpcuaLine({ config, logger, onEvent: (e) => events.push(e) });
    line.addDevice({ device: { id: 'cam-1', bus: config.id, profile: camera.model, unitId: 1, enabled: true }, profile: camera, logger, onReadings: () => undefined, onEvent: (e) => events.push(e) });
    await line.start();
    await until(() => events.some((e) => e.type === 'bus.down'), `OPC UA ${label}: bus.down`, 20_000);
    await line.stop();
    for (const e of events) {
      readable(t, e.message, `OPC UA ${label}: ${e.type}`);
      t.match(e.code, /GW_ERR_OPCUA_(CONNECT|SESSION)/, `OPC UA ${label}: ${e.type} code`);
    }
    for (const l of lines) readable(t, JSON.stringify(l), `OPC UA ${label}: log line ${l.msg}`);
  }
});
