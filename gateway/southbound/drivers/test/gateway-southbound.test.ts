/**
 * The whole gateway with Modbus RTU and serial-line buses on serialport's
 * mock binding, into a real hub: every protocol reaches the hub through the
 * same outbox/uplink, faults come out as events and log lines with codes,
 * a silent device goes down without stalling the others, points can be written.
 */
import path from 'node:path';
import t from 'tap';
import type { GatewayEvent, Reading } from '../../../../contract/index.js';
import { startHub } from '../../../../hub/index.js';
import { silentLogger } from '../../../../lib/index.js';
import { CabinetEnvironment, EastronSdm120 } from '../../../../scripts/sim/rtu-devices.js';
import { RtuSlaveLine } from '../../../../scripts/sim/rtu-slave.js';
import { WaterLevelRadarSim } from '../../../../scripts/sim/line-sensors.js';
import { MockSerialHub } from '../../../../scripts/sim/serial-adapters.js';
import type { SimDevice } from '../../../../scripts/sim/field-devices.js';
import { startGateway } from '../../../index.js';
import { captureLogger, WARN } from './log-capture.js';
import { mockPath, until } from './rtu-harness.js';

t.test('RTU and serial-line devices through the gateway into the hub', async (t) => {
  const dir = t.testdir();
  const hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  t.teardown(() => hub.stop());
  const atHub: Reading[] = [];
  hub.events.on('batch', ({ readings }: { readings: Reading[] }) => atHub.push(...readings));

  const serial = new MockSerialHub();
  const rs485 = mockPath();
  const com1 = mockPath();
  const meter = new EastronSdm120();
  const cabinet = new CabinetEnvironment();
  const spare = new EastronSdm120(1, 3);
  const line = new RtuSlaveLine(new Map<number, SimDevice>([[1, meter], [2, cabinet], [3, spare]]));
  serial.connect(rs485, line);
  const radar = new WaterLevelRadarSim(50, { corruptEvery: 5 });
  serial.connect(com1, radar);
  radar.start();
  t.teardown(() => {
    radar.stop();
    line.close();
  });

  const { logger, lines } = captureLogger('info');
  const gw = await startGateway({
    source: '<test>',
    logger,
    serialPortFactory: serial.factory,
    config: {
      gatewayId: 'gw-rtu-01',
      dataDir: path.join(dir, 'gw'),
      hub: { url: `mqtt://127.0.0.1:${hub.mqttPort}`, reconnectMinMs: 100, reconnectMaxMs: 500 },
      buses: [
        // 250 ms, not less: on a loaded machine an event loop stalled past the timeout makes the
        // timer fire before the (already received) answer is read, and a healthy device looks silent.
        { id: 'rs485', type: 'modbus-rtu', path: rs485, baudRate: 19200, timeoutMs: 250, retries: 0, reconnectMinMs: 50, reconnectMaxMs: 200 },
        { id: 'com1', type: 'serial-line', path: com1 },
      ],
      devices: [
        { id: 'meter-1', bus: 'rs485', unitId: 1, profile: 'eastron-sdm120', pollIntervalMs: 100 },
        { id: 'cabinet-1', bus: 'rs485', unitId: 2, profile: 'cabinet-environment', pollIntervalMs: 100 },
        { id: 'meter-3', bus: 'rs485', unitId: 3, profile: 'eastron-sdm120', pollIntervalMs: 100 },
        { id: 'river-1', bus: 'com1', profile: 'water-level-radar' },
      ],
      outbox: { flushIntervalMs: 20 },
      uplink: { statusIntervalS: 1 },
    },
  });
  t.teardown(() => gw.stop());
  const events: GatewayEvent[] = [];
  gw.bus.on('event', (e: GatewayEvent) => events.push(e));
  const local: Reading[] = [];
  gw.bus.on('readings', (r: Reading[]) => local.push(...r));

  await until(() => ['meter-1', 'cabinet-1', 'meter-3', 'river-1'].every((d) => atHub.some((r) => r.device === d && r.quality === 'good')), 'good readings of every device at the hub');
  const voltage = await until(() => atHub.find((r) => r.device === 'meter-1' && r.point === 'voltage'), 'SDM120 voltage at the hub');
  t.ok(typeof voltage?.value === 'number' && voltage.value > 220 && voltage.value < 240, `SDM120 voltage ${String(voltage?.value)} V`);
  t.ok(atHub.some((r) => r.device === 'river-1' && r.point === 'level'), 'radar level at the hub');

  await t.test('a silent unit goes down; the others on the bus keep polling', async (t) => {
    line.silent(true, 3);
    await until(() => events.find((e) => e.type === 'device.down' && e.device === 'meter-3'), 'meter-3 down');
    t.match(events.find((e) => e.type === 'device.down' && e.device === 'meter-3'), { code: 'GW_ERR_MODBUS_TIMEOUT', message: /unit 3 on bus rs485/ });
    t.ok(lines.some((l) => l.level === WARN && l.code === 'GW_ERR_MODBUS_TIMEOUT' && l.device === 'meter-3'), 'warn log line with the code');
    t.ok(local.some((r) => r.device === 'meter-3' && r.quality === 'stale'), 'its points go stale');
    const before = line.answered.get(1) ?? 0;
    await until(() => (line.answered.get(1) ?? 0) >= before + 5, 'meter-1 still polled');
    // Waited on, not read once: a stalled event loop may time out one of its polls.
    t.equal(await until(() => (gw.devices()['meter-1'] === 'up' ? 'up' : null), 'meter-1 up'), 'up', 'meter-1 is up while meter-3 is silent');
    line.silent(false, 3);
    await until(() => events.find((e) => e.type === 'device.up' && e.device === 'meter-3'), 'meter-3 back up', 10_000);
  });

  await t.test('CRC errors and exception responses: a fault event and log line with the code, polling goes on', async (t) => {
    line.inject(2, { kind: 'crc' }, true);
    await until(() => events.find((e) => e.type === 'driver.fault' && e.code === 'GW_ERR_MODBUS_CRC'), 'CRC fault event');
    t.ok(lines.some((l) => l.level === WARN && l.code === 'GW_ERR_MODBUS_CRC'), 'warn log line with GW_ERR_MODBUS_CRC');
    line.clearFaults(2);
    for (const [fault, code] of [[{ kind: 'short', bytes: 4 }, 'GW_ERR_MODBUS_FRAME'], [{ kind: 'wrong-unit', unit: 9 }, 'GW_ERR_MODBUS_WRONG_UNIT'], [{ kind: 'garbage' }, 'GW_ERR_MODBUS_CRC']] as const) {
      // A fault is reported once per code until the device answers well again.
      await until(() => gw.devices()['cabinet-1'] === 'up', 'cabinet up before the next fault');
      const before = events.length;
      line.inject(2, fault, true);
      await until(() => events.slice(before).find((e) => e.type === 'driver.fault' && e.code === code && e.device === 'cabinet-1'), `${code} fault event`);
      t.ok(lines.some((l) => l.level === WARN && l.code === code), `warn log line with ${code}`);
      line.clearFaults(2);
    }
    line.inject(1, { kind: 'exception', code: 2 }, true);
    await until(() => events.find((e) => e.type === 'driver.fault' && e.code === 'GW_ERR_MODBUS_EXCEPTION' && e.device === 'meter-1'), 'exception fault event');
    // An exception is an answer: while meter-1 answers nothing else it is (or comes back) up, never down for it.
    t.equal(await until(() => (gw.devices()['meter-1'] === 'up' ? 'up' : null), 'meter-1 up while answering exceptions'), 'up', 'an exception is an answer: the device stays up');
    t.notOk(events.some((e) => e.type === 'device.down' && e.device === 'meter-1' && e.code === 'GW_ERR_MODBUS_EXCEPTION'), 'no device.down for an exception');
    line.clearFaults(1);
    await until(() => events.find((e) => e.type === 'driver.fault' && e.code === 'GW_ERR_LINE_CHECKSUM' && e.device === 'river-1'), 'line checksum fault');
    const n = local.length;
    await until(() => local.length > n + 5, 'readings keep coming');
  });

  await t.test('writePoint: checked against the profile, written with the right function code', async (t) => {
    await gw.writePoint('cabinet-1', 'fan_on', true);
    t.equal(cabinet.bank.bit('coil', 0), true, 'coil written (FC 5)');
    await gw.writePoint('cabinet-1', 'fan_threshold', 42.5);
    t.equal(cabinet.bank.word('holding', 100), 425, 'scaled value written (FC 6)');
    await until(() => local.some((r) => r.device === 'cabinet-1' && r.point === 'fan_threshold' && r.value === 42.5), 'new value read back');
    await t.rejects(gw.writePoint('cabinet-1', 'fan_threshold', 75), { code: 'GW_ERR_WRITE_VALUE', message: /above max 60/ });
    await t.rejects(gw.writePoint('cabinet-1', 'fan_threshold', 'hot'), { code: 'GW_ERR_WRITE_VALUE', message: /expected a finite number/ });
    await t.rejects(gw.writePoint('cabinet-1', 'temperature', 20), { code: 'GW_ERR_WRITE_REFUSED', message: /not writable/ });
    await t.rejects(gw.writePoint('cabinet-1', 'nope', 1), { code: 'GW_ERR_WRITE_REFUSED', message: /has no point 'nope'/ });
    await t.rejects(gw.writePoint('ghost', 'x', 1), { code: 'GW_ERR_WRITE_REFUSED', message: /no enabled device 'ghost'/ });
    await t.rejects(gw.writePoint('river-1', 'level', 1), { code: 'GW_ERR_WRITE_REFUSED', message: /read-only/ });
    line.silent(true, 2);
    await t.rejects(gw.writePoint('cabinet-1', 'heater_on', true), { code: 'GW_ERR_MODBUS_TIMEOUT' });
    line.silent(false, 2);
  });
});
