/**
 * bench:reconnect-storm — a fleet coming back after a hub outage (issue 14.12).
 * A hub with authentication (production scrypt cost unless --scrypt-n) in its
 * own process; N gateways in WORKERS client processes that reconnect exactly
 * as the uplink does (storm-clients.ts: full jitter under hub.reconnectMaxMs).
 * All connect, the hub is killed (SIGKILL, as a crash), stays down for
 * --outage-s, and starts again on the same port with the same data. Measured
 * from the moment the new hub is ready (or accepted its first login, if
 * earlier): each gateway's return (median, p95,
 * all back) and the hub's connection rate (CONNACKs per second, peak).
 *
 * The gateways connect from `--sources` loopback addresses (127.0.0.1…N,
 * default 20: 500 gateways per address for 10,000, as sites or carrier NATs
 * would). `--sources 1` puts the whole fleet behind one address, where the
 * hub's bound of connections per source without a completed CONNECT
 * (maxPendingPerSource, 1,024) refuses the excess at once.
 * Prints the kernel's listen-queue overflows during the return (nstat, where
 * present): SYNs dropped because the hub's accept queue was full.
 *
 *   npm run bench:reconnect-storm -- [--count 10000] [--workers 2] [--outage-s 20]
 *        [--min-ms 500] [--max-ms 10000] [--sources 20] [--scrypt-n N]
 *
 * Last lines: BENCH reconnect-storm-median <s> s, BENCH reconnect-storm-all <s> s,
 * BENCH reconnect-storm-peak <n> connects/s.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { LineProc } from './line-proc.js';
import { loginReport } from './login-report.js';
import { CONNECT_TIMEOUT_MS } from '../../gateway/uplink/uplink-settings.js';
import { freePort } from '../sim/free-port.js';

const { values: a } = parseArgs({ options: {
  count: { type: 'string' }, workers: { type: 'string' }, 'outage-s': { type: 'string' }, 'min-ms': { type: 'string' }, 'max-ms': { type: 'string' }, 'scrypt-n': { type: 'string' }, sources: { type: 'string' },
} });
const count = Number(a.count ?? 10_000);
const workers = Number(a.workers ?? 2);
const outageS = Number(a['outage-s'] ?? 20);
const minMs = Number(a['min-ms'] ?? 500);
const maxMs = Number(a['max-ms'] ?? 10_000);
const sources = Array.from({ length: Math.max(1, Number(a.sources ?? 20)) }, (_, i) => `127.0.0.${i + 1}`);
const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-storm-'));
const port = await freePort();
const env = { MQTT_PORT: String(port), ...(a['scrypt-n'] ? { SCRYPT_N: a['scrypt-n'] } : {}) };
const startHub = (): LineProc => LineProc.start('scripts/bench/secure-hub-process.ts', [path.join(dir, 'hub')], { nofile: 65536, env });
/** The kernel's count of SYNs dropped for a full accept queue (TcpExtListenOverflows; machine-wide), or null without nstat. */
function listenOverflows(): number | null {
  try {
    const out = execFileSync('nstat', ['-az', '--json', 'TcpExtListenOverflows'], { encoding: 'utf8', env: { ...process.env, NSTAT_HISTORY: path.join(dir, 'nstat.history') } });
    const kernel = (JSON.parse(out) as { kernel?: Record<string, number> }).kernel;
    return kernel?.TcpExtListenOverflows ?? null;
  } catch {
    return null;
  }
}
const quantile = (xs: number[], q: number): number => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

let hub = startHub();
const procs: LineProc[] = [];
const connectedNow = async (): Promise<{ connected: number; attempts: number }> => {
  const rs = await Promise.all(procs.map((p) => p.ask('status', (o) => 'connected' in o)));
  return { connected: rs.reduce((n, r) => n + (r.connected as number), 0), attempts: rs.reduce((n, r) => n + (r.attempts as number), 0) };
};
const waitAll = async (what: string, limitS: number): Promise<void> => {
  const until = Date.now() + limitS * 1000;
  for (;;) {
    const s = await connectedNow();
    if (s.connected >= count) return;
    if (Date.now() > until) throw new Error(`${what}: only ${s.connected} of ${count} connected after ${limitS} s`);
    await sleep(250);
  }
};
try {
  await hub.next((o) => o.ready === true);
  const credFile = path.join(dir, 'creds.json');
  const issued = await hub.ask(`issue ${count} gw ${credFile}`, (o) => 'issued' in o);
  console.log(`issued ${count} gateway credentials in ${(issued.seconds as number).toFixed(1)} s`);
  const per = Math.ceil(count / workers);
  for (let w = 0; w < workers; w++) {
    const cfg = path.join(dir, `w${w}.json`);
    await writeFile(cfg, JSON.stringify({ port, creds: credFile, from: w * per, to: Math.min(count, (w + 1) * per), minMs, maxMs, connectTimeoutMs: CONNECT_TIMEOUT_MS, keepaliveS: 120, localAddresses: sources }));
    procs.push(LineProc.start('scripts/bench/storm-clients.ts', [cfg], { nofile: per + 1024 }));
  }
  await Promise.all(procs.map((p) => p.next((o) => o.ready === true)));
  const t0 = Date.now();
  await waitAll('first connection', 600);
  console.log(`${count} gateways connected in ${((Date.now() - t0) / 1000).toFixed(1)} s (backoff: full jitter, ${minMs}..${maxMs} ms)`);

  hub.child.kill('SIGKILL');
  await hub.stop(1000).catch(() => undefined);
  const killedAt = Date.now();
  const before = await connectedNow();
  await sleep(outageS * 1000);
  const during = await connectedNow();
  console.log(`hub down ${outageS} s: ${((during.attempts - before.attempts) / outageS).toFixed(0)} connection attempts/s at the dead port`);
  const overflowsBefore = listenOverflows();
  hub = startHub();
  await hub.next((o) => o.ready === true);
  let readyAt = Date.now();
  const hubBefore = await hub.ask('stats', (o) => 'rss' in o);
  console.log(`hub ready again ${((readyAt - killedAt) / 1000).toFixed(1)} s after the kill`);
  await waitAll('reconnection', 600);
  const overflows = overflowsBefore === null ? null : (listenOverflows() ?? overflowsBefore) - overflowsBefore;
  const hubAfter = await hub.ask('stats', (o) => 'rss' in o);
  console.log(loginReport(hubBefore, hubAfter, (Date.now() - readyAt) / 1000));
  const reports = await Promise.all(procs.map((p) => p.ask('report', (o) => 'connectedAt' in o)));
  const at = reports.flatMap((r) => r.connectedAt as number[]);
  // The hub accepts logins a little before it says ready (the API starts after the broker): count from the earlier.
  const firstLogin = Math.min(...at);
  if (firstLogin < readyAt) console.log(`first login ${((readyAt - firstLogin) / 1000).toFixed(1)} s before the hub said ready: counting from the first login`);
  readyAt = Math.min(readyAt, firstLogin);
  const back = at.map((t) => (t - readyAt) / 1000).sort((x, y) => x - y);
  const bins = new Map<number, number>();
  for (const t of at) bins.set(Math.floor((t - readyAt) / 1000), (bins.get(Math.floor((t - readyAt) / 1000)) ?? 0) + 1);
  const peak = Math.max(...bins.values());
  const attempts = reports.reduce((n, r) => n + (r.attempts as number), 0) - during.attempts;
  console.log(`back after the hub was ready: median ${quantile(back, 0.5).toFixed(2)} s, p95 ${quantile(back, 0.95).toFixed(2)} s, all ${back[back.length - 1]!.toFixed(2)} s; ${attempts} attempts for ${count} returns`);
  console.log(`from ${sources.length} source address${sources.length > 1 ? 'es' : ''}; listen queue overflows during the return (SYNs the kernel dropped): ${overflows ?? 'not known (no nstat)'}`);
  console.log(`connections per second at the hub: ${[...bins.entries()].sort((x, y) => x[0] - y[0]).map(([s, n]) => `${s}s:${n}`).join(' ')}`);
  console.log(`BENCH reconnect-storm-median ${quantile(back, 0.5).toFixed(2)} s`);
  console.log(`BENCH reconnect-storm-all ${back[back.length - 1]!.toFixed(2)} s`);
  console.log(`BENCH reconnect-storm-peak ${peak} connects/s`);
} finally {
  await Promise.all(procs.map((p) => p.stop()));
  await hub.stop(30_000);
  await rm(dir, { recursive: true, force: true });
}
