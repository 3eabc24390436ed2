import t, { type Test } from 'tap';
import net from 'node:net';
import mb from 'modbus-serial';
import type { GatewayEvent } from '../../../../contract/index.js';
import { silentLogger } from '../../../../lib/index.js';
import { CabinetEnvironment, EastronSdm120 } from '../../../../scripts/sim/rtu-devices.js';
import { RtuSlaveLine } from '../../../../scripts/sim/rtu-slave.js';
import { RtuTcpServer } from '../../../../scripts/sim/rtu-tcp-server.js';
import type { SimDevice } from '../../../../scripts/sim/field-devices.js';
import type { ModbusRtuTcpBusConfig } from '../../../config.js';
import { openSerialPort } from '../byte-link.js';
import { ModbusRtuTransport } from '../modbus-rtu.js';
import { until } from './rtu-harness.js';

async function converter(t: Test): Promise<{ server: RtuTcpServer; line: RtuSlaveLine; cabinet: CabinetEnvironment }> {
  const cabinet = new CabinetEnvironment();
  const line = new RtuSlaveLine(new Map<number, SimDevice>([[1, new EastronSdm120()], [2, cabinet]]));
  const server = new RtuTcpServer(line);
  await server.start();
  t.teardown(async () => {
    line.close();
    await server.stop();
  });
  return { server, line, cabinet };
}

function transport(t: Test, port: number, events: GatewayEvent[] = [], backoff = { reconnectMinMs: 50, reconnectMaxMs: 200 }): ModbusRtuTransport {
  const config: ModbusRtuTcpBusConfig = { id: 'converter', type: 'modbus-rtu-tcp', host: '127.0.0.1', port, baudRate: 19200, timeoutMs: 100, retries: 0, interFrameDelayMs: 0, ...backoff };
  const tr = new ModbusRtuTransport({ config, logger: silentLogger(), openPort: openSerialPort, onEvent: (e) => events.push(e) });
  t.teardown(() => tr.stop());
  return tr;
}

t.test('the simulator speaks what modbus-serial connectTelnet speaks: raw RTU over TCP', async (t) => {
  const { server } = await converter(t);
  const client = new mb.default();
  await client.connectTelnet('127.0.0.1', { port: server.port });
  t.teardown(() => new Promise<void>((r) => client.close(() => r())));
  client.setTimeout(500);
  client.setID(2);
  t.same((await client.readInputRegisters(0, 2)).data, [280, 455]);
});

t.test('reads and writes through a serial device server', async (t) => {
  const { server, cabinet } = await converter(t);
  const tr = transport(t, server.port);
  await tr.start();
  t.same(await tr.read(2, 'input', 0, 2), [280, 455]);
  await tr.write(2, 'coil', 1, [true]);
  t.equal(cabinet.bank.bit('coil', 1), true);
});

t.test('a silent device behind the converter never resets the connection for the others', async (t) => {
  const { server, line } = await converter(t);
  const tr = transport(t, server.port);
  await tr.start();
  line.silent(true, 1);
  for (let i = 0; i < 5; i++) {
    await t.rejects(tr.read(1, 'input', 0, 2), { code: 'GW_ERR_MODBUS_TIMEOUT' });
    t.equal((await tr.read(2, 'input', 0, 1)).length, 1, `unit 2 answers after timeout ${i + 1}`);
  }
  t.equal(server.connections, 1, 'still the first connection');
  t.equal(tr.stats.timeouts, 5);
});

t.test('the converter drops the connection: bus.down, reconnect, bus.up', async (t) => {
  const { server } = await converter(t);
  const events: GatewayEvent[] = [];
  const tr = transport(t, server.port, events);
  await tr.start();
  await tr.read(2, 'input', 0, 1);
  server.dropConnections();
  await until(() => events.find((e) => e.type === 'bus.down'), 'bus.down');
  t.match(events.find((e) => e.type === 'bus.down'), { code: 'GW_ERR_MODBUS_CONNECT', data: { bus: 'converter' } });
  t.equal((await until(async () => tr.read(2, 'input', 0, 1).catch(() => null), 'read after reconnect'))?.length, 1);
  t.ok(events.find((e) => e.type === 'bus.up'));
  t.equal(server.connections, 2);
});

t.test('nobody listening: GW_ERR_MODBUS_CONNECT, fast failures while backing off', async (t) => {
  const { server } = await converter(t);
  const port = server.port;
  await server.stop();
  const events: GatewayEvent[] = [];
  const tr = transport(t, port, events, { reconnectMinMs: 60_000, reconnectMaxMs: 60_000 });
  await tr.start();
  await t.rejects(tr.read(1, 'input', 0, 1), { code: 'GW_ERR_MODBUS_CONNECT' });
  // A listener appears now: a new attempt would reach it. While backing off (60 s) none is made.
  const late = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => late.listen(port, '127.0.0.1', resolve));
  t.teardown(() => late.close());
  let accepted = 0;
  late.on('connection', () => accepted++);
  await new Promise((r) => setTimeout(r, 300));
  await t.rejects(tr.read(1, 'input', 0, 1), { code: 'GW_ERR_MODBUS_CONNECT' }, 'fails at once while backing off…');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(accepted, 0, '…without a new connection attempt');
});
