/**
 * bench:modbus-scale — 500 Modbus TCP devices (one endpoint each, simulated
 * in a separate process) × 30 points, each polled every 500 ms: 30,000
 * points/s through the whole gateway (pollers, SQLite outbox, MQTT uplink,
 * in its own process) into a hub started here (Aedes, ingest, SQLite). Every
 * poll yields new values, so every point read is a reading committed at the
 * hub. The gateway process measures its own CPU (process.cpuUsage) and RSS.
 * Then shorter poll intervals until the path saturates.
 *
 * --overload (issue 14.10): after the saturation search, the best figure of
 * the whole path into the hub is the saturation figure; then the devices
 * offer `--overload-factor` (6) times it (a shorter poll interval) and the
 * points/s reaching the hub are compared with it: the gateway's poll pacer
 * (gateway/southbound/poll-pacer.ts) must keep delivery close to its best
 * rate (target ≥ 0.8) by stretching polls, reported as overruns. Adds, before
 * the three lines below:
 *   BENCH modbus-overload <points/s at the hub at 6× / saturation figure> ratio
 *
 * Last three lines:
 *   BENCH modbus-scale <sustained points/s at the hub> points/s
 *   BENCH modbus-scale-cpu <gateway CPU> cores
 *   BENCH modbus-scale-rss <gateway peak RSS> MB
 *
 * The gateway process runs the compiled code (npm run build). By default it is
 * scale-gateway-proc.ts (startGateway, reporting its own CPU and RSS) with V8's
 * default heap settings; `--entry main` starts it as the systemd unit does
 * (`dist/bin/main.js run`, measured through /proc), and `--node-flags` passes
 * node options, e.g. the unit's: `--node-flags='--max-semi-space-size=8
 * --heap-growing-percent=50'` (docs/deploy.md, "Memory").
 *
 *   npm run bench:modbus-scale -- [--devices 500] [--points 30] [--interval 500] [--seconds 20] [--no-saturation] [--overload] [--overload-factor 6] [--tsx] [--entry proc|main] [--node-flags='…']
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startHub } from '../../hub/index.js';
import { silentLogger } from '../../lib/index.js';
import { LineProc } from './line-proc.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '500' }, points: { type: 'string', default: '30' }, interval: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '20' }, warmup: { type: 'string', default: '6' }, 'no-saturation': { type: 'boolean' }, tsx: { type: 'boolean' },
    'node-flags': { type: 'string', default: '' }, entry: { type: 'string', default: 'proc' },
    overload: { type: 'boolean' }, 'overload-factor': { type: 'string', default: '6' },
  },
});
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The gateway runs compiled (npm run build), as deployed: under tsx the
 * transpiler alone adds about 30 MB of RSS. --tsx runs the sources instead.
 * V8 runs with its default heap sizing unless --node-flags says otherwise; the
 * live heap is ~27 MB, the rest of the heap is the 32 MB young generation and
 * old-generation garbage between full collections.
 */
/** Extra node flags for the gateway child (--node-flags). */
const nodeFlags = (values['node-flags'] ?? '').split(' ').filter(Boolean);

if (!values.tsx) {
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (!existsSync(path.join(ROOT, 'dist/scripts/bench/scale-gateway-proc.js'))) throw new Error(`npm run build failed (${build.status})`);
}

/**
 * --entry main: the gateway as the systemd unit starts it (`dist/bin/main.js run`, which
 * also loads the other CLI commands), measured from outside through /proc (Linux): CPU
 * from /proc/PID/stat, RSS and peak RSS (VmRSS, VmHWM) from /proc/PID/status. Ready
 * once the hub has committed a reading; "produced" and the backlog are not known.
 * SCALE_MAIN_STDOUT=1 passes its stdout through (for --node-flags=--trace-gc).
 */
function mainChild(configFile: string): Pick<LineProc, 'next' | 'stop'> {
  const flags = nodeFlags.map((f) => `'${f}'`).join(' ');
  const child = spawn('/bin/sh', ['-c', `ulimit -n 8192 2>/dev/null; exec '${process.execPath}' ${flags} '${path.join(ROOT, 'dist/bin/main.js')}' run --config '${configFile}' --log-level warn`], { stdio: ['ignore', process.env.SCALE_MAIN_STDOUT === '1' ? 'inherit' : 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const tick = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  const sample = (): Record<string, unknown> => {
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    return { stats: true, t: Date.now(), cpuUs: ((Number(f[11]) + Number(f[12])) / tick) * 1e6, rss: kb('VmRSS') * 1024, maxRssKb: kb('VmHWM'), backlog: 0, produced: Number.NaN };
  };
  const start = committed;
  return {
    async next(match) {
      if (match({ ready: true })) {
        while (committed === start) await new Promise((r) => setTimeout(r, 100));
        return { ready: true };
      }
      await new Promise((r) => setTimeout(r, 1000));
      return sample();
    },
    async stop(graceMs = 10_000) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

const devices = Number(values.devices);
const points = Number(values.points);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);

const dir = mkdtempSync(path.join(tmpdir(), 'bench-scale-'));
const profileDir = path.join(dir, 'profiles');
mkdirSync(profileDir);
writeFileSync(path.join(profileDir, 'bench-scale.json'), JSON.stringify({
  model: 'bench-scale', manufacturer: 'bench', protocol: 'modbus', pollIntervalMs: 500,
  points: Array.from({ length: points }, (_, i) => ({ name: `p${i}`, table: 'holding', address: i, type: 'uint16' })),
}));

const hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
let committed = 0;
hub.events.on('batch', ({ readings, duplicate }: { readings: unknown[]; duplicate: boolean }) => {
  if (!duplicate) committed += readings.length;
});
const sim = LineProc.start('scripts/bench/scale-sim-proc.ts', [String(devices)], { nofile: 8192 });
const { ports } = (await sim.next((o) => o.ready === true, 60_000)) as unknown as { ports: number[] };

interface Phase {
  intervalMs: number;
  offered: number;
  sustained: number;
  cores: number;
  peakRssMb: number;
  endRssMb: number;
  /** Readings the gateway's drivers produced per second (into the outbox). */
  produced: number;
  backlog: number;
  /** Poll overruns of all devices during the measured window, and the largest stretch of poll intervals (poll-pacer.ts). */
  overruns: number;
  stretch: number;
  /** Stretch at the end of the window, and uplink connections made during it (a reconnect under load shows here). */
  stretchNow: number;
  connects: number;
}

async function phase(intervalMs: number, secs: number): Promise<Phase> {
  const name = `gw-${intervalMs}`;
  const config = {
    gatewayId: 'gw-scale-01',
    dataDir: path.join(dir, name),
    profileDirs: [profileDir],
    hub: { url: `mqtt://127.0.0.1:${hub.mqttPort}` },
    buses: ports.map((port, i) => ({ id: `dev-${i}`, type: 'modbus-tcp', host: '127.0.0.1', port, timeoutMs: 1000 })),
    devices: ports.map((_, i) => ({ id: `dev-${i}`, bus: `dev-${i}`, unitId: 1, profile: 'bench-scale', pollIntervalMs: intervalMs })),
    uplink: { statusIntervalS: 30 },
  };
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  const gw = values.entry === 'main' ? mainChild(file) : values.tsx ? LineProc.start('scripts/bench/scale-gateway-proc.ts', [file], { nofile: 8192 }) : LineProc.exec([process.execPath, ...nodeFlags, path.join(ROOT, 'dist/scripts/bench/scale-gateway-proc.js'), file], { nofile: 8192 });
  await gw.next((o) => o.ready === true, 120_000);
  const stats: Array<{ t: number; cpuUs: number; rss: number; maxRssKb: number; backlog: number; produced: number; overruns?: number; stretch?: number; stretchNow?: number; connects?: number }> = [];
  let reading = true;
  void (async () => {
    while (reading) stats.push((await gw.next((o) => o.stats === true).catch(() => ({ t: 0, cpuUs: 0, rss: 0, maxRssKb: 0, backlog: 0, produced: 0 }))) as never);
  })();
  await new Promise((r) => setTimeout(r, warmup * 1000));
  const a = { count: committed, t: performance.now(), stat: stats.at(-1) };
  await new Promise((r) => setTimeout(r, secs * 1000));
  const b = { count: committed, t: performance.now(), stat: stats.at(-1) };
  reading = false;
  await gw.stop(30_000);
  const wall = (b.t - a.t) / 1000;
  const cpuWall = a.stat && b.stat ? (b.stat.t - a.stat.t) / 1000 : wall;
  return {
    intervalMs,
    offered: (devices * points * 1000) / intervalMs,
    sustained: (b.count - a.count) / wall,
    cores: a.stat && b.stat ? (b.stat.cpuUs - a.stat.cpuUs) / 1e6 / cpuWall : Number.NaN,
    peakRssMb: Math.max(...stats.map((s) => s.maxRssKb)) / 1024,
    endRssMb: (b.stat?.rss ?? 0) / 1048576,
    produced: a.stat && b.stat ? (b.stat.produced - a.stat.produced) / cpuWall : Number.NaN,
    backlog: b.stat?.backlog ?? 0,
    overruns: (b.stat?.overruns ?? 0) - (a.stat?.overruns ?? 0),
    stretch: b.stat?.stretch ?? 1,
    stretchNow: b.stat?.stretchNow ?? 1,
    connects: (b.stat?.connects ?? 0) - (a.stat?.connects ?? 0),
  };
}

const show = (p: Phase): string =>
  `poll ${p.intervalMs} ms: offered ${Math.round(p.offered)} points/s, gateway produced ${Math.round(p.produced)}/s, sustained ${Math.round(p.sustained)}/s at the hub, gateway ${p.cores.toFixed(3)} cores, RSS ${p.endRssMb.toFixed(0)} MB (peak ${p.peakRssMb.toFixed(0)}), outbox backlog ${p.backlog}, ${p.overruns} poll overruns (stretch up to ×${p.stretch.toFixed(1)}, ×${p.stretchNow.toFixed(1)} at the end), ${p.connects} uplink reconnects`;

const main = await phase(Number(values.interval), seconds);
console.log(show(main));
// Saturation: shorter poll intervals until the gateway's drivers fall behind (produced < 90 % of
// offered) or the hub does (sustained < 90 %): the two limits are reported separately.
let overloadRatio: number | null = null;
if (!values['no-saturation'] || values.overload) {
  let path = main;
  let gateway = main;
  for (const intervalMs of [250, 125, 83, 62, 50]) {
    const p = await phase(intervalMs, Math.max(10, Math.round(seconds / 2)));
    console.log(show(p));
    if (p.sustained > path.sustained) path = p;
    if (p.produced > gateway.produced) gateway = p;
    if (p.produced < 0.9 * p.offered || p.cores > 0.95) break;
  }
  console.log(`saturation, whole path into the hub: about ${Math.round(path.sustained)} points/s (poll ${path.intervalMs} ms)`);
  console.log(`saturation, gateway drivers into the outbox: about ${Math.round(gateway.produced)} points/s (poll ${gateway.intervalMs} ms, ${gateway.cores.toFixed(2)} cores)`);
  if (values.overload) {
    // The devices offer k times what the whole path carried at its best: the poll interval that gives it.
    const k = Number(values['overload-factor']);
    const intervalMs = Math.max(5, Math.round((devices * points * 1000) / (k * path.sustained)));
    const p = await phase(intervalMs, seconds);
    console.log(show(p));
    overloadRatio = p.sustained / path.sustained;
    console.log(`overload: ${k}× the saturation figure offered (${Math.round(p.offered)} points/s), ${Math.round(p.sustained)} points/s reached the hub = ${overloadRatio.toFixed(2)} of the saturation figure ${Math.round(path.sustained)} (target >= 0.8)`);
  }
}
await sim.stop();
await hub.stop();
rmSync(dir, { recursive: true, force: true });
console.log(`gateway node flags: ${values['node-flags'] || '(none)'}${values.tsx ? ', sources under tsx' : ', compiled'}${values.entry === 'main' ? ', started as dist/bin/main.js run' : ''}`);
if (overloadRatio !== null) console.log(`BENCH modbus-overload ${overloadRatio.toFixed(3)} ratio`);
console.log(`BENCH modbus-scale ${Math.round(main.sustained)} points/s`);
console.log(`BENCH modbus-scale-cpu ${main.cores.toFixed(3)} cores`);
console.log(`BENCH modbus-scale-rss ${main.peakRssMb.toFixed(0)} MB`);
