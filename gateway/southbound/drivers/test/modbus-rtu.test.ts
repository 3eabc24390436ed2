import t, { type Test } from 'tap';
import { isIocError } from '../../../../contract/index.js';
import { interFrameSilenceMs, bitsPerChar } from '../modbus-rtu.js';
import { crc16, expectedReplyLength, frameLengthAt } from '../rtu-port.js';
import { captureLogger, WARN } from './log-capture.js';
import { rtuRig, until, type RtuRig } from './rtu-harness.js';

async function rig(t: Test, opts: Parameters<typeof rtuRig>[0] = {}): Promise<RtuRig> {
  const r = await rtuRig(opts);
  t.teardown(async () => {
    await r.transport.stop();
    r.line.close();
  });
  return r;
}

/** float32 from two big-endian words. */
function f32(words: number[], i: number): number {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(words[i] as number, 0);
  b.writeUInt16BE(words[i + 1] as number, 2);
  return b.readFloatBE(0);
}

t.test('timing constants follow Modbus over Serial Line v1.02 §2.5.1.1', async (t) => {
  t.equal(bitsPerChar({ dataBits: 8, parity: 'even', stopBits: 1 }), 11);
  t.equal(bitsPerChar({ dataBits: 8, parity: 'none', stopBits: 2 }), 11);
  t.equal(bitsPerChar({ dataBits: 8, parity: 'none', stopBits: 1 }), 10);
  t.equal(Math.round(interFrameSilenceMs(9600) * 1000), 4010, '3.5 × 11 bits at 9600 baud');
  t.equal(interFrameSilenceMs(38400), 1.75, 'fixed 1.75 ms above 19200 baud');
  t.equal(crc16(Buffer.from('123456789')), 0x4b37, 'CRC-16/MODBUS check value');
  t.equal(expectedReplyLength(Buffer.from([1, 3, 0, 0, 0, 10, 0, 0])), 25);
  t.equal(expectedReplyLength(Buffer.from([1, 1, 0, 0, 0, 9, 0, 0])), 7);
  t.equal(frameLengthAt(Buffer.from([1, 0x83, 2]), 0), 5, 'exception reply');
});

t.test('reads every table and writes with FC 5/6/15/16 over the mock serial port', async (t) => {
  const { transport, meter, cabinet, hub, path, line } = await rig(t);
  const regs = (await transport.read(1, 'input', 0, 38)) as number[];
  t.equal(f32(regs, 0), meter.served.voltage, 'float32 voltage decoded from the words served');
  t.equal(f32(regs, 6), meter.served.current);
  cabinet.door = true;
  cabinet.tick(0);
  t.same(await transport.read(2, 'discrete', 0, 5), [true, false, false, false, false]);
  t.same(await transport.read(2, 'input', 0, 2), [280, 455]);
  await transport.write(2, 'coil', 0, [true]);
  t.equal(cabinet.bank.bit('coil', 0), true, 'FC 5');
  await transport.write(2, 'coil', 0, [false, true], { mode: 'auto' });
  t.same([cabinet.bank.bit('coil', 0), cabinet.bank.bit('coil', 1)], [false, true], 'FC 15');
  t.same(await transport.read(2, 'coil', 0, 2), [false, true]);
  await transport.write(2, 'holding', 100, [400]);
  t.equal(cabinet.bank.word('holding', 100), 400, 'FC 6');
  await transport.write(1, 'holding', 20, [0x4120, 0x0000], { mode: 'multiple' });
  t.equal(f32([meter.bank.word('holding', 20), meter.bank.word('holding', 21)], 0), 10, 'FC 16');
  await transport.write(2, 'holding', 100, [401], { mode: 'multiple' });
  t.equal(cabinet.bank.word('holding', 100), 401, 'FC 16 for one register when the profile says multiple');
  await t.rejects(transport.write(2, 'holding', 100, [1, 2], { mode: 'single' }), { code: 'GW_ERR_WRITE_VALUE' });
  t.same(hub.openOptions.get(path), { path, baudRate: 19200, parity: 'even', dataBits: 8, stopBits: 1 }, 'serial settings from the bus config');
  t.equal(line.crcErrors, 0, 'every request frame had a valid CRC');
});

t.test('concurrent requests from many devices are serialised: all succeed', async (t) => {
  const { transport, line } = await rig(t);
  const reads = Array.from({ length: 30 }, (_, i) => transport.read(i % 2 === 0 ? 1 : 2, 'input', 0, 2));
  const results = await Promise.all(reads);
  t.equal(results.length, 30);
  t.equal((line.answered.get(1) ?? 0) + (line.answered.get(2) ?? 0), 30);
});

t.test('bad input: each fault gives its error code, and the line keeps working', async (t) => {
  const { transport, line } = await rig(t);
  const code = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
      return 'ok';
    } catch (err) {
      return isIocError(err) ? err.code : String(err);
    }
  };
  line.inject(1, { kind: 'crc' });
  t.equal(await code(transport.read(1, 'input', 0, 2)), 'GW_ERR_MODBUS_CRC', 'corrupted CRC');
  line.inject(1, { kind: 'exception', code: 2 });
  const ex = await transport.read(1, 'input', 0, 2).catch((e: unknown) => e);
  t.match(ex, { code: 'GW_ERR_MODBUS_EXCEPTION', message: /exception 2 \(illegal data address\)/, context: { modbusCode: 2, bus: 'rs485', unitId: 1 } });
  line.inject(1, { kind: 'short', bytes: 4 });
  t.equal(await code(transport.read(1, 'input', 0, 2)), 'GW_ERR_MODBUS_FRAME', 'short frame');
  line.inject(1, { kind: 'wrong-unit', unit: 7 });
  const wrong = await transport.read(1, 'input', 0, 2).catch((e: unknown) => e);
  t.match(wrong, { code: 'GW_ERR_MODBUS_WRONG_UNIT', message: /asked unit 1, a valid reply came from unit 7/ });
  line.inject(1, { kind: 'garbage' });
  t.match(await code(transport.read(1, 'input', 0, 2)), /GW_ERR_MODBUS_(CRC|FRAME)/, 'garbage instead of a reply');
  line.inject(1, { kind: 'noise-prefix' });
  t.equal((await transport.read(1, 'input', 0, 2)).length, 2, 'a noise byte before the reply is skipped');
  line.garbage();
  await new Promise((r) => setTimeout(r, 20));
  t.equal((await transport.read(2, 'input', 0, 1)).length, 1, 'garbage between transactions is ignored');
  t.match(transport.stats, { crcErrors: 2, shortFrames: 1, wrongUnit: 1 }, 'bad CRC and the garbage reply count as CRC errors');
  t.ok(transport.stats.noiseBytes >= 6, `noise counted (${transport.stats.noiseBytes} bytes)`);
  line.silent(true, 1);
  t.equal(await code(transport.read(1, 'input', 0, 2)), 'GW_ERR_MODBUS_TIMEOUT', 'silent unit');
  t.equal((await transport.read(2, 'input', 0, 1)).length, 1, 'the other unit answers right after');
});

t.test('retries: a one-off CRC error is retried, exceptions and writes are not', async (t) => {
  const { transport, line } = await rig(t, { bus: { retries: 2 } });
  line.inject(1, { kind: 'crc' });
  t.equal((await transport.read(1, 'input', 0, 2)).length, 2, 'second attempt succeeds');
  t.equal(transport.stats.retries, 1);
  line.inject(1, { kind: 'exception', code: 3 });
  await t.rejects(transport.read(1, 'input', 0, 2), { code: 'GW_ERR_MODBUS_EXCEPTION' });
  t.equal(transport.stats.retries, 1, 'an exception is an answer: not retried');
  line.inject(2, { kind: 'crc' });
  await t.rejects(transport.write(2, 'holding', 100, [1]), { code: 'GW_ERR_MODBUS_CRC' });
  t.equal(transport.stats.retries, 1, 'a write is never retried');
  line.silent(true, 1);
  await t.rejects(transport.read(1, 'input', 0, 2, { retries: 0, timeoutMs: 30 }), { code: 'GW_ERR_MODBUS_TIMEOUT' });
  t.equal(transport.stats.retries, 1, 'per-request retries override the bus');
});

t.test('the port vanishes and comes back: bus.down / bus.up, reads fail fast, then work', async (t) => {
  const { logger, lines } = captureLogger();
  const { transport, line, hub, path, events } = await rig(t, { logger });
  t.equal((await transport.read(1, 'input', 0, 2)).length, 2);
  hub.unplug(path);
  await until(() => events.find((e) => e.type === 'bus.down'), 'bus.down');
  t.match(events.find((e) => e.type === 'bus.down'), { code: 'GW_ERR_SERIAL_PORT_GONE', severity: 'warning', data: { bus: 'rs485', endpoint: path } });
  t.ok(lines.some((l) => l.level === WARN && l.code === 'GW_ERR_SERIAL_PORT_GONE' && l.msg === 'Modbus RTU line lost'), 'warn log line with the code');
  await t.rejects(transport.read(1, 'input', 0, 2), { code: /GW_ERR_SERIAL_(PORT_GONE|OPEN)/ });
  hub.replug(path);
  const regs = await until(async () => transport.read(1, 'input', 0, 2).catch(() => null), 'reads after replug');
  t.equal(regs?.length, 2);
  t.match(events.find((e) => e.type === 'bus.up'), { severity: 'info', data: { bus: 'rs485' } });
  t.equal(transport.stats.reopenings, 1);
  t.ok((line.answered.get(1) ?? 0) >= 2);
});

t.test('a port missing at start: the transport starts, reports once, and opens when it appears', async (t) => {
  const { MockSerialHub } = await import('../../../../scripts/sim/serial-adapters.js');
  const { ModbusRtuTransport } = await import('../modbus-rtu.js');
  const { rtuBus, mockPath } = await import('./rtu-harness.js');
  const { RtuSlaveLine } = await import('../../../../scripts/sim/rtu-slave.js');
  const { EastronSdm120 } = await import('../../../../scripts/sim/rtu-devices.js');
  const { silentLogger } = await import('../../../../lib/index.js');
  const path = mockPath();
  const hub = new MockSerialHub();
  const events: { type: string; code?: string }[] = [];
  const transport = new ModbusRtuTransport({ config: rtuBus(path), logger: silentLogger(), openPort: hub.factory, onEvent: (e) => events.push(e) });
  t.teardown(() => transport.stop());
  await transport.start();
  await t.rejects(transport.read(1, 'input', 0, 2), { code: 'GW_ERR_SERIAL_OPEN' });
  await new Promise((r) => setTimeout(r, 300));
  await transport.read(1, 'input', 0, 2).catch(() => undefined);
  t.equal(events.filter((e) => e.type === 'bus.down').length, 1, 'one bus.down, not one per attempt');
  hub.connect(path, new RtuSlaveLine(new Map([[1, new EastronSdm120()]])));
  t.equal((await until(async () => transport.read(1, 'input', 0, 2).catch(() => null), 'open after the port appears'))?.length, 2);
});

t.test('inter-frame silence: a slave timing the wire at 9600 baud never sees a request too early', async (t) => {
  const { transport, line } = await rig(t, { bus: { baudRate: 9600, timeoutMs: 100 }, sim: { baudRate: 9600 } });
  t.ok(transport.silenceMs > 4 && transport.silenceMs < 4.1, `t3.5 = ${transport.silenceMs.toFixed(3)} ms`);
  const reads = Array.from({ length: 20 }, (_, i) => transport.read(i % 2 === 0 ? 1 : 2, 'input', 0, i % 2 === 0 ? 38 : 7));
  t.equal((await Promise.all(reads)).length, 20, 'large reads at 9600 baud do not time out: frame time is added to the timeout');
  t.equal(line.silenceViolations, 0, 'no request started within 3.5 characters of the previous reply');
});

t.test('extra inter-frame delay for slow converters is added to t3.5', async (t) => {
  const { transport } = await rig(t, { bus: { baudRate: 9600, interFrameDelayMs: 20 } });
  t.ok(transport.silenceMs > 24 && transport.silenceMs < 24.1);
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) await transport.read(2, 'input', 0, 1);
  t.ok(performance.now() - t0 >= 4 * 24, 'five transactions keep four gaps of at least t3.5 + 20 ms');
});
