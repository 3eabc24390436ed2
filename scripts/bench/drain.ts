/**
 * bench:drain — 1,000,000 readings buffered in a gateway's outbox (the uplink
 * was down) drain into the hub's store while live polling continues. The hub
 * and the gateway each run in their own process (`ioc-edge run`); the
 * simulated devices run here. Prints end-to-end readings/s and the gateway's
 * peak RSS (VmHWM). The gateway runs with the V8 flags of the systemd unit
 * (docs/systemd/ioc-edge-gateway.service, read from its ExecStart line; see
 * docs/deploy.md 'Memory'). GW_NODE_FLAGS overrides them.
 *
 *   npm run bench:drain -- [--readings N] [--store postgres]
 *
 * With `--store postgres` the hub runs on PostgreSQL (IOC_EDGE_TEST_PG, default
 * postgres://postgres@127.0.0.1:5432/postgres) in a scratch schema dropped after.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteOutbox } from '../../gateway/outbox/sqlite-outbox.js';
import { silentLogger } from '../../lib/index.js';
import type { Reading } from '../../contract/index.js';
import { FloodLevelSensor, TrafficSignalController, type SimDevice } from '../sim/field-devices.js';
import { ModbusTcpSimulator } from '../sim/modbus-tcp-sim.js';
import { spawnTs, stopChild } from './spawn.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { values } = parseArgs({ options: { readings: { type: 'string', default: '1000000' }, store: { type: 'string', default: 'sqlite' } } });
const N = Number(values.readings);
if (values.store !== 'sqlite' && values.store !== 'postgres') throw new Error(`--store sqlite|postgres, not '${values.store}'`);
const pgSchema = values.store === 'postgres' ? `bench_drain_${process.pid}` : null;
const pgUrl = process.env.IOC_EDGE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const storeEnv: Record<string, string> = pgSchema ? { IOC_EDGE_HUB_STORE: `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}schema=${pgSchema}` } : {};
const dir = await mkdtemp(path.join(tmpdir(), 'ioc-bench-drain-'));
const gwDir = path.join(dir, 'gw');

// 1. The backlog: N readings in the gateway's outbox, as a long outage leaves them.
const pre = new SqliteOutbox({ file: path.join(gwDir, 'outbox.sqlite'), logger: silentLogger(), limits: { maxRows: 100_000_000, maxBytes: 2 ** 40, maxAgeMs: 7 * 86_400_000 }, flushRows: 10_000 });
await import('node:fs/promises').then((fs) => fs.mkdir(gwDir, { recursive: true }));
await pre.start();
const t0 = Date.now() - 3_600_000;
for (let i = 0; i < N; i += 10_000) {
  const chunk: Reading[] = [];
  for (let j = i; j < Math.min(N, i + 10_000); j++) chunk.push({ device: `dev-${j % 500}`, point: `p${j % 30}`, ts: t0 + Math.floor(j / 300), value: Math.round(Math.sin(j) * 1e6) / 1e3, quality: 'good' });
  pre.append(chunk);
  await pre.flush();
}
await pre.stop();

// 2. Hub in its own process; live devices here.
const hub = await spawnTs<{ mqttPort: number; httpPort: number }>('scripts/bench/hub-process.ts', [path.join(dir, 'hub')], { HISTORICAL_TARGET: String(N), ...storeEnv });
// The hub says when it has committed the N-th backlog (historical) reading: the end of the drain.
let historicalAt = 0;
createInterface({ input: hub.child.stdout! }).on('line', (line) => {
  if (line.includes('"historical"')) historicalAt = (JSON.parse(line) as { at: number }).at;
});
const sim = new ModbusTcpSimulator(new Map<number, SimDevice>([[1, new FloodLevelSensor()], [2, new TrafficSignalController()]]), { tickMs: 100 });
await sim.start();
const cfg = {
  gatewayId: 'gw-drain', dataDir: gwDir,
  hub: { url: `mqtt://127.0.0.1:${hub.info.mqttPort}` },
  buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim.port, timeoutMs: 1000 }],
  devices: [
    { id: 'flood-1', bus: 'lan', unitId: 1, profile: 'flood-level-sensor', pollIntervalMs: 100 },
    { id: 'tsc-1', bus: 'lan', unitId: 2, profile: 'traffic-signal-controller', pollIntervalMs: 100 },
  ],
  uplink: { statusIntervalS: 1, batchSize: 2000, window: 8 },
};
await writeFile(path.join(dir, 'gw.json'), JSON.stringify(cfg));

// 3. Build, start the compiled gateway and watch the hub until the backlog is in.
execFileSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
const start = Date.now();
const unit = await readFile(path.join(ROOT, 'docs/systemd/ioc-edge-gateway.service'), 'utf8');
const unitFlags = (/^ExecStart=\S+node((?:\s+--\S+)*)/m.exec(unit)?.[1] ?? '').trim();
const gw = spawn(process.execPath, [...(process.env.GW_NODE_FLAGS ?? unitFlags).split(' ').filter(Boolean), path.join(ROOT, 'dist/bin/main.js'), 'run', '--config', path.join(dir, 'gw.json'), '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
let live = 0;
let done = 0;
for (;;) {
  await sleep(100);
  if (historicalAt > 0) {
    done = historicalAt;
    break;
  }
  const res = await fetch(`http://127.0.0.1:${hub.info.httpPort}/api/v1/gateways`).then((r) => r.json() as Promise<{ items: Array<{ id: string; backlog?: { rows: number; historical?: number } }> }>).catch(() => null);
  const b = res?.items.find((g) => g.id === 'gw-drain')?.backlog;
  const latest = await fetch(`http://127.0.0.1:${hub.info.httpPort}/api/v1/readings/latest?gateway=gw-drain&device=flood-1`).then((r) => r.json() as Promise<{ items: Array<{ ts: number }> }>).catch(() => null);
  if (latest?.items.length) live = Math.max(live, ...latest.items.map((r) => r.ts));
  if (b && b.rows < 1000 && (b.historical ?? 0) === 0 && Date.now() - start > 1500) {
    // Fallback when the count never reaches N: the gateway reports its backlog gone (up to a status interval late).
    done = Date.now();
    console.log('(end taken from the gateway status: the hub did not count all backlog readings as historical)');
    break;
  }
  if (Date.now() - start > 600_000) throw new Error('drain did not finish in 10 minutes');
}
const status = await readFile(`/proc/${gw.pid}/status`, 'utf8');
const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
const liveLagMs = done - live;
const exited = new Promise((r) => gw.once('exit', r));
gw.kill('SIGTERM');
await exited;
await stopChild(hub.child);
await sim.stop();
await rm(dir, { recursive: true, force: true });
if (pgSchema) {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`);
  await c.end();
}
const seconds = (done - start) / 1000;
console.log(`gateway node flags: ${process.env.GW_NODE_FLAGS ?? unitFlags}`);
console.log(`drained ${N} buffered readings in ${seconds.toFixed(1)} s (includes gateway start-up) while polling live; newest live reading at the hub was ${liveLagMs} ms old at the end; gateway peak RSS ${(hwmKb / 1024).toFixed(0)} MB`);
console.log(`BENCH drain-rss ${(hwmKb / 1024).toFixed(0)} MB`);
console.log(`store: ${values.store}`);
console.log(`BENCH ${pgSchema ? 'drain-postgres' : 'drain'} ${Math.round(N / seconds)} readings/s`);
