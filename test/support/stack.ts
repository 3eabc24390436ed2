/**
 * Builds the real parts for end-to-end tests: a Modbus TCP simulator, a hub
 * (Aedes + SQLite) and a gateway, all on loopback with free ports, torn down
 * by `t.teardown`.
 */
import path from 'node:path';
import type { Test } from 'tap';
import { startGateway, type Gateway } from '../../gateway/index.js';
import { startHub, type Hub } from '../../hub/index.js';
import { silentLogger, type Logger } from '../../lib/index.js';
import { FloodLevelSensor, TrafficSignalController, type SimDevice } from '../../scripts/sim/field-devices.js';
import { ModbusTcpSimulator } from '../../scripts/sim/modbus-tcp-sim.js';

/** Starts the simulator with a flood sensor (unit 1) and a traffic controller (unit 2). */
export async function startSim(t: Test, opts: { tickMs?: number } = {}): Promise<ModbusTcpSimulator> {
  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>([[1, new FloodLevelSensor()], [2, new TrafficSignalController()]]), { tickMs: opts.tickMs ?? 100 });
  await sim.start();
  t.teardown(() => sim.stop());
  return sim;
}

/** Starts a hub in `dir`/hub. */
export async function startTestHub(t: Test, dir: string, opts: { mqttPort?: number; logger?: Logger } = {}): Promise<Hub> {
  const hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: opts.logger ?? silentLogger(), mqttPort: opts.mqttPort ?? 0, httpPort: 0 });
  t.teardown(() => hub.stop());
  return hub;
}

/** A gateway configuration for the simulator's two devices. */
export function gatewayConfig(dir: string, hubPort: number, simPort: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    gatewayId: 'gw-test-01',
    dataDir: path.join(dir, 'gw'),
    hub: { url: `mqtt://127.0.0.1:${hubPort}`, reconnectMinMs: 100, reconnectMaxMs: 500 },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300, reconnectMinMs: 100, reconnectMaxMs: 500 }],
    devices: [
      { id: 'flood-1', bus: 'lan', unitId: 1, profile: 'flood-level-sensor', pollIntervalMs: 100 },
      { id: 'tsc-1', bus: 'lan', unitId: 2, profile: 'traffic-signal-controller', pollIntervalMs: 100 },
    ],
    outbox: { flushIntervalMs: 20 },
    uplink: { statusIntervalS: 1 },
    ...extra,
  };
}

/** Starts a gateway with `config`. */
export async function startTestGateway(t: Test, config: Record<string, unknown>, logger: Logger = silentLogger()): Promise<Gateway> {
  const gw = await startGateway({ config, source: '<test>', logger });
  t.teardown(() => gw.stop());
  return gw;
}
