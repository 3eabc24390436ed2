/**
 * bench:failover — gateways fail over when a hub node dies (issue 16.4).
 * Two hub nodes as child processes (hub-process.ts) on one PostgreSQL schema
 * (until the Redis cluster of issue 16.1 is used: --redis passes
 * IOC_EDGE_REDIS to both nodes); N gateways (real uplinks with hub.url =
 * both nodes, in-memory outboxes: failover-gateways-proc.ts) spread over
 * both, under load. One node is killed with SIGKILL. Measured: seconds from
 * the kill until every gateway that was on the killed node has a batch
 * acknowledged by the other (all, and the median); then the load stops, every
 * outbox drains, and PostgreSQL is counted: lost = produced − distinct
 * readings stored, duplicated = stored − distinct.
 *
 *   npm run bench:failover -- [--gateways 200] [--rate 20] [--warmup-s 5] [--after-s 3]
 *        [--min-ms 500] [--max-ms 10000] [--redis redis://127.0.0.1:6379]
 *
 * PostgreSQL from IOC_EDGE_TEST_PG (default postgres://postgres@127.0.0.1:5432/postgres),
 * a scratch schema dropped after. Last line: BENCH failover <seconds> s.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { LineProc } from './line-proc.js';

const { values: a } = parseArgs({ options: {
  gateways: { type: 'string' }, rate: { type: 'string' }, 'warmup-s': { type: 'string' }, 'after-s': { type: 'string' },
  'min-ms': { type: 'string' }, 'max-ms': { type: 'string' }, redis: { type: 'string' },
} });
const count = Number(a.gateways ?? 200);
const rate = Number(a.rate ?? 20);
const warmupS = Number(a['warmup-s'] ?? 5);
const afterS = Number(a['after-s'] ?? 3);
const minMs = Number(a['min-ms'] ?? 500);
const maxMs = Number(a['max-ms'] ?? 10_000);
const pgUrl = process.env.IOC_EDGE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const schema = `bench_failover_${process.pid}`;

const admin = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 3000 });
try {
  await admin.connect();
} catch (err) {
  console.log(`bench:failover needs PostgreSQL (the two nodes share its store): it does not answer at ${pgUrl} (${(err as Error).message}); start it or set IOC_EDGE_TEST_PG`);
  process.exit(1);
}
const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-failover-'));
const store = `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}schema=${schema}`;
const nodeEnv = (name: string): NodeJS.ProcessEnv => ({
  IOC_EDGE_HUB_STORE: store,
  ...(a.redis ? { IOC_EDGE_REDIS: a.redis, IOC_EDGE_NODE_ID: name, IOC_EDGE_CLUSTER_PREFIX: `bench-failover-${process.pid}` } : {}),
});
const procs: LineProc[] = [];
try {
  // One node after the other: the first migrates the schema.
  const nodeA = LineProc.start('scripts/bench/hub-process.ts', [path.join(dir, 'a')], { nofile: 65536, env: nodeEnv('a') });
  procs.push(nodeA);
  const ra = await nodeA.next((o) => o.ready === true, 120_000);
  const nodeB = LineProc.start('scripts/bench/hub-process.ts', [path.join(dir, 'b')], { nofile: 65536, env: nodeEnv('b') });
  procs.push(nodeB);
  const rb = await nodeB.next((o) => o.ready === true, 120_000);
  const urlA = `mqtt://127.0.0.1:${ra.mqttPort as number}`;
  const urlB = `mqtt://127.0.0.1:${rb.mqttPort as number}`;
  console.log(`nodes: A ${urlA} (pid ${ra.pid as number}), B ${urlB} (pid ${rb.pid as number}), store PostgreSQL schema ${schema}${a.redis ? `, Redis ${a.redis}` : ''}`);

  const cfgFile = path.join(dir, 'gateways.json');
  await writeFile(cfgFile, JSON.stringify({ urls: [urlA, urlB], count, readingsPerS: rate, tickMs: 250, minMs, maxMs }));
  const gws = LineProc.start('scripts/bench/failover-gateways-proc.ts', [cfgFile], { nofile: 65536 });
  procs.push(gws);
  await gws.next((o) => o.ready === true, 120_000);
  const t0 = Date.now();
  let st: Record<string, unknown>;
  for (;;) {
    st = await gws.ask('status', (o) => 'connected' in o);
    if ((st.connected as number) === count) break;
    if (Date.now() - t0 > 120_000) throw new Error(`only ${st.connected as number} of ${count} gateways connected after 120 s`);
    await sleep(500);
  }
  console.log(`${count} gateways connected in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(st.byHub)}; load ${rate} readings/s each (${count * rate} readings/s)`);
  await sleep(warmupS * 1000);
  st = await gws.ask('status', (o) => 'connected' in o);
  console.log(`before the kill: ${st.acked as number} of ${st.produced as number} readings acknowledged`);

  const snap = await gws.ask(`snapshot ${urlA}`, (o) => 'snapshot' in o);
  const killedAt = Date.now();
  nodeA.child.kill('SIGKILL');
  const rec = await gws.ask(`killed ${killedAt}`, (o) => 'recovered' in o, 300_000);
  console.log(`node A killed (SIGKILL): all ${rec.recovered as number} of its gateways (snapshot ${snap.snapshot as number}) committing on B after ${(rec.seconds as number).toFixed(2)} s (median ${(rec.p50 as number).toFixed(2)} s); connected to B after ${(rec.connectedMax as number).toFixed(2)} s (median ${(rec.connectedP50 as number).toFixed(2)} s)`);
  await sleep(afterS * 1000);
  const dr = await gws.ask('drain', (o) => o.drained === true, 300_000);
  const produced = dr.produced as number;
  const row = (await admin.query(`SELECT count(*)::bigint AS n, count(DISTINCT (series, ts))::bigint AS d FROM ${schema}.readings`)).rows[0] as { n: string; d: string };
  const stored = Number(row.n);
  const distinct = Number(row.d);
  console.log(`readings produced ${produced}, acknowledged ${dr.acked as number}, stored ${stored}, distinct ${distinct}: lost ${produced - distinct}, duplicated ${stored - distinct}`);
  console.log('figures from a loaded, shared 2-core machine (hubs, PostgreSQL and gateways on it together)');
  console.log(`BENCH failover ${(rec.seconds as number).toFixed(2)} s`);
} finally {
  for (const p of procs.reverse()) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await p.stop(10_000).catch(() => undefined);
  }
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  await admin.end();
  await rm(dir, { recursive: true, force: true });
}
