import { join } from 'node:path';
import t from 'tap';
import type { GatewayEvent, Reading } from '../../../../contract/index.js';
import { PROFILES_DIR, loadProfileFile, type SerialLineProfile } from '../../../../device-profiles/index.js';
import { RainGaugeSim, WaterLevelRadarSim } from '../../../../scripts/sim/line-sensors.js';
import { MockSerialHub } from '../../../../scripts/sim/serial-adapters.js';
import type { DeviceConfig, SerialLineBusConfig } from '../../../config.js';
import { SerialLineDevice } from '../serial-line-device.js';
import { captureLogger, WARN } from './log-capture.js';
import { mockPath, until } from './rtu-harness.js';

const radarProfile = (await loadProfileFile(join(PROFILES_DIR, 'water-level-radar.json'))) as SerialLineProfile;
const gaugeProfile = (await loadProfileFile(join(PROFILES_DIR, 'rain-gauge-tipping.json'))) as SerialLineProfile;

function bus(path: string): SerialLineBusConfig {
  return { id: 'com1', type: 'serial-line', path, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1, reconnectMinMs: 50, reconnectMaxMs: 200 };
}

function device(id: string, profile: string, extra: Partial<DeviceConfig> = {}): DeviceConfig {
  return { id, bus: 'com1', profile, unitId: 1, enabled: true, ...extra };
}

/** Latest good value per point. */
function latest(readings: Reading[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const r of readings) if (r.quality === 'good') out[r.point] = r.value;
  return out;
}

t.test('radar water level: sentences decoded, corrupted lines counted and reported once, values keep flowing', async (t) => {
  const path = mockPath();
  const hub = new MockSerialHub();
  const sim = new WaterLevelRadarSim(20, { corruptEvery: 4, noiseEvery: 5 });
  hub.connect(path, sim);
  const readings: Reading[] = [];
  const events: GatewayEvent[] = [];
  const { logger, lines } = captureLogger();
  const dev = new SerialLineDevice({
    device: device('river-1', 'water-level-radar'), profile: radarProfile, bus: bus(path), openPort: hub.factory, logger,
    onReadings: (r) => readings.push(...r), onEvent: (e) => events.push(e), faultEveryMs: 60_000,
  });
  await dev.start();
  t.teardown(async () => {
    sim.stop();
    await dev.stop();
  });
  sim.start();
  await until(() => dev.lineStats.good >= 12 && dev.lineStats.checksumErrors >= 3, 'good and corrupted lines');
  sim.stop();
  const values = latest(readings);
  for (const k of ['distance', 'signal_quality', 'sensor_temp', 'valid', 'flood_stage']) t.ok(k in values, `${k} reported`);
  t.ok(readings.every((r) => r.device === 'river-1' && (r.quality === 'good' || r.quality === 'stale')), 'no bad readings from corrupted lines: they are dropped');
  t.equal(dev.health, 'up');
  const faults = events.filter((e) => e.type === 'driver.fault');
  t.equal(faults.length, 1, 'one fault event, not one per corrupted line');
  t.match(faults[0], { code: 'GW_ERR_LINE_CHECKSUM', device: 'river-1', message: /nmea-xor checksum mismatch/ });
  t.ok(lines.some((l) => l.level === WARN && l.code === 'GW_ERR_LINE_CHECKSUM'), 'a warn log line with the code');
  t.ok(dev.lineStats.noiseBytes > 0, 'noise between sentences counted');
  t.ok(dev.stats.failures >= 3, 'bad frames counted in the device stats');
});

t.test('a silent sensor goes down with stale points, and comes back up', async (t) => {
  const path = mockPath();
  const hub = new MockSerialHub();
  const sim = new WaterLevelRadarSim(20);
  hub.connect(path, sim);
  const readings: Reading[] = [];
  const events: GatewayEvent[] = [];
  const profile = { ...radarProfile, serialLine: { ...radarProfile.serialLine, staleAfterMs: 200 } } as SerialLineProfile;
  const dev = new SerialLineDevice({ device: device('river-2', 'water-level-radar'), profile, bus: bus(path), openPort: hub.factory, logger: captureLogger().logger, onReadings: (r) => readings.push(...r), onEvent: (e) => events.push(e) });
  await dev.start();
  t.teardown(async () => {
    sim.stop();
    await dev.stop();
  });
  sim.start();
  await until(() => dev.health === 'up', 'up');
  sim.silent(true);
  await until(() => events.find((e) => e.type === 'device.down'), 'device.down');
  t.match(events.find((e) => e.type === 'device.down'), { code: 'GW_ERR_LINE_SILENT', device: 'river-2' });
  const stale = readings.filter((r) => r.quality === 'stale');
  t.same(new Set(stale.map((r) => r.point)), new Set(radarProfile.points.map((p) => p.name)), 'every point reported stale once');
  t.ok(stale.find((r) => r.point === 'level')?.value !== null, 'stale keeps the last value');
  sim.silent(false);
  await until(() => events.find((e) => e.type === 'device.up'), 'device.up');
  t.equal(dev.health, 'up');
});

t.test('the serial port vanishes and comes back', async (t) => {
  const path = mockPath();
  const hub = new MockSerialHub();
  const sim = new WaterLevelRadarSim(20);
  hub.connect(path, sim);
  const events: GatewayEvent[] = [];
  const { logger, lines } = captureLogger();
  const dev = new SerialLineDevice({ device: device('river-3', 'water-level-radar'), profile: radarProfile, bus: bus(path), openPort: hub.factory, logger, onReadings: () => undefined, onEvent: (e) => events.push(e) });
  await dev.start();
  t.teardown(async () => {
    sim.stop();
    await dev.stop();
  });
  sim.start();
  await until(() => dev.health === 'up', 'up');
  hub.unplug(path);
  await until(() => events.find((e) => e.type === 'device.down'), 'device.down');
  t.match(events.find((e) => e.type === 'device.down'), { code: 'GW_ERR_SERIAL_PORT_GONE', message: /went away/ });
  t.ok(lines.some((l) => l.level === WARN && l.code === 'GW_ERR_SERIAL_PORT_GONE'), 'warn log line with the code');
  await new Promise((r) => setTimeout(r, 150));
  hub.replug(path);
  await until(() => events.find((e) => e.type === 'device.up'), 'device.up after the port is back');
  t.equal(dev.health, 'up');
});

t.test('query-response sensor: ENQ every poll interval, STX/ETX telegram with sum-8', async (t) => {
  const path = mockPath();
  const hub = new MockSerialHub();
  const sim = new RainGaugeSim(7, { corruptEvery: 3 });
  hub.connect(path, sim);
  const readings: Reading[] = [];
  const dev = new SerialLineDevice({ device: device('gauge-1', 'rain-gauge-tipping', { pollIntervalMs: 50 }), profile: gaugeProfile, bus: bus(path), openPort: hub.factory, logger: captureLogger().logger, onReadings: (r) => readings.push(...r), onEvent: () => undefined });
  await dev.start();
  t.teardown(() => dev.stop());
  await until(() => dev.lineStats.good >= 4, 'telegrams');
  t.ok(sim.requests >= 4, `${sim.requests} requests sent`);
  t.ok(dev.lineStats.checksumErrors >= 1, 'corrupted telegrams dropped');
  const v = latest(readings);
  t.equal(v.station, '07');
  t.equal(v.battery, 12.61);
  t.ok(typeof v.tips === 'number' && typeof v.rain_total === 'number');
});

t.test('a port missing at start: down at once with GW_ERR_SERIAL_OPEN, up when it appears', async (t) => {
  const path = mockPath();
  const hub = new MockSerialHub();
  const events: GatewayEvent[] = [];
  const dev = new SerialLineDevice({ device: device('river-4', 'water-level-radar'), profile: radarProfile, bus: bus(path), openPort: hub.factory, logger: captureLogger().logger, onReadings: () => undefined, onEvent: (e) => events.push(e) });
  await dev.start();
  const sim = new WaterLevelRadarSim(20);
  t.teardown(async () => {
    sim.stop();
    await dev.stop();
  });
  t.match(events[0], { type: 'device.down', code: 'GW_ERR_SERIAL_OPEN' });
  hub.connect(path, sim);
  sim.start();
  await until(() => dev.health === 'up', 'up once the port exists');
  t.equal(events.filter((e) => e.type === 'device.down').length, 1);
});

t.test('a receive-only port that went quiet is reopened after three stale periods', async (t) => {
  const path = mockPath();
  const hub = new MockSerialHub();
  const sim = new WaterLevelRadarSim(20);
  hub.connect(path, sim);
  const profile = { ...radarProfile, serialLine: { ...radarProfile.serialLine, staleAfterMs: 100 } } as SerialLineProfile;
  const events: GatewayEvent[] = [];
  let opens = 0;
  const openPort: typeof hub.factory = async (o) => {
    opens++;
    return hub.factory(o);
  };
  const dev = new SerialLineDevice({ device: device('river-5', 'water-level-radar'), profile, bus: bus(path), openPort, logger: captureLogger().logger, onReadings: () => undefined, onEvent: (e) => events.push(e) });
  await dev.start();
  t.teardown(async () => {
    sim.stop();
    await dev.stop();
  });
  await until(() => opens >= 3, 'reopened while silent');
  t.match(events.find((e) => e.type === 'device.down'), { code: 'GW_ERR_LINE_SILENT' });
  sim.start();
  await until(() => dev.health === 'up', 'up once frames flow');
});
