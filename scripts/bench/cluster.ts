/**
 * bench:cluster — the cost of clustering (issue 16): the same gateway load
 * against one hub node, then against two nodes (PostgreSQL + Redis, each
 * hub a child process, hub-process.ts with IOC_EDGE_REDIS), readings/s
 * committed (PUBACKs are sent only after the commit) and CPU per node.
 *
 *   LOADERS load processes (mqtt-load.ts publish), each with PUBLISHERS/LOADERS
 *   gateways publishing MESSAGES QoS 1 batches of READINGS readings, WINDOW in
 *   flight each. One node: every loader on node 1. Two nodes: loaders split
 *   between the nodes. Same load processes, same schema layout (a fresh
 *   PostgreSQL schema and Redis key prefix per phase, dropped after).
 *
 * On a 2-core machine shared with other work, two nodes cannot be faster:
 * the figure is the cost (cross-node bus through Redis, shared persistence,
 * a second process), efficiency = 2-node rate / 1-node rate (target ≥ 0.8).
 * CPU per node is user + system seconds of the hub process over the load
 * run (from /proc), divided by its wall time: 1.0 = one core busy.
 *
 *   npm run bench:cluster -- [--publishers 32] [--messages 3000] [--window 16] [--readings 10] [--loaders 2]
 *
 * IOC_EDGE_TEST_PG / IOC_EDGE_TEST_REDIS name the servers (defaults
 * 127.0.0.1:5432 and :6379); where either does not answer, the bench says
 * so and stops. Last line: BENCH cluster-efficiency <2-node/1-node> ratio.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { LineProc } from './line-proc.js';
import { spawnTs, stopChild } from './spawn.js';

const { values: a } = parseArgs({ options: { publishers: { type: 'string' }, messages: { type: 'string' }, window: { type: 'string' }, readings: { type: 'string' }, loaders: { type: 'string' } } });
const publishers = Number(a.publishers ?? 32);
const messages = Number(a.messages ?? 3000);
const window = Number(a.window ?? 16);
const readings = Number(a.readings ?? 10);
const loaders = Number(a.loaders ?? 2);
for (const [k, v] of Object.entries({ publishers, messages, window, readings, loaders })) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`--${k} ${String(v)}: give a whole number ≥ 1`);
    process.exit(2);
  }
}
if (publishers % loaders !== 0) {
  console.error(`--publishers ${publishers} must divide by --loaders ${loaders}`);
  process.exit(2);
}
const PG_URL = process.env.IOC_EDGE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.IOC_EDGE_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-cluster-'));
/** Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux). */
const TICK = 100;

/** User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

interface LoadResult {
  acked: number;
  seconds: number;
  rate: number;
}

/** Runs one load process against `port` with gateways `from..to-1`; resolves when it has its result. */
async function loader(port: number, from: number, to: number, tag: string): Promise<{ proc: LineProc; result: Promise<LoadResult> }> {
  const file = path.join(dir, `load-${tag}-${from}.json`);
  const pubs = Array.from({ length: to - from }, (_, i) => ({ clientId: `gw-${tag}-${from + i}` }));
  await writeFile(file, JSON.stringify({ url: `mqtt://127.0.0.1:${port}`, publishers: pubs, messages, window, readingsPerMessage: readings, topic: 'ioc/v1/gw/{id}/telemetry', warmup: 0.2 }));
  const proc = LineProc.start('scripts/bench/mqtt-load.ts', ['publish', file]);
  await proc.next((o) => o.ready === true);
  return { proc, result: proc.next((o) => o.done === true).then((o) => o as unknown as LoadResult) };
}

interface Phase {
  rate: number;
  cpu: Array<{ node: string; cpu: number }>;
  stored: number;
}

/** One phase: `nodes` hubs on a fresh schema and prefix, the loaders spread round-robin over them. */
async function phase(nodes: number): Promise<Phase> {
  const tag = `n${nodes}`;
  const schema = `bench_cluster_${process.pid}_${tag}`;
  const prefix = `bench-cluster-${process.pid}-${tag}:`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  const hubs: Array<{ child: ChildProcess; info: { mqttPort: number; pid: number }; node: string }> = [];
  try {
    for (let n = 0; n < nodes; n++) {
      const node = `bench-${tag}-${n + 1}`;
      // One at a time: the first migrates the schema.
      const h = await spawnTs<{ mqttPort: number; pid: number }>('scripts/bench/hub-process.ts', [path.join(dir, `${tag}-${n}`)], {
        IOC_EDGE_HUB_STORE: `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`, IOC_EDGE_REDIS: REDIS_URL, IOC_EDGE_NODE_ID: node, IOC_EDGE_CLUSTER_PREFIX: prefix,
      });
      hubs.push({ ...h, node });
    }
    const per = publishers / loaders;
    const runs = await Promise.all(Array.from({ length: loaders }, (_, i) => loader(hubs[i % nodes]!.info.mqttPort, i * per, (i + 1) * per, tag)));
    const cpu0 = hubs.map((h) => cpuSeconds(h.info.pid));
    const t0 = performance.now();
    const results = await Promise.all(runs.map((r) => r.result));
    const wall = (performance.now() - t0) / 1000;
    const cpu = hubs.map((h, i) => ({ node: h.node, cpu: (cpuSeconds(h.info.pid) - cpu0[i]!) / wall }));
    for (const r of runs) await r.proc.stop();
    const stored = Number((await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.readings`)).rows[0]!.n);
    // Batches per second after warm-up, summed over loaders; each batch carries `readings` readings.
    const rate = results.reduce((s, r) => s + r.rate, 0) * readings;
    return { rate, cpu, stored };
  } finally {
    for (const h of hubs.reverse()) await stopChild(h.child, 15_000);
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.end();
    const r = new Redis(REDIS_URL);
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length) await r.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    r.disconnect();
  }
}

/** null when the server answers, else why not. */
async function problem(check: () => Promise<void>): Promise<string | null> {
  try {
    await check();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

try {
  const pgDown = await problem(async () => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
    await c.connect();
    await c.end();
  });
  const redisDown = await problem(async () => {
    const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    await r.connect();
    await r.ping();
    r.disconnect();
  });
  if (pgDown || redisDown) {
    console.log(`bench:cluster needs PostgreSQL and Redis: ${pgDown ? `PostgreSQL at ${PG_URL}: ${pgDown}` : ''}${pgDown && redisDown ? '; ' : ''}${redisDown ? `Redis at ${REDIS_URL}: ${redisDown}` : ''} (start them or set IOC_EDGE_TEST_PG / IOC_EDGE_TEST_REDIS)`);
    process.exitCode = 1;
  } else {
    const expected = publishers * messages * readings;
    console.log(`load: ${publishers} gateways in ${loaders} load processes, ${messages} batches × ${readings} readings each, window ${window}, QoS 1 (a loaded shared machine gives noisy figures)`);
    const one = await phase(1);
    console.log(`1 node : ${Math.round(one.rate)} readings/s committed; CPU ${one.cpu.map((c) => `${c.node} ${c.cpu.toFixed(2)}`).join(', ')}; stored ${one.stored} of ${expected}`);
    const two = await phase(2);
    console.log(`2 nodes: ${Math.round(two.rate)} readings/s committed; CPU ${two.cpu.map((c) => `${c.node} ${c.cpu.toFixed(2)}`).join(', ')}; stored ${two.stored} of ${expected}`);
    if (one.stored !== expected || two.stored !== expected) console.log(`WARNING: stored readings differ from those sent (${one.stored}, ${two.stored} of ${expected})`);
    console.log(`BENCH cluster-efficiency ${(two.rate / one.rate).toFixed(3)} ratio`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
