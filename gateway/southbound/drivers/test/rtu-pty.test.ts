/**
 * Modbus RTU and a line sensor over real tty devices: a socat pseudo-terminal
 * pair (`.ci/run` installs socat). Killing socat makes the gateway's port
 * vanish the way an unplugged USB adapter does; restarting it at the same
 * path brings the port back.
 */
import path from 'node:path';
import { skipUnlessBinary } from '../../../../test/support/outside-binary.js';
import t from 'tap';
import type { GatewayEvent, Reading } from '../../../../contract/index.js';
import { PROFILES_DIR, loadProfileFile, type SerialLineProfile } from '../../../../device-profiles/index.js';
import { silentLogger } from '../../../../lib/index.js';
import { CabinetEnvironment, EastronSdm120 } from '../../../../scripts/sim/rtu-devices.js';
import { RtuSlaveLine } from '../../../../scripts/sim/rtu-slave.js';
import { WaterLevelRadarSim } from '../../../../scripts/sim/line-sensors.js';
import { PtyPair, attachToSerialPort } from '../../../../scripts/sim/serial-adapters.js';
import type { SimDevice } from '../../../../scripts/sim/field-devices.js';
import { openSerialPort, type ByteLink } from '../byte-link.js';
import { ModbusRtuTransport } from '../modbus-rtu.js';
import { SerialLineDevice } from '../serial-line-device.js';
import { rtuBus, until } from './rtu-harness.js';

// Missing socat: skipped with the package named, a failure under CI=true (.ci/run installs it).
const socatSkip = skipUnlessBinary('socat', 'socat');

t.test('Modbus RTU over a pty pair; the port vanishes and comes back', { skip: socatSkip }, async (t) => {
  const dir = t.testdir();
  const pair = new PtyPair(path.join(dir, 'ttyGW'), path.join(dir, 'ttySIM'));
  await pair.start();
  const line = new RtuSlaveLine(new Map<number, SimDevice>([[1, new EastronSdm120()], [2, new CabinetEnvironment()]]), { baudRate: 19200 });
  let simLink: ByteLink = await attachToSerialPort(pair.b, line);
  const events: GatewayEvent[] = [];
  const tr = new ModbusRtuTransport({ config: rtuBus(pair.a, { timeoutMs: 200 }), logger: silentLogger(), openPort: openSerialPort, onEvent: (e) => events.push(e) });
  t.teardown(async () => {
    await tr.stop();
    line.close();
    await simLink.close();
    await pair.kill();
  });
  await tr.start();
  t.same(await tr.read(2, 'input', 0, 2), [280, 455], 'read through a real tty');
  const regs = (await tr.read(1, 'input', 0, 38)) as number[];
  t.equal(regs[0], 0x4366, 'SDM120 voltage high word (230 V)');
  t.equal(line.silenceViolations, 0);

  await pair.kill();
  // A pty whose other end is gone is noticed at the next I/O (a USB adapter pulled out, at once):
  // keep polling, as the device pollers do.
  await until(async () => {
    await tr.read(2, 'input', 0, 1).catch(() => undefined);
    return events.find((e) => e.type === 'bus.down');
  }, 'bus.down after socat is gone');
  t.match(events.find((e) => e.type === 'bus.down'), { code: 'GW_ERR_SERIAL_PORT_GONE' });
  await t.rejects(tr.read(2, 'input', 0, 1), { code: /GW_ERR_SERIAL_(PORT_GONE|OPEN)/ });

  await pair.start();
  await simLink.close();
  simLink = await attachToSerialPort(pair.b, line);
  const back = await until(async () => tr.read(2, 'input', 0, 2).catch(() => null), 'reads after the port is back');
  t.same(back, [280, 455]);
  t.ok(events.find((e) => e.type === 'bus.up'));
});

t.test('a line sensor over a pty pair', { skip: socatSkip }, async (t) => {
  const dir = t.testdir();
  const pair = new PtyPair(path.join(dir, 'ttyGW'), path.join(dir, 'ttySIM'));
  await pair.start();
  const sim = new WaterLevelRadarSim(20, { corruptEvery: 3, noiseEvery: 4 });
  const simLink = await attachToSerialPort(pair.b, sim);
  const profile = (await loadProfileFile(path.join(PROFILES_DIR, 'water-level-radar.json'))) as SerialLineProfile;
  const readings: Reading[] = [];
  const dev = new SerialLineDevice({
    device: { id: 'river-pty', bus: 'tty', profile: profile.model, unitId: 1, enabled: true }, profile,
    bus: { id: 'tty', type: 'serial-line', path: pair.a, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1, reconnectMinMs: 50, reconnectMaxMs: 200 },
    openPort: openSerialPort, logger: silentLogger(), onReadings: (r) => readings.push(...r), onEvent: () => undefined,
  });
  t.teardown(async () => {
    sim.stop();
    await dev.stop();
    await simLink.close();
    await pair.kill();
  });
  await dev.start();
  sim.start();
  await until(() => dev.lineStats.good >= 5 && dev.lineStats.checksumErrors >= 2, 'good and corrupted sentences');
  t.ok(readings.some((r) => r.point === 'level' && r.quality === 'good'));
  t.ok(dev.lineStats.noiseBytes > 0, 'noise skipped');
});
