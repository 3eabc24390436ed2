/**
 * bench:connections — authenticated gateway connections held by one hub
 * process. The hub runs with authentication (scrypt-hashed credentials, the
 * production cost) in its own process; N gateways, each with its own
 * credential and client id, connect from WORKERS client processes (raw
 * sockets and a hand-made CONNECT, so the client side stays light) and stay
 * connected (PINGREQ). Reports connections/s (a fleet logging in after a hub
 * restart: every login is a fresh scrypt verification) and the hub's RSS per
 * held connection.
 *
 *   npm run bench:connections -- [--count 10000] [--workers 2] [--hold-s 5]
 *
 * Open files: each process tries to raise its limit (`ulimit -n 65536`, else
 * the hard limit); on a host whose hard limit is below count + 100, raise it
 * (e.g. `ulimit -Hn 65536` as root, or LimitNOFILE= in systemd).
 *
 * Last line: BENCH connections <held> connections.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { LineProc } from './line-proc.js';

const { values: a } = parseArgs({ options: { count: { type: 'string' }, workers: { type: 'string' }, 'hold-s': { type: 'string' } } });
const count = Number(a.count ?? 10_000);
const workers = Number(a.workers ?? 2);
const holdS = Number(a['hold-s'] ?? 5);
const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-conn-'));
const mb = (b: number): string => `${(b / 1048576).toFixed(0)} MB`;

const hub = LineProc.start('scripts/bench/secure-hub-process.ts', [path.join(dir, 'hub')], { nofile: 65536 });
const procs: LineProc[] = [];
try {
  const ready = await hub.next((o) => o.ready === true);
  const credFile = path.join(dir, 'creds.json');
  const issued = await hub.ask(`issue ${count} gw ${credFile}`, (o) => 'issued' in o);
  console.log(`issued ${count} gateway credentials in ${(issued.seconds as number).toFixed(1)} s (scrypt hash each)`);
  const before = await hub.ask('stats', (o) => 'rss' in o);
  const per = Math.ceil(count / workers);
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: workers }, async (_, w) => {
    const cfg = path.join(dir, `w${w}.json`);
    await writeFile(cfg, JSON.stringify({ port: ready.mqttPort, creds: credFile, from: w * per, to: Math.min(count, (w + 1) * per), concurrency: 128, keepaliveS: 120 }));
    const p = LineProc.start('scripts/bench/mqtt-load.ts', ['hold', cfg], { nofile: per + 1024 });
    procs.push(p);
    await p.next((o) => o.ready === true);
    return p.next((o) => o.done === true);
  }));
  const seconds = (performance.now() - t0) / 1000;
  const ok = results.reduce((n, r) => n + (r.ok as number), 0);
  const refused = results.reduce((n, r) => n + (r.refused as number) + (r.errors as number), 0);
  console.log(`connected ${ok} (refused/failed ${refused}) in ${seconds.toFixed(1)} s: ${(ok / seconds).toFixed(0)} connections/s`);
  await sleep(holdS * 1000);
  const after = await hub.ask('stats', (o) => 'rss' in o);
  const held = after.clients as number;
  console.log(`held ${held} connections for ${holdS} s; hub RSS ${mb(before.rss as number)} → ${mb(after.rss as number)}: ${(((after.rss as number) - (before.rss as number)) / Math.max(1, held) / 1024).toFixed(1)} KiB per connection (heap ${mb(after.heapUsed as number)})`);
  console.log(`BENCH connections ${held} connections`);
} finally {
  await Promise.all(procs.map((p) => p.stop()));
  await hub.stop(30_000);
  await rm(dir, { recursive: true, force: true });
}
