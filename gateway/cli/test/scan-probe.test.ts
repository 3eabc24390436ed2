/**
 * The technician commands against simulated hardware on real tty devices
 * (socat pty pairs) and a Modbus TCP simulator.
 */
import path from 'node:path';
import { skipUnlessBinary } from '../../../test/support/outside-binary.js';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { CabinetEnvironment, EastronSdm120 } from '../../../scripts/sim/rtu-devices.js';
import { RtuSlaveLine } from '../../../scripts/sim/rtu-slave.js';
import { WaterLevelRadarSim } from '../../../scripts/sim/line-sensors.js';
import { PtyPair, attachToSerialPort } from '../../../scripts/sim/serial-adapters.js';
import { FloodLevelSensor, TrafficSignalController, type SimDevice } from '../../../scripts/sim/field-devices.js';
import { ModbusTcpSimulator } from '../../../scripts/sim/modbus-tcp-sim.js';
import { probe } from '../probe.js';
import { scan } from '../scan.js';
import { parseValue, writePoint } from '../write-point.js';
import { createProgress, etaText } from '../progress.js';

// Missing socat: skipped with the package named, a failure under CI=true (.ci/run installs it).
const socatSkip = skipUnlessBinary('socat', 'socat');

/** Captures a command's output; `tty` makes stderr look like a terminal. */
function io(tty = false): { out: PassThrough; err: PassThrough & { isTTY?: boolean; columns?: number }; text: () => string; errText: () => string } {
  const out = new PassThrough();
  const err = Object.assign(new PassThrough(), tty ? { isTTY: true, columns: 100 } : {});
  let o = '';
  let e = '';
  out.on('data', (d: Buffer) => (o += d.toString()));
  err.on('data', (d: Buffer) => (e += d.toString()));
  return { out, err, text: () => o, errText: () => e };
}

t.test('progress: a redrawn bar on a terminal, plain lines otherwise', async (t) => {
  const tty = io(true);
  const p = createProgress(tty.err, 20, 'units');
  for (let i = 0; i <= 20; i++) p.update(i, i > 5 ? 'found: 1' : '');
  p.end();
  t.match(tty.errText(), /\r\x1b\[2K\[#{0,3}-+\]  0\/20 units/);
  t.match(tty.errText(), /\[#+\] 20\/20 units  found: 1/);
  t.notMatch(tty.errText(), /\n/, 'no new lines on a terminal');
  const plain = io(false);
  const q = createProgress(plain.err, 20, 'units');
  for (let i = 0; i <= 20; i++) q.update(i);
  t.same(plain.errText().trim().split('\n'), ['0/20 units', '2/20 units', '4/20 units', '6/20 units', '8/20 units', '10/20 units', '12/20 units', '14/20 units', '16/20 units', '18/20 units', '20/20 units']);
});

t.test('parseValue', async (t) => {
  t.same([parseValue('true'), parseValue('false'), parseValue('42.5'), parseValue('-3'), parseValue('on')], [true, false, 42.5, -3, 'on']);
});

t.test('Modbus RTU on a tty: scan, probe, write', { skip: socatSkip }, async (t) => {
  const dir = t.testdir();
  const pair = new PtyPair(path.join(dir, 'ttyGW'), path.join(dir, 'ttySIM'));
  await pair.start();
  const cabinet = new CabinetEnvironment();
  const line = new RtuSlaveLine(new Map<number, SimDevice>([[1, new EastronSdm120()], [2, cabinet], [4, new EastronSdm120(0, 4)]]));
  line.inject(4, { kind: 'crc' }, true);
  const simLink = await attachToSerialPort(pair.b, line);
  t.teardown(async () => {
    line.close();
    await simLink.close();
    await pair.kill();
  });
  const serial = ['--serial', pair.a, '--baud', '19200', '--parity', 'even'];

  const s = io(true);
  t.equal(await scan.run([...serial, '--units', '1-6', '--timeout', '40'], s), 0);
  t.match(s.text(), /^ unit  result\n\s+1  answered: holding 0 = 0x0000 \(0\)\n\s+2  answered: holding 0/m);
  t.match(s.text(), /found 2 devices on .*ttyGW at 19200 8E1: units 1, 2/);
  t.match(s.text(), /4  garbled reply \(GW_ERR_MODBUS_CRC\): something answers; check baud rate/, 'a device with a garbled reply is listed apart');
  t.match(s.errText(), /\[#+\]\s+6\/6 units/, 'progress bar on a terminal');

  const plain = io(false);
  t.equal(await scan.run([...serial, '--units', '3,5', '--timeout', '40', '--register', 'input:0'], plain), 1, 'nobody at 3 and 5');
  t.match(plain.text(), /no device answered on .* \(2 unit ids tried\)/);
  t.match(plain.errText(), /^0\/2 units\n/, 'plain progress lines when not a terminal');

  const p = io();
  t.equal(await probe.run(['--profile', 'cabinet-environment', ...serial, '--unit', '2'], p), 0);
  t.match(p.text(), /^point\s+value\s+unit\s+table\s+address\s+raw$/m);
  t.match(p.text(), /^temperature\s+28\s+degC\s+input\s+0\s+0118$/m, 'decoded value beside its raw register');
  t.match(p.text(), /^door_open\s+false\s+discrete\s+0\s+0$/m);
  t.match(p.text(), /15\/15 points read from unit 2 with profile cabinet-environment/);

  const sdm = io();
  t.equal(await probe.run(['--profile', 'eastron-sdm120', ...serial, '--unit', '1'], sdm), 0);
  t.match(sdm.text(), /^voltage\s+230\s+V\s+input\s+0\s+4366 0000$/m, 'float32 from two registers');

  const w = io();
  t.equal(await writePoint.run(['--profile', 'cabinet-environment', ...serial, '--unit', '2', 'fan_threshold', '40'], w), 0);
  t.equal(cabinet.bank.word('holding', 100), 400);
  t.match(w.text(), /wrote fan_threshold = 40 to unit 2/);
  const bad = io();
  t.equal(await writePoint.run(['--profile', 'cabinet-environment', ...serial, '--unit', '2', 'fan_threshold', '99'], bad), 1);
  t.match(bad.errText(), /above max 60 \(GW_ERR_WRITE_VALUE\)/);
  t.notMatch(bad.errText(), /GW_ERR_DECODE/, 'one code per message (issue 14.2)');

  const garbled = io();
  t.equal(await scan.run([...serial, '--units', '4', '--timeout', '40'], garbled), 1);
  t.match(garbled.text(), /4  garbled reply \(GW_ERR_MODBUS_CRC\)/);
});

t.test('a serial-line sensor on a tty: probe shows values beside the frame', { skip: socatSkip }, async (t) => {
  const dir = t.testdir();
  const pair = new PtyPair(path.join(dir, 'ttyGW'), path.join(dir, 'ttySIM'));
  await pair.start();
  // The stage sentence is repeated: sent only once at start, it can go out before probe opened the port.
  const sim = new WaterLevelRadarSim(30, { corruptEvery: 4, alarmRepeatEvery: 5 });
  sim.level = 2.5;
  const simLink = await attachToSerialPort(pair.b, sim);
  sim.start();
  t.teardown(async () => {
    sim.stop();
    await simLink.close();
    await pair.kill();
  });
  const p = io();
  t.equal(await probe.run(['--profile', 'water-level-radar', '--serial', pair.a, '--listen', '3000'], p), 0);
  t.match(p.text(), /^level\s+2\.5\s+m\s+good\s+1\s+WLRAD,2\.500,4\.500,/m);
  t.match(p.text(), /^flood_stage\s+0\s+good\s+1\s+WLALM,0\*/m);
});

t.test('Modbus TCP: scan finds the units behind a gateway', async (t) => {
  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>([[1, new FloodLevelSensor()], [2, new TrafficSignalController()]]));
  await sim.start();
  t.teardown(() => sim.stop());
  const s = io();
  t.equal(await scan.run(['--tcp', `127.0.0.1:${sim.port}`, '--units', '1-4'], s), 0);
  t.match(s.text(), /found 2 devices on 127\.0\.0\.1:\d+: units 1, 2/);
  const nothing = io();
  t.equal(await scan.run(['--tcp', '127.0.0.1:1', '--units', '1'], nothing), 2, 'nobody listening: a line error');
  t.match(nothing.errText(), /GW_ERR_MODBUS_CONNECT/);
  const usage = io();
  t.equal(await scan.run(['--units', '1'], usage), 2);
  t.match(usage.errText(), /say where the device is/);
});

t.test('Modbus TCP: 247 unit ids, most silent, scanned over several connections with an ETA', async (t) => {
  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>([[7, new FloodLevelSensor()], [200, new TrafficSignalController()]]), { unknownUnits: 'silent' });
  await sim.start();
  t.teardown(() => sim.stop());
  const s = io();
  const started = Date.now();
  t.equal(await scan.run(['--tcp', `127.0.0.1:${sim.port}`], s), 0, s.errText());
  const seconds = (Date.now() - started) / 1000;
  t.comment(`247 ids, 245 silent, 300 ms timeout, 8 connections: ${seconds.toFixed(1)} s (one at a time: about 74 s)`);
  t.match(s.text(), /found 2 devices on 127\.0\.0\.1:\d+: units 7, 200/);
  t.match(s.text(), /^ {4}7 {2}answered: holding 0 = /m);
  t.match(s.errText(), /^\d+\/247 units.*ETA \d+ s$/m, 'plain progress lines carry an ETA');
  t.match(s.errText(), /^247\/247 units, found: 2$/m);
});

t.test('Modbus TCP: a device that takes one connection is scanned on that one', async (t) => {
  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>([[3, new FloodLevelSensor()]]), { unknownUnits: 'silent' });
  await sim.start();
  t.teardown(() => sim.stop());
  // A front that accepts one connection and refuses (resets) the others.
  let open = 0;
  const front = net.createServer((c) => {
    if (open > 0) return c.resetAndDestroy();
    open++;
    const up = net.connect(sim.port, '127.0.0.1');
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    c.on('close', () => { open--; up.destroy(); });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => front.close(() => r())));
  const s = io();
  t.equal(await scan.run(['--tcp', `127.0.0.1:${(front.address() as net.AddressInfo).port}`, '--units', '1-6', '--timeout', '100'], s), 0, s.errText());
  t.match(s.text(), /found 1 device on 127\.0\.0\.1:\d+: unit 3/);
});

t.test('probe against a refused Modbus TCP endpoint: a readable error, no promise of a retry (issue 14.2)', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
  const p = io();
  t.not(await probe.run(['--profile', 'flood-level-sensor', '--tcp', `127.0.0.1:${port}`, '--unit', '1'], p), 0);
  t.match(p.errText(), new RegExp(`cannot connect to Modbus TCP 127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
  t.notMatch(p.errText() + p.text(), /undefined|NaN|\[object Object\]|retrying in/);
});

t.test('progress ETA from the rate so far', async (t) => {
  t.equal(etaText(0, 10_000, 10, 110), 'ETA 100 s');
  t.equal(etaText(0, 10_000, 1, 100), 'ETA 17 min');
  t.equal(etaText(0, 10_000, 0, 100), '', 'no rate yet');
  t.equal(etaText(0, 10_000, 100, 100), '', 'done');
  let now = 0;
  const plain = io(false);
  const p = createProgress(plain.err, 4, 'units', { eta: true, clock: () => now });
  p.update(0);
  now = 2000;
  p.update(1, 'found: 1');
  t.match(plain.errText(), /^1\/4 units, found: 1, ETA 6 s$/m);
});
