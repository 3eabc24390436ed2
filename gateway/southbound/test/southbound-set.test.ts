/**
 * The southbound set across start, reconfiguration and stop, on a real
 * Modbus TCP simulator. The gateway starts its configuration agent before its
 * drivers, and the agent may apply a retained configuration at once: a driver
 * replaced then must never be started afterwards (it polled on for good after
 * the gateway stopped, found by the lingering-process check of the
 * remote-config test), and a change still in progress when the gateway stops
 * must not start anything after the stop.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import type { Reading } from '../../../contract/index.js';
import { silentLogger } from '../../../lib/index.js';
import { ModbusTcpSimulator } from '../../../scripts/sim/modbus-tcp-sim.js';
import { FloodLevelSensor, TrafficSignalController, type SimDevice } from '../../../scripts/sim/field-devices.js';
import { parseGatewayConfig, type GatewayConfig } from '../../config.js';
import { loadProfiles } from '../../gateway.js';
import { SouthboundSet } from '../southbound-set.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function setup(t: Test) {
  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>([[1, new FloodLevelSensor()], [2, new TrafficSignalController()]]), { tickMs: 100 });
  await sim.start();
  t.teardown(() => sim.stop());
  const dir = t.testdir();
  const config = (tscInterval: number): GatewayConfig => parseGatewayConfig({
    gatewayId: 'gw-set-01', dataDir: path.join(dir, 'gw'), hub: { url: 'mqtt://127.0.0.1:1' },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim.port, timeoutMs: 300 }],
    devices: [
      { id: 'flood-1', bus: 'lan', unitId: 1, profile: 'flood-level-sensor', pollIntervalMs: 100 },
      { id: 'tsc-1', bus: 'lan', unitId: 2, profile: 'traffic-signal-controller', pollIntervalMs: tscInterval },
    ],
  }, '<test>');
  const profiles = await loadProfiles();
  const readings: Reading[] = [];
  const set = new SouthboundSet({ logger: silentLogger(), onReadings: (r) => readings.push(...r), onEvent: () => undefined });
  await set.build(config(100), profiles);
  /** Requests the simulator received from a unit so far. */
  const requests = (unit: number): number => sim.requests.get(unit) ?? 0;
  return { sim, set, config, profiles, readings, requests };
}

t.test('a change applied before the drivers start: the replaced driver is never started, and after stop no request reaches the device', async (t) => {
  const { set, config, profiles, requests } = await setup(t);
  const replaced = set.driver('tsc-1')!;
  await set.startLines();
  const change = await set.apply(config(250), profiles); // the agent applies a retained document before the drivers start
  t.same(change.devices, ['tsc-1'], 'only tsc-1 changes');
  t.not(set.driver('tsc-1'), replaced, 'tsc-1 has a new driver');
  t.equal(requests(2), 0, 'nothing polls before the drivers start');
  await set.startDrivers();
  await sleep(600);
  t.ok(requests(1) > 0 && requests(2) > 0, 'both devices polled once started');
  t.equal(replaced.stats.polls, 0, 'the replaced driver never polled');
  await set.stopDrivers(() => undefined);
  await set.stopLines(() => undefined);
  const after = [requests(1), requests(2)];
  await sleep(700);
  t.same([requests(1), requests(2)], after, 'no request after stop: no driver is left running');
});

t.test('a change in progress when the set stops starts nothing after the stop', async (t) => {
  const { set, config, profiles, requests } = await setup(t);
  await set.startLines();
  await set.startDrivers();
  await sleep(300);
  const applying = set.apply(config(150), profiles);
  const stopping = set.stopDrivers(() => undefined); // the gateway stops while the change runs
  await applying;
  await stopping;
  await set.stopLines(() => undefined);
  const after = [requests(1), requests(2)];
  await sleep(700);
  t.same([requests(1), requests(2)], after, 'no request after stop');
  await set.startDrivers();
  await sleep(300);
  t.same([requests(1), requests(2)], after, 'a stopped set does not start again');
});

t.test('a change after the drivers started starts its replacements at once', async (t) => {
  const { set, config, profiles, readings } = await setup(t);
  await set.startLines();
  await set.startDrivers();
  await set.apply(config(150), profiles);
  const since = Date.now();
  await sleep(600);
  t.ok(readings.some((r) => r.device === 'tsc-1' && r.ts > since), 'the new tsc-1 driver polls');
  t.ok(readings.some((r) => r.device === 'flood-1' && r.ts > since), 'flood-1 kept polling');
  await set.stopDrivers(() => undefined);
  await set.stopLines(() => undefined);
});
