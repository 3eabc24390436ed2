/**
 * The gateway's crash window (issue 14.11, docs/durability.md): the gateway
 * process is SIGKILLed repeatedly while it polls counter devices that record
 * the time they served every value (a witness independent of the gateway).
 * Just before each kill the test reads `ioc_edge_outbox_uncommitted_age_seconds`
 * from the gateway's /metrics: everything appended before (scrape time − that
 * age) was committed. The check: every value the devices served before that
 * point (less one second for the poll's answer to be decoded and appended)
 * reached the hub, none twice; only values inside the window may be missing.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { CounterDevice, type SimDevice } from '../scripts/sim/field-devices.js';
import { freePort } from '../scripts/sim/free-port.js';
import { ModbusTcpSimulator } from '../scripts/sim/modbus-tcp-sim.js';
import { startTestHub } from './support/stack.js';
import { waitFor } from './support/wait.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const GW = 'gw-crash';
const KILLS = 3;
const DEVICES = 3;
/** Time from a device's answer to the reading's append (decode, profile), generous on a loaded machine. */
const ANSWER_TO_APPEND_MS = 1000;

t.test(`SIGKILL × ${KILLS}: nothing older than the reported crash window is lost, nothing doubled`, async (t) => {
  const dir = t.testdir();
  const counters = Array.from({ length: DEVICES }, () => new CounterDevice());
  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>(counters.map((c, i) => [i + 1, c])), { tickMs: 60_000 });
  await sim.start();
  t.teardown(() => sim.stop());
  const hub = await startTestHub(t, dir);
  const httpPort = await freePort();
  const cfgFile = path.join(dir, 'gateway.json');
  writeFileSync(cfgFile, JSON.stringify({
    gatewayId: GW, dataDir: path.join(dir, 'gw'), profileDirs: [path.join(ROOT, 'scripts/fault/profiles')],
    hub: { url: `mqtt://127.0.0.1:${hub.mqttPort}`, reconnectMinMs: 100, reconnectMaxMs: 1000 },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim.port, timeoutMs: 3000 }],
    devices: counters.map((_, i) => ({ id: `c${i + 1}`, bus: 'lan', unitId: i + 1, profile: 'fault-counter', pollIntervalMs: 50 })),
    outbox: { flushIntervalMs: 100 },
    http: { host: '127.0.0.1', port: httpPort },
  }));
  const served = (): number => counters.reduce((n, c) => n + c.servedAt.length, 0);
  const run = () => spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bin/main.ts'), 'run', '--config', cfgFile, '--log-level', 'error'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const metric = async (name: string): Promise<number | null> => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(await res.text());
    return m ? Number(m[1]) : null;
  };

  /** Per run: when it started, and the time before which every served value must survive its kill. */
  const startedAt: number[] = [];
  const committedBefore: number[] = [];
  const windows: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    startedAt.push(Date.now());
    const child = run();
    const exited = new Promise((r) => child.once('exit', r));
    const before = served();
    await waitFor(() => (served() > before + 20 ? metric('ioc_edge_outbox_uncommitted_age_seconds').catch(() => null) : null), 'the gateway polls and serves /metrics', 60_000, 100);
    await sleep(200 + Math.random() * 800);
    const at = Date.now();
    const age = await metric('ioc_edge_outbox_uncommitted_age_seconds');
    child.kill('SIGKILL');
    await exited;
    t.type(age, 'number', 'the crash window is reported');
    windows.push(age! * 1000);
    committedBefore.push(at - age! * 1000 - ANSWER_TO_APPEND_MS);
  }
  // A last run drains everything to the hub; then the devices go quiet.
  startedAt.push(Date.now());
  committedBefore.push(Infinity);
  const last = run();
  t.teardown(() => void last.kill('SIGKILL'));
  await waitFor(() => metric('ioc_edge_uplink_connected').catch(() => null), 'the last run connected', 60_000, 100);
  sim.silent(true);
  const goal = served();
  await waitFor(async () => {
    const rows = await hub.store.history({ gateway: GW, device: 'c1', point: 'count', from: 0, to: Date.now() + 60_000, limit: 1_000_000 });
    const max = Math.max(0, ...rows.map((r) => r.value as number));
    return max >= counters[0]!.servedAt.length && (await metric('ioc_edge_outbox_readings')) === 0;
  }, `the hub has everything the last run read (${goal} served)`, 60_000, 200);
  const gone = new Promise((r) => last.once('exit', r));
  last.kill('SIGTERM');
  await gone;

  let lostOutside = 0;
  let lostInside = 0;
  let duplicates = 0;
  for (const [i, c] of counters.entries()) {
    const rows = await hub.store.history({ gateway: GW, device: `c${i + 1}`, point: 'count', from: 0, to: Date.now() + 60_000, limit: 1_000_000 });
    const values = rows.filter((r) => r.quality === 'good').map((r) => r.value as number);
    const have = new Set(values);
    duplicates += values.length - have.size;
    for (let v = 1; v <= c.servedAt.length; v++) {
      if (have.has(v)) continue;
      const s = c.servedAt[v - 1]!;
      // The run that read it: the last one started before it was served. Lost by that run's kill
      // is allowed only inside the window it reported (the last run is never killed: Infinity).
      let k = startedAt.length - 1;
      while (k > 0 && startedAt[k]! > s) k--;
      if (s < committedBefore[k]!) lostOutside++;
      else lostInside++;
    }
  }
  t.comment(`crash windows reported at the kills: ${windows.map((w) => `${Math.round(w)} ms`).join(', ')}; readings lost inside them: ${lostInside}`);
  t.equal(duplicates, 0, 'nothing stored twice');
  t.equal(lostOutside, 0, 'nothing lost that was older than the reported window');
});
