/**
 * bench:connections — authenticated gateway connections held by one hub
 * process (issue 16: 50,000 on one node, RSS ≤ 20 KiB each). The hub runs
 * with authentication (scrypt-hashed credentials, the production cost) in its
 * own process. It issues N gateway credentials, then is restarted on the same
 * data, so the RSS baseline is a fresh process and every login is a fresh
 * scrypt check, as for a fleet returning after a hub restart. N gateways, each
 * with its own credential and client id, connect from WORKERS client processes
 * (storm-clients.ts "hold": raw sockets, a hand-made CONNECT) spread over
 * SOURCES loopback addresses 127.0.0.1…127.0.0.SOURCES (loopback has ~28,000
 * ephemeral ports per source address), and stay connected (PINGREQ).
 *
 * Reports: logins/s, the CONNACK codes seen (all 0 is the pass), held
 * connections, and the hub's RSS and V8 heap per held connection
 * ((after − before) / held, both after a full GC).
 *
 *   npm run bench:connections -- [--count 50000] [--workers W] [--sources S]
 *        [--concurrency 128] [--hold-s 5] [--heap-snapshot FILE]
 *
 * --heap-snapshot writes the hub's V8 heap snapshot while it holds the
 * connections (open it in Chrome DevTools, Memory tab): where the heap per
 * connection goes.
 *
 * Open files: each held connection is a descriptor in the hub, and each client
 * socket one in a worker. Every process tries to raise its limit (`ulimit -n`,
 * else the hard limit). Where the hub's hard limit is below count + 256 the run
 * is capped to what fits, says so, and the BENCH line shows what was held:
 * raise the limit (`ulimit -Hn 65536` with CAP_SYS_RESOURCE, LimitNOFILE= in systemd).
 *
 * Last lines: BENCH connections-rss-per-conn <KiB> KiB, BENCH connections <held> connections.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { LineProc } from './line-proc.js';
import { loginReport } from './login-report.js';

const { values: a } = parseArgs({ options: {
  count: { type: 'string' }, workers: { type: 'string' }, sources: { type: 'string' }, concurrency: { type: 'string' }, 'hold-s': { type: 'string' }, 'heap-snapshot': { type: 'string' },
} });
const positive = (name: string, v: string | undefined, dflt: number): number => {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, got '${v}'`);
    process.exit(2);
  }
  return n;
};
/** Descriptors a process needs besides its sockets (SQLite files, listeners, stdio, the inspector…). */
const FD_MARGIN = 256;
/** The open-file hard limit children get (they raise their soft limit to it at most). */
const hardLimit = ((): number => {
  const out = execFileSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  return out === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(out);
})();
const asked = positive('count', a.count, 50_000);
const count = Math.min(asked, hardLimit - FD_MARGIN);
if (count < asked) {
  console.log(`WARNING: the open-file hard limit is ${hardLimit}: one hub process can hold at most ${count} connections here, so this run holds ${count}, not ${asked}. Raise the limit (ulimit -Hn ${asked + 2 * FD_MARGIN} with CAP_SYS_RESOURCE, or LimitNOFILE=) to run ${asked}`);
}
// Each worker's sockets must fit its own limit too.
const workers = Math.max(positive('workers', a.workers, 2), Math.ceil(count / (hardLimit - FD_MARGIN)));
// ~28,000 ephemeral ports per source address; keep each well inside it (sized for the count asked,
// so a capped run still spreads its sockets as the full one would).
const sourceCount = positive('sources', a.sources, Math.max(1, Math.ceil(asked / 20_000)));
if (sourceCount > 254) {
  console.error(`--sources must be at most 254 (127.0.0.1…127.0.0.254), got ${sourceCount}`);
  process.exit(2);
}
const sources = Array.from({ length: sourceCount }, (_, i) => `127.0.0.${i + 1}`);
const concurrency = positive('concurrency', a.concurrency, 128);
const holdS = positive('hold-s', a['hold-s'], 5);
const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-conn-'));
const mb = (b: number): string => `${(b / 1048576).toFixed(0)} MB`;
const kib = (b: number): string => (b / 1024).toFixed(1);
const startHub = (): LineProc => LineProc.start('scripts/bench/secure-hub-process.ts', [path.join(dir, 'hub')], { nofile: count + 2 * FD_MARGIN });

let hub = startHub();
const procs: LineProc[] = [];
try {
  await hub.next((o) => o.ready === true);
  const credFile = path.join(dir, 'creds.json');
  const issued = await hub.ask(`issue ${count} gw ${credFile}`, (o) => 'issued' in o);
  console.log(`issued ${count} gateway credentials in ${(issued.seconds as number).toFixed(1)} s (scrypt hash each)`);
  // A fresh hub process on the same data: a clean RSS baseline, and no login verified yet.
  await hub.stop(30_000);
  hub = startHub();
  const ready = await hub.next((o) => o.ready === true);
  if (typeof ready.maxOpenFiles === 'number' && ready.maxOpenFiles < count + FD_MARGIN) {
    console.log(`WARNING: the hub's open-file limit is ${ready.maxOpenFiles}: connections past ~${ready.maxOpenFiles - FD_MARGIN} will fail`);
  }
  const before = await hub.ask('stats', (o) => 'rss' in o);
  const load0 = os.loadavg()[0]!;
  // Two halves, stats between them: the second half's RSS growth per connection is the marginal cost,
  // free of the fresh process's one-off growth (JIT code, V8 young generation, malloc arenas).
  const half = Math.floor(count / 2);
  const per = Math.ceil(half / workers);
  const runHalf = (from: number, to: number, tag: string): Promise<Array<Record<string, unknown>>> => {
    const n = Math.ceil((to - from) / workers);
    return Promise.all(Array.from({ length: workers }, async (_, w) => {
      const cfg = path.join(dir, `w${tag}${w}.json`);
      await writeFile(cfg, JSON.stringify({ mode: 'hold', port: ready.mqttPort, creds: credFile, from: from + w * n, to: Math.min(to, from + (w + 1) * n), concurrency: Math.ceil(concurrency / workers), keepaliveS: 300, localAddresses: sources }));
      const p = LineProc.start('scripts/bench/storm-clients.ts', [cfg], { nofile: per + FD_MARGIN });
      procs.push(p);
      await p.next((o) => o.ready === true);
      return p.next((o) => o.done === true);
    }));
  };
  const t0 = performance.now();
  const results = await runHalf(0, half, 'a');
  const tMid = performance.now();
  const mid = await hub.ask('stats', (o) => 'rss' in o);
  const pausedS = (performance.now() - tMid) / 1000; // the mid-way stats (a full GC) is not login time
  results.push(...(await runHalf(half, count, 'b')));
  const seconds = (performance.now() - t0) / 1000 - pausedS;
  const ok = results.reduce((n, r) => n + (r.ok as number), 0);
  const codes: Record<string, number> = {};
  for (const r of results) for (const [c, n] of Object.entries(r.codes as Record<string, number>)) codes[c] = (codes[c] ?? 0) + n;
  const loadAvg = Math.max(load0, os.loadavg()[0]!);
  const during = await hub.ask('stats', (o) => 'rss' in o);
  console.log(`${ok} logins in ${seconds.toFixed(1)} s: ${(ok / seconds).toFixed(0)} logins/s from ${workers} workers over ${sources.length} source addresses (${during.scryptChecks as number} scrypt checks: every login a full check, as after a hub restart; peak ${during.peakConcurrentLogins as number} checks at once)`);
  console.log(loginReport(before, during, seconds));
  const allZero = Object.keys(codes).every((c) => c === '0');
  console.log(`CONNACK codes: ${Object.entries(codes).map(([c, n]) => `${c === '-1' ? 'no CONNACK' : c}: ${n}`).join(', ')}; all 0: ${allZero ? 'yes' : 'NO'}`);
  await sleep(holdS * 1000);
  const after = await hub.ask('stats', (o) => 'rss' in o);
  const held = after.clients as number;
  const perConn = (k: string): number => ((after[k] as number) - (before[k] as number)) / Math.max(1, held);
  const slope = (k: string): number => ((after[k] as number) - (mid[k] as number)) / Math.max(1, held - (mid.clients as number));
  console.log(`second half (${held - (mid.clients as number)} connections): RSS ${kib(slope('rss'))} KiB, V8 heap ${kib(slope('heapUsed'))} KiB per connection (marginal cost)`);
  console.log(`held ${held} connections for ${holdS} s; hub RSS ${mb(before.rss as number)} → ${mb(after.rss as number)}: ${kib(perConn('rss'))} KiB per connection; V8 heap ${mb(before.heapUsed as number)} → ${mb(after.heapUsed as number)}: ${kib(perConn('heapUsed'))} KiB per connection (committed ${mb(before.heapTotal as number)} → ${mb(after.heapTotal as number)}); external ${kib(perConn('external'))} KiB per connection`);
  if (a['heap-snapshot']) console.log(`heap snapshot: ${(await hub.ask(`heapsnapshot ${path.resolve(a['heap-snapshot'])}`, (o) => 'snapshot' in o, 300_000)).snapshot as string}`);
  console.log(`load average ${loadAvg.toFixed(1)} during the logins${loadAvg > 3 ? ' (figures are "loaded")' : ''}`);
  console.log(`BENCH connections-rss-per-conn ${kib(perConn('rss'))} KiB`);
  console.log(`BENCH connections ${held} connections`);
} finally {
  await Promise.all(procs.map((p) => p.stop()));
  await hub.stop(30_000);
  await rm(dir, { recursive: true, force: true });
}
