/**
 * Reporting semantics (issue 14.4) and the backoff cap (issue 14.3), with a
 * real Modbus TCP simulator on loopback and the gateway's own transport and
 * poller. Reporting follows SCADA drivers: a point is reported when its value
 * or quality changes (any change without a deadband, a change of at least
 * the deadband with one) and, unchanged, again at least every `heartbeatS`
 * seconds. Time is under test here, so the poller gets a clock the test
 * moves; polls themselves run on real timers and the test waits for them by
 * counting the simulator's answers.
 */
import t from 'tap';
import type { Reading } from '../../../contract/index.js';
import { validateProfile, type ModbusProfile } from '../../../device-profiles/index.js';
import { silentLogger } from '../../../lib/index.js';
import { RegisterBank } from '../../../scripts/sim/register-bank.js';
import { ModbusTcpSimulator } from '../../../scripts/sim/modbus-tcp-sim.js';
import type { SimDevice } from '../../../scripts/sim/field-devices.js';
import type { DeviceConfig, GatewayConfig } from '../../config.js';
import { backoffCap, DEFAULT_BACKOFF_MAX_MS, DevicePoller } from '../device-poller.js';
import { ModbusTcpTransport } from '../drivers/modbus-tcp.js';
import { buildSouthbound } from '../southbound.js';
import { until } from '../drivers/test/rtu-harness.js';

/** A device whose registers the test sets. */
class Steady implements SimDevice {
  readonly model = 'steady';
  readonly bank = new RegisterBank();
  readonly served = {};
  tick(): void {}
}

const profile = validateProfile({
  model: 'steady', manufacturer: 'test', protocol: 'modbus', pollIntervalMs: 50, heartbeatS: 60,
  points: [
    { name: 'level', table: 'holding', address: 0, type: 'uint16' },
    { name: 'battery', table: 'holding', address: 1, type: 'uint16', scale: 0.01, deadband: 0.05 },
    { name: 'status', table: 'holding', address: 2, type: 'uint16' },
    { name: 'door_open', table: 'holding', address: 2, type: 'bool', bit: 0 },
    { name: 'fast', table: 'holding', address: 3, type: 'uint16', heartbeatS: 5 },
  ],
}, 'steady.json') as ModbusProfile;

t.test('report on change, on deadband, and at the heartbeat (status bit too)', async (t) => {
  const dev = new Steady();
  dev.bank.holding.set(0, 100);
  dev.bank.holding.set(1, 1230); // 12.30 V
  dev.bank.holding.set(2, 0b1);
  dev.bank.holding.set(3, 7);
  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>([[1, dev]]), { tickMs: 60_000 });
  await sim.start();
  t.teardown(() => sim.stop());
  const transport = new ModbusTcpTransport({ config: { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim.port, timeoutMs: 500, retries: 0, reconnectMinMs: 50, reconnectMaxMs: 200 }, logger: silentLogger() });
  await transport.start();
  let now = 1_000_000;
  const readings: Reading[] = [];
  const poller = new DevicePoller({
    device: { id: 'st-1', bus: 'lan', profile: 'steady', unitId: 1, enabled: true }, profile, transport, logger: silentLogger(),
    onReadings: (r) => readings.push(...r), onEvent: () => undefined, clock: () => now,
  });
  await poller.start();
  t.teardown(async () => {
    await poller.stop();
    await transport.stop();
  });
  /** Waits until two more polls were answered, so one whole poll ran after whatever the test changed. */
  const polled = async (what: string): Promise<void> => {
    const n = sim.requests.get(1) ?? 0;
    await until(() => (sim.requests.get(1) ?? 0) >= n + 2, what);
  };
  const since = (i: number): string[] => readings.slice(i).map((r) => `${r.point}=${String(r.value)}`);

  await polled('first polls');
  t.same(since(0), ['level=100', 'battery=12.3', 'status=1', 'door_open=true', 'fast=7'], 'every point once at start');
  let mark = readings.length;
  await polled('steady polls');
  t.same(since(mark), [], 'unchanged values are not re-sent at every poll');

  dev.bank.holding.set(0, 101);
  await polled('after a change of 1');
  t.same(since(mark), ['level=101'], 'no deadband: any change is reported');
  mark = readings.length;
  dev.bank.holding.set(1, 1233); // +0.03 V, inside the 0.05 V deadband
  await polled('after a change inside the deadband');
  t.same(since(mark), [], 'a change inside the deadband is not reported');
  dev.bank.holding.set(1, 1236); // +0.06 V from the last reported 12.30
  await polled('after a change beyond the deadband');
  t.same(since(mark), ['battery=12.36'], 'a change of the deadband or more is reported');
  mark = readings.length;

  now += 5_000;
  await polled('5 s later');
  t.same(since(mark), ['fast=7'], 'a point with heartbeatS 5 is re-sent after 5 s, the others not yet');
  mark = readings.length;
  now += 54_000;
  await polled('59 s after the start');
  t.same(since(mark), ['fast=7'], 'before 60 s only the 5 s point is re-sent');
  mark = readings.length;
  now += 1_000;
  await polled('60 s after the start');
  t.same(new Set(since(mark)), new Set(['level=101', 'battery=12.36', 'status=1', 'door_open=true']), 'at 60 s every steady point is re-sent, the status word and its bit too');
  t.ok(readings.slice(mark).every((r) => r.quality === 'good' && r.ts === now), 'heartbeat readings carry the poll time and their quality');
});

t.test('heartbeatS 0: only on change', async (t) => {
  const quiet = validateProfile({ model: 'quiet', manufacturer: 'test', protocol: 'modbus', pollIntervalMs: 50, heartbeatS: 0, points: [{ name: 'v', table: 'holding', address: 0, type: 'uint16' }] }, 'quiet.json') as ModbusProfile;
  const dev = new Steady();
  dev.bank.holding.set(0, 5);
  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>([[1, dev]]), { tickMs: 60_000 });
  await sim.start();
  t.teardown(() => sim.stop());
  const transport = new ModbusTcpTransport({ config: { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim.port, timeoutMs: 500, retries: 0, reconnectMinMs: 50, reconnectMaxMs: 200 }, logger: silentLogger() });
  let now = 0;
  const readings: Reading[] = [];
  const poller = new DevicePoller({ device: { id: 'q', bus: 'lan', profile: 'quiet', unitId: 1, enabled: true }, profile: quiet, transport, logger: silentLogger(), onReadings: (r) => readings.push(...r), onEvent: () => undefined, clock: () => now });
  await poller.start();
  t.teardown(async () => {
    await poller.stop();
    await transport.stop();
  });
  await until(() => readings.length === 1, 'first reading');
  now += 3_600_000;
  const n = sim.requests.get(1) ?? 0;
  await until(() => (sim.requests.get(1) ?? 0) >= n + 2, 'two polls an hour later');
  t.equal(readings.length, 1, 'nothing re-sent');
});

t.test('backoff cap: device, then bus, then the default; built from the configuration', async (t) => {
  t.equal(DEFAULT_BACKOFF_MAX_MS, 4000, 'default: a device that answers again is read within about 4 s');
  t.equal(backoffCap({}, {}), 4000);
  t.equal(backoffCap({}, { backoffMaxMs: 1500 }), 1500);
  t.equal(backoffCap({ backoffMaxMs: 700 }, { backoffMaxMs: 1500 }), 700);
  const config = {
    gatewayId: 'g', dataDir: '/tmp', hub: { url: 'mqtt://127.0.0.1:1' },
    buses: [
      { id: 'a', type: 'modbus-tcp', host: '127.0.0.1', port: 1, timeoutMs: 100, retries: 0, reconnectMinMs: 50, reconnectMaxMs: 100, backoffMaxMs: 1500 },
      { id: 'b', type: 'modbus-tcp', host: '127.0.0.1', port: 2, timeoutMs: 100, retries: 0, reconnectMinMs: 50, reconnectMaxMs: 100 },
    ],
    devices: [
      { id: 'd1', bus: 'a', profile: 'steady', unitId: 1, enabled: true },
      { id: 'd2', bus: 'a', profile: 'steady', unitId: 2, enabled: true, backoffMaxMs: 700 },
      { id: 'd3', bus: 'b', profile: 'steady', unitId: 1, enabled: true },
    ] as DeviceConfig[],
  } as unknown as GatewayConfig;
  const sb = await buildSouthbound({ config, profiles: new Map([['steady', profile]]), logger: silentLogger(), onReadings: () => undefined, onEvent: () => undefined });
  t.same(sb.drivers.map((d) => [d.id, (d as DevicePoller).backoffMaxMs]), [['d1', 1500], ['d2', 700], ['d3', 4000]]);
});

t.test('a device that answers again is read within its backoff cap', async (t) => {
  const dev = new Steady();
  dev.bank.holding.set(0, 1);
  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>([[1, dev]]), { tickMs: 60_000 });
  await sim.start();
  t.teardown(() => sim.stop());
  const transport = new ModbusTcpTransport({ config: { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim.port, timeoutMs: 100, retries: 0, reconnectMinMs: 50, reconnectMaxMs: 200 }, logger: silentLogger() });
  const events: string[] = [];
  const poller = new DevicePoller({ device: { id: 'st', bus: 'lan', profile: 'steady', unitId: 1, enabled: true }, profile, transport, logger: silentLogger(), onReadings: () => undefined, onEvent: (e) => events.push(e.type), maxBackoffMs: 300 });
  await poller.start();
  t.teardown(async () => {
    await poller.stop();
    await transport.stop();
  });
  await until(() => poller.health === 'up', 'up');
  sim.silent(true);
  await until(() => poller.health === 'down', 'down', 10_000);
  // Long enough for an uncapped backoff to grow well past the cap: count the attempts the poller makes meanwhile.
  const attempts = (): number => poller.stats.polls;
  const before = attempts();
  await until(() => attempts() >= before + 8, 'eight polls of the down device (a 30 s cap would take minutes)', 20_000);
  sim.silent(false);
  await until(() => poller.health === 'up', 'up again', 10_000);
  // The transport may report its own fault (timeouts) besides; the device goes down once and up once.
  t.same(events.filter((e) => e.startsWith('device.')), ['device.down', 'device.up']);
});
