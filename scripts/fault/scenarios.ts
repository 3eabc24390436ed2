/**
 * Fault scenarios with real processes: a Modbus simulator of counter devices
 * (each read serves the next integer, with its time), a hub and a gateway,
 * one of which is a child process that gets killed. Every scenario ends by
 * silencing the devices, letting the gateway drain, and comparing what the
 * devices served with what the hub stored. Used by `test/fault-hub.test.ts` and `test/fault-gateway.test.ts`
 * (short runs) and `scripts/fault/run.ts` (long runs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway, type Gateway } from '../../gateway/index.js';
import { startHub, type Hub } from '../../hub/index.js';
import { silentLogger } from '../../lib/index.js';
import { spawnTs, stopChild } from '../bench/spawn.js';
import { CounterDevice, type SimDevice } from '../sim/field-devices.js';
import { freePort } from '../sim/free-port.js';
import { ModbusTcpSimulator } from '../sim/modbus-tcp-sim.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GW = 'gw-fault';

/** What a scenario found. */
export interface FaultReport {
  scenario: string;
  kills: number;
  /** Values the devices served. */
  served: number;
  /** Good readings of those values the hub stored. */
  stored: number;
  /** Values stored more than once. */
  duplicates: number;
  /** Served values the hub does not have. */
  lost: number;
  /** Lost values not explained by a gateway crash (served more than `windowMs` before any kill). */
  lostUnexplained: number;
  /** Readings the gateway dropped by its budget, as it reported. */
  dropped: number;
  /** Per device, whether the stored values form a contiguous run ending at the last served value. */
  newestKept: boolean;
}

/** Options common to all scenarios. */
export interface ScenarioOptions {
  devices?: number;
  pollMs?: number;
  /** Random durations between faults, ms. */
  runMs?: [number, number];
  log?: (line: string) => void;
}

async function withSim(devices: number): Promise<{ sim: ModbusTcpSimulator; counters: CounterDevice[] }> {
  const counters = Array.from({ length: devices }, () => new CounterDevice());
  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>(counters.map((c, i) => [i + 1, c])), { tickMs: 60_000 });
  await sim.start();
  return { sim, counters };
}

function gatewayConfig(dir: string, hubPort: number, simPort: number, devices: number, pollMs: number, outbox: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    gatewayId: GW,
    dataDir: path.join(dir, 'gw'),
    profileDirs: [path.join(ROOT, 'scripts/fault/profiles')],
    hub: { url: `mqtt://127.0.0.1:${hubPort}`, reconnectMinMs: 100, reconnectMaxMs: 1000 },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 3000, reconnectMinMs: 100, reconnectMaxMs: 1000 }],
    devices: Array.from({ length: devices }, (_, i) => ({ id: `c${i + 1}`, bus: 'lan', unitId: i + 1, profile: 'fault-counter', pollIntervalMs: pollMs })),
    outbox: { flushIntervalMs: 50, ...outbox },
    uplink: { statusIntervalS: 1 },
  };
}

const rand = ([a, b]: [number, number]): number => a + Math.floor(Math.random() * (b - a));

/** Compares served and stored values. `stored` maps device → good values at the hub. */
function account(scenario: string, counters: CounterDevice[], stored: Map<string, number[]>, kills: number[], windowMs: number, dropped: number, faults = kills.length): FaultReport {
  const r: FaultReport = { scenario, kills: faults, served: 0, stored: 0, duplicates: 0, lost: 0, lostUnexplained: 0, dropped, newestKept: true };
  counters.forEach((c, i) => {
    const values = stored.get(`c${i + 1}`) ?? [];
    const set = new Set(values);
    r.served += c.servedAt.length;
    r.stored += values.length;
    r.duplicates += values.length - set.size;
    let minStored = Infinity;
    for (const v of set) minStored = Math.min(minStored, v);
    for (let v = 1; v <= c.servedAt.length; v++) {
      if (set.has(v)) continue;
      r.lost++;
      const at = c.servedAt[v - 1]!;
      // A request the dead process sent just before the kill may still be answered just after it.
      if (!kills.some((k) => at <= k + 500 && at >= k - windowMs)) r.lostUnexplained++;
      if (v > minStored) r.newestKept = false;
    }
  });
  // Readings the budget dropped were counted by the gateway: they explain that many losses.
  r.lostUnexplained = Math.max(0, r.lostUnexplained - dropped);
  return r;
}

async function storedFromHub(hub: Hub, devices: number): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (let i = 1; i <= devices; i++) {
    const rows = await hub.store.history({ gateway: GW, device: `c${i}`, point: 'count', from: 0, to: Date.now() + 60_000, limit: 10_000_000 });
    out.set(`c${i}`, rows.filter((r) => r.quality === 'good').map((r) => r.value as number));
  }
  return out;
}

async function storedFromApi(httpPort: number, devices: number): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (let i = 1; i <= devices; i++) {
    const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/readings?gateway=${GW}&device=c${i}&point=count&from=0&to=${Date.now() + 60_000}&limit=100000`);
    const body = (await res.json()) as { items: Array<{ value: number; quality: string }> };
    out.set(`c${i}`, body.items.filter((r) => r.quality === 'good').map((r) => r.value));
  }
  return out;
}

/** Waits until an in-process gateway has nothing left to send. */
async function drained(gw: Gateway, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await gw.outbox.flush().catch(() => undefined);
    const s = gw.outbox.stats();
    if (s.rows === 0 && s.appended === s.acked + s.dropped) return;
    if (Date.now() > deadline) throw new Error(`gateway did not drain: ${JSON.stringify(s)}`);
    await sleep(100);
  }
}

/** (b) The gateway process is SIGKILLed at random moments under load, `kills` times, then runs to the end. */
export async function gatewayKills(kills: number, opts: ScenarioOptions = {}): Promise<FaultReport> {
  const devices = opts.devices ?? 5;
  const dir = await mkdtemp(path.join(tmpdir(), 'ioc-fault-gw-'));
  const { sim, counters } = await withSim(devices);
  const hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  const cfgFile = path.join(dir, 'gateway.json');
  await writeFile(cfgFile, JSON.stringify(gatewayConfig(dir, hub.mqttPort, sim.port, devices, opts.pollMs ?? 50)));
  const run = (): ChildProcess => spawn(process.execPath, [path.join(ROOT, 'bin/ioc-edge.js'), 'run', '--config', cfgFile, '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const killTimes: number[] = [];
  try {
    for (let i = 0; i < kills; i++) {
      const child = run();
      const exited = new Promise((r) => child.once('exit', r));
      // Kill it under load: only once it polls (start-up is slow on a busy machine).
      const before = counters.reduce((n, c) => n + c.servedAt.length, 0);
      const deadline = Date.now() + 60_000;
      while (counters.reduce((n, c) => n + c.servedAt.length, 0) === before && child.exitCode === null && Date.now() < deadline) await sleep(50);
      await sleep(rand(opts.runMs ?? [800, 2000]));
      if (child.exitCode !== null) throw new Error(`gateway process exited by itself with code ${child.exitCode}`);
      killTimes.push(Date.now());
      child.kill('SIGKILL');
      await exited;
      opts.log?.(`kill ${i + 1}/${kills}: served ${counters.reduce((n, c) => n + c.servedAt.length, 0)}, hub has ${hub.store.counters.readings}`);
    }
    const last = run();
    await sleep(1000);
    sim.silent(true);
    // The last gateway drains; the hub's count stops moving once it has everything.
    let prev = -1;
    for (let stable = 0; stable < 3; ) {
      await sleep(700);
      const now = hub.store.counters.readings;
      stable = now === prev ? stable + 1 : 0;
      prev = now;
    }
    await stopChild(last);
    const stored = await storedFromHub(hub, devices);
    return account('gateway SIGKILL', counters, stored, killTimes, 2000, 0);
  } finally {
    await hub.stop();
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** (a)/(c) The hub process is stopped (SIGTERM, an outage) or killed (SIGKILL) under load, `faults` times. */
export async function hubFaults(faults: number, signal: 'SIGKILL' | 'SIGTERM', opts: ScenarioOptions & { downMs?: [number, number] } = {}): Promise<FaultReport> {
  const devices = opts.devices ?? 5;
  const dir = await mkdtemp(path.join(tmpdir(), 'ioc-fault-hub-'));
  const { sim, counters } = await withSim(devices);
  const hubDir = path.join(dir, 'hub');
  let hub = await spawnTs<{ mqttPort: number; httpPort: number }>('scripts/bench/hub-process.ts', [hubDir]);
  const port = hub.info.mqttPort;
  const gw = await startGateway({ config: gatewayConfig(dir, port, sim.port, devices, opts.pollMs ?? 50), source: '<fault>', logger: silentLogger() });
  try {
    for (let i = 0; i < faults; i++) {
      await sleep(rand(opts.runMs ?? [800, 2000]));
      const exited = new Promise((r) => hub.child.once('exit', r));
      if (hub.child.exitCode !== null) throw new Error(`hub process exited by itself with code ${hub.child.exitCode}`);
      hub.child.kill(signal);
      await exited;
      await sleep(rand(opts.downMs ?? [200, 1500]));
      hub = await spawnTs('scripts/bench/hub-process.ts', [hubDir, String(port)]);
      opts.log?.(`${signal} ${i + 1}/${faults}: served ${counters.reduce((n, c) => n + c.servedAt.length, 0)}, gateway backlog ${gw.outbox.stats().rows}`);
    }
    await sleep(500);
    sim.silent(true);
    await drained(gw);
    const stored = await storedFromApi(hub.info.httpPort, devices);
    return account(signal === 'SIGKILL' ? 'hub SIGKILL' : 'hub outage', counters, stored, [], 0, gw.outbox.stats().dropped, faults);
  } finally {
    await gw.stop();
    await stopChild(hub.child);
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** (d) The hub is away while the gateway polls past its row budget; the oldest readings are dropped, counted. */
export async function budgetOverflow(maxRows: number, opts: ScenarioOptions = {}): Promise<FaultReport> {
  const devices = opts.devices ?? 5;
  const dir = await mkdtemp(path.join(tmpdir(), 'ioc-fault-budget-'));
  const { sim, counters } = await withSim(devices);
  const port = await freePort();
  const gw = await startGateway({ config: gatewayConfig(dir, port, sim.port, devices, opts.pollMs ?? 50, { maxRows }), source: '<fault>', logger: silentLogger() });
  let hub: Hub | null = null;
  try {
    while (gw.outbox.stats().appended < maxRows * 2.5) await sleep(100);
    sim.silent(true);
    await sleep(300);
    hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort: port, httpPort: 0 });
    await drained(gw);
    const stored = await storedFromHub(hub, devices);
    return account('budget overflow', counters, stored, [], 0, gw.outbox.stats().dropped);
  } finally {
    await gw.stop();
    await hub?.stop();
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
