/**
 * The Modbus TCP transport (own MBAP framing): every function code against
 * modbus-serial's ServerTCP (an independent implementation), and the bad
 * cases against a scripted raw MBAP server: exception responses, replies for
 * another unit, a non-MBAP byte stream, late replies to timed-out requests,
 * replies split across packets, dropped and refused connections, stop.
 */
import net from 'node:net';
import { once } from 'node:events';
import t, { type Test } from 'tap';
import { silentLogger } from '../../../../lib/index.js';
import { CabinetEnvironment } from '../../../../scripts/sim/rtu-devices.js';
import { ModbusTcpSimulator } from '../../../../scripts/sim/modbus-tcp-sim.js';
import { freePort } from '../../../../scripts/sim/free-port.js';
import type { ModbusTcpBusConfig } from '../../../config.js';
import { ModbusTcpTransport } from '../modbus-tcp.js';
import { encodeWriteAdu, parseResponsePdu } from '../modbus-pdu.js';

function bus(port: number, extra: Partial<ModbusTcpBusConfig> = {}): ModbusTcpBusConfig {
  return { id: 'tcp-1', type: 'modbus-tcp', host: '127.0.0.1', port, timeoutMs: 300, retries: 0, reconnectMinMs: 200, reconnectMaxMs: 1000, ...extra };
}

/** A raw MBAP server: `reply(request, socket)` decides what goes back (nothing, bytes, or a close). */
async function rawServer(t: Test, reply: (req: Buffer, socket: net.Socket) => void): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 7 && buf.length >= 6 + buf.readUInt16BE(4)) {
        const n = 6 + buf.readUInt16BE(4);
        reply(buf.subarray(0, n), socket);
        buf = buf.subarray(n);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

/** A register reply to a read request: value i at offset i, unless `unit`/`fc` override. */
function registers(req: Buffer, over: { unit?: number; fc?: number; tid?: number } = {}): Buffer {
  const qty = req.readUInt16BE(10);
  const out = Buffer.alloc(9 + 2 * qty);
  out.writeUInt16BE(over.tid ?? req.readUInt16BE(0), 0);
  out.writeUInt16BE(3 + 2 * qty, 4);
  out[6] = over.unit ?? (req[6] as number);
  out[7] = over.fc ?? (req[7] as number);
  out[8] = 2 * qty;
  for (let i = 0; i < qty; i++) out.writeUInt16BE(req.readUInt16BE(8) + i, 9 + 2 * i);
  return out;
}

function transport(t: Test, cfg: ModbusTcpBusConfig): ModbusTcpTransport {
  const tr = new ModbusTcpTransport({ config: cfg, logger: silentLogger() });
  t.teardown(() => tr.stop());
  void tr.start();
  return tr;
}

t.test('every function code against modbus-serial ServerTCP', async (t) => {
  const cabinet = new CabinetEnvironment();
  const sim = new ModbusTcpSimulator(new Map([[2, cabinet]]), { tickMs: 60_000 });
  await sim.start();
  t.teardown(() => sim.stop());
  const tr = transport(t, bus(sim.port));
  t.same(await tr.read(2, 'input', 0, 7), Array.from({ length: 7 }, (_, i) => cabinet.bank.word('input', i)), 'FC 4');
  t.same(await tr.read(2, 'holding', 100, 1), [350], 'FC 3');
  cabinet.door = true;
  cabinet.tick(0);
  t.same((await tr.read(2, 'discrete', 0, 3))[0], true, 'FC 2 (door contact)');
  await tr.write(2, 'coil', 0, [true]);
  t.equal(cabinet.bank.bit('coil', 0), true, 'FC 5');
  t.same(await tr.read(2, 'coil', 0, 1), [true], 'FC 1');
  await tr.write(2, 'holding', 100, [425]);
  t.equal(cabinet.bank.word('holding', 100), 425, 'FC 6');
  await tr.write(2, 'holding', 101, [7, 8], { mode: 'multiple' });
  t.same([cabinet.bank.word('holding', 101), cabinet.bank.word('holding', 102)], [7, 8], 'FC 16');
  await tr.write(2, 'coil', 3, [true, false, true]);
  t.same([3, 4, 5].map((a) => cabinet.bank.bit('coil', a)), [true, false, true], 'FC 15');
  t.same(await tr.read(2, 'coil', 0, 6), [true, false, false, true, false, true], 'FC 1 cut to the quantity asked');
  await t.rejects(tr.write(2, 'holding', 0, [1, 2], { mode: 'single' }), { code: 'GW_ERR_WRITE_VALUE' }, 'single mode refuses two values before sending');
  // Unit 9 is not behind this "gateway": exception 0x0B (gateway target failed to respond) counts as a timeout.
  await t.rejects(tr.read(9, 'holding', 0, 1), { code: 'GW_ERR_MODBUS_TIMEOUT', message: /exception 11/ });
  t.same(await tr.read(2, 'holding', 100, 1), [425], 'still answering afterwards');
});

t.test('exception responses, wrong unit, wrong function, non-MBAP bytes', async (t) => {
  let mode = 'ok';
  const srv = await rawServer(t, (req, socket) => {
    if (mode === 'exception') socket.write(Buffer.from([req[0] as number, req[1] as number, 0, 0, 0, 3, req[6] as number, (req[7] as number) | 0x80, 2]));
    else if (mode === 'unit') socket.write(registers(req, { unit: 9 }));
    else if (mode === 'fc') socket.write(registers(req, { fc: 4 }));
    else if (mode === 'garbage') socket.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
    else socket.write(registers(req));
  });
  const tr = transport(t, bus(srv.port));
  t.same(await tr.read(1, 'holding', 10, 3), [10, 11, 12]);
  mode = 'exception';
  await t.rejects(tr.read(1, 'holding', 10, 3), { code: 'GW_ERR_MODBUS_EXCEPTION', message: /exception 2 \(illegal data address\)/, context: { modbusCode: 2, unitId: 1, address: 10 } });
  t.equal(srv.connections(), 1, 'an exception is an answer: the connection stays');
  mode = 'unit';
  await t.rejects(tr.read(1, 'holding', 10, 3), { code: 'GW_ERR_MODBUS_IO', message: /unit 9 to a request for unit 1/ });
  mode = 'fc';
  await t.rejects(tr.read(1, 'holding', 10, 3), { code: 'GW_ERR_MODBUS_IO', message: /function 4, the request was function 3/ });
  mode = 'garbage';
  await t.rejects(tr.read(1, 'holding', 10, 3), { code: 'GW_ERR_MODBUS_IO', message: /not a Modbus TCP frame/ });
  mode = 'ok';
  t.same(await tr.read(1, 'holding', 10, 3), [10, 11, 12], 'reconnected after the stream went bad');
  t.ok(srv.connections() >= 2, 'a new connection');
});

t.test('a late reply to a timed-out request is discarded; split and coalesced packets', async (t) => {
  let held: Buffer | null = null;
  let mode = 'silent';
  const srv = await rawServer(t, (req, socket) => {
    if (mode === 'silent') held = registers(req);
    else if (mode === 'late+current') {
      // The stale reply and the current one in one packet: only the current one counts.
      socket.write(Buffer.concat([held as Buffer, registers(req)]));
    } else {
      const r = registers(req);
      socket.write(r.subarray(0, 5));
      setTimeout(() => socket.write(r.subarray(5)), 20);
    }
  });
  const tr = transport(t, bus(srv.port, { timeoutMs: 100 }));
  await t.rejects(tr.read(1, 'input', 0, 2), { code: 'GW_ERR_MODBUS_TIMEOUT', message: /no answer from unit 1 input @0×2/ });
  mode = 'late+current';
  t.same(await tr.read(1, 'input', 5, 2), [5, 6], 'answer to the current request, not the stale one');
  mode = 'split';
  t.same(await tr.read(1, 'input', 7, 4), [7, 8, 9, 10], 'a reply split across packets');
  t.equal(srv.connections(), 1, 'a timeout does not reconnect');
});

t.test('a dropped connection fails the running request and reconnects; a refused one backs off', async (t) => {
  let drop = true;
  const srv = await rawServer(t, (req, socket) => {
    if (drop) socket.destroy();
    else socket.write(registers(req));
  });
  const tr = transport(t, bus(srv.port));
  await t.rejects(tr.read(1, 'holding', 0, 1), { code: 'GW_ERR_MODBUS_CONNECT', message: new RegExp(`127\\.0\\.0\\.1:${srv.port}`) });
  drop = false;
  t.same(await tr.read(1, 'holding', 0, 1), [0], 'reconnected');

  const dead = transport(t, bus(await freePort(), { reconnectMinMs: 5000, reconnectMaxMs: 5000 }));
  const first = await dead.read(1, 'holding', 0, 1).catch((e: unknown) => e);
  t.match(first, { code: 'GW_ERR_MODBUS_CONNECT', message: /^cannot connect to Modbus TCP 127\.0\.0\.1:\d+: connect ECONNREFUSED/ });
  t.notMatch((first as Error).message, /retrying in/, 'the error does not promise a retry (a one-shot probe makes none; the log line says when)');
  const started = Date.now();
  const second = await dead.read(1, 'holding', 0, 1).catch((e: unknown) => e);
  t.equal(second, first, 'while backing off, requests fail with the same error without a new attempt');
  t.ok(Date.now() - started < 1000, 'and at once');
});

t.test('stop fails what is queued, waits for the running request, and closes', async (t) => {
  let received: () => void = () => undefined;
  const onWire = new Promise<void>((resolve) => (received = resolve));
  const srv = await rawServer(t, (req, socket) => {
    received();
    setTimeout(() => socket.write(registers(req)), 50);
  });
  const tr = new ModbusTcpTransport({ config: bus(srv.port), logger: silentLogger() });
  await tr.start();
  const running = tr.read(1, 'holding', 1, 1);
  await onWire;
  const queued = tr.read(1, 'holding', 2, 1).catch((e: unknown) => e);
  await tr.stop();
  t.same(await running, [1], 'the running request finished');
  t.match(await queued, { code: 'GW_ERR_MODBUS_IO', message: /stopped/ });
  await t.rejects(tr.read(1, 'holding', 1, 1), { code: 'GW_ERR_MODBUS_IO', message: /stopped/ });
});

t.test('PDU encoding and parsing', async (t) => {
  const fc15 = encodeWriteAdu(7, 1, 15, 19, [true, false, true, true, false, false, true, true, true, false]);
  t.same([...fc15.subarray(7)], [15, 0, 19, 0, 10, 2, 0xcd, 0x01], 'FC 15 packs bits LSB first (§6.11 example)');
  t.same([...encodeWriteAdu(1, 1, 5, 172, [true]).subarray(7)], [5, 0, 172, 0xff, 0x00], 'FC 5 on = 0xFF00 (§6.5)');
  t.same([...encodeWriteAdu(1, 1, 16, 1, [0x000a, 0x0102]).subarray(4)], [0, 11, 1, 16, 0, 1, 0, 2, 4, 0, 10, 1, 2], 'FC 16 with MBAP length (§6.12)');
  t.throws(() => parseResponsePdu(Buffer.from([3, 4, 0, 1]), 0, 4, 3, 2), /4 data bytes, expected 4|carries 4 data bytes/, 'short register reply');
  t.throws(() => parseResponsePdu(Buffer.from([0x83]), 0, 1, 3, 1), /without a code/);
  t.same(parseResponsePdu(Buffer.from([2, 1, 0b101]), 0, 3, 2, 3), [true, false, true]);
});
