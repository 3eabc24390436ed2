/**
 * bench:api — the IOC data API under a realistic store.
 *
 * 1. Latest values: the store is filled with 1,000 gateways × 50 points
 *    (ROUNDS readings per point of history), then a hub with authentication
 *    runs in its own process and GET /api/v1/readings/latest?gateway=… for a
 *    random gateway is timed from this process (viewer token, keep-alive):
 *    sequential, then 16 at a time; the whole-fleet query (50,000 rows) too.
 * 2. Live stream: a Modbus TCP simulator here, a gateway in its own process
 *    (poll interval POLL_MS, outbox flush 20 ms), an SSE client here; the
 *    simulator's level register is changed and the time until the new value
 *    arrives at the SSE client is measured (it includes waiting for the next
 *    poll), as well as the pipeline part: reading sample time → SSE client.
 *
 * Last line: BENCH api-latest-p99 <ms> ms (target ≤ 50 ms).
 *   npm run bench:api [-- --gateways 1000 --points 50 --rounds 10 --requests 2000 --changes 40] [--store postgres]
 *
 * `--store postgres`: the hub's store is PostgreSQL (IOC_EDGE_TEST_PG, default
 * postgres://postgres@127.0.0.1:5432/postgres), in a scratch schema dropped after.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { HubStore } from '../../hub/store/sqlite/hub-store.js';
import type { TelemetryPort } from '../../hub/store/port.js';
import { PgTelemetryStore } from '../../hub/store/postgres/pg-telemetry-store.js';
import { silentLogger } from '../../lib/index.js';
import { openSse } from '../../test/support/sse.js';
import { FloodLevelSensor } from '../sim/field-devices.js';
import { ModbusTcpSimulator } from '../sim/modbus-tcp-sim.js';
import { spawnTs, stopChild } from './spawn.js';

const { values: opt } = parseArgs({
  options: {
    gateways: { type: 'string', default: '1000' }, points: { type: 'string', default: '50' }, rounds: { type: 'string', default: '10' },
    requests: { type: 'string', default: '2000' }, changes: { type: 'string', default: '40' }, 'poll-ms': { type: 'string', default: '100' },
    store: { type: 'string', default: 'sqlite' },
  },
});
if (opt.store !== 'sqlite' && opt.store !== 'postgres') throw new Error(`--store sqlite|postgres, not '${opt.store}'`);
const PG_URL = process.env.IOC_EDGE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PG_SCHEMA = opt.store === 'postgres' ? `bench_api_${process.pid}` : null;
const STORE_URL = PG_SCHEMA ? `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${PG_SCHEMA}` : null;
const GATEWAYS = Number(opt.gateways);
const POINTS = Number(opt.points);
const ROUNDS = Number(opt.rounds);
const REQUESTS = Number(opt.requests);
const CHANGES = Number(opt.changes);
const POLL_MS = Number(opt['poll-ms']);

const gwId = (i: number): string => `gw-${String(i).padStart(4, '0')}`;
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const fmt = (ms: number): string => ms.toFixed(2);

async function fill(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const store: TelemetryPort = STORE_URL
    ? new PgTelemetryStore({ connect: { url: STORE_URL }, logger: silentLogger(), retentionTimer: false })
    : new HubStore({ file: path.join(dir, 'hub.sqlite'), logger: silentLogger() });
  await store.start();
  const t0 = performance.now();
  const now = Date.now() - ROUNDS * 1000;
  const pending: Array<Promise<unknown>> = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (let g = 0; g < GATEWAYS; g++) {
      const readings = Array.from({ length: POINTS }, (_, p) => ({ device: `dev-${Math.floor(p / 10)}`, point: `p${p % 10}`, ts: now + r * 1000, value: Math.round(Math.random() * 10_000) / 100, quality: 'good' as const }));
      pending.push(store.commitBatch({ gateway: gwId(g), epoch: 'bench', seq: r + 1, historical: false, readings }));
      if (pending.length >= 512) await Promise.all(pending.splice(0));
    }
  }
  await Promise.all(pending);
  for (let g = 0; g < GATEWAYS; g++) await store.setGatewayState(gwId(g), { online: false });
  await store.stop();
  console.log(`filled ${GATEWAYS} gateways × ${POINTS} points × ${ROUNDS} rounds = ${GATEWAYS * POINTS * ROUNDS} readings in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

async function timeLatest(base: string, token: string): Promise<number> {
  const headers = { authorization: `Bearer ${token}` };
  const one = async (): Promise<number> => {
    const g = gwId(Math.floor(Math.random() * GATEWAYS));
    const t0 = performance.now();
    const res = await fetch(`${base}/api/v1/readings/latest?gateway=${g}`, { headers });
    const body = (await res.json()) as { items: unknown[] };
    const ms = performance.now() - t0;
    if (res.status !== 200 || body.items.length !== POINTS) throw new Error(`latest ${g}: HTTP ${res.status}, ${body.items?.length} items`);
    return ms;
  };
  for (let i = 0; i < 200; i++) await one(); // warm-up: connections, caches, JIT
  const seq: number[] = [];
  for (let i = 0; i < REQUESTS; i++) seq.push(await one());
  console.log(`latest values of one gateway (${POINTS} points), sequential: n=${REQUESTS} p50=${fmt(pct(seq, 50))} ms p99=${fmt(pct(seq, 99))} ms max=${fmt(Math.max(...seq))} ms`);
  const conc: number[] = [];
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i = 0; i < REQUESTS / 16; i++) conc.push(await one());
  }));
  console.log(`latest values of one gateway, 16 concurrent clients: n=${conc.length} p50=${fmt(pct(conc, 50))} ms p99=${fmt(pct(conc, 99))} ms`);
  const fleet: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    const res = await fetch(`${base}/api/v1/readings/latest?limit=100000`, { headers });
    const body = (await res.json()) as { items: unknown[] };
    fleet.push(performance.now() - t0);
    if (body.items.length !== GATEWAYS * POINTS) throw new Error(`fleet latest: ${body.items.length} items`);
  }
  console.log(`latest values of the whole fleet (${GATEWAYS * POINTS} points): n=30 p50=${fmt(pct(fleet, 50))} ms p99=${fmt(pct(fleet, 99))} ms`);
  return pct(seq, 99);
}

async function timeLive(dir: string, base: string, info: { mqttPort: number; viewerToken: string; claim: string }): Promise<void> {
  const sim = new ModbusTcpSimulator(new Map([[1, new FloodLevelSensor()]]), { tickMs: 60_000 });
  await sim.start();
  sim.freeze();
  const cfgFile = path.join(dir, 'gateway.json');
  writeFileSync(cfgFile, JSON.stringify({
    gatewayId: 'gw-live', dataDir: path.join(dir, 'gw'),
    hub: { url: `mqtt://127.0.0.1:${info.mqttPort}`, claim: info.claim, reconnectMinMs: 100 },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }],
    devices: [{ id: 'flood-1', bus: 'lan', unitId: 1, profile: 'flood-level-sensor', pollIntervalMs: POLL_MS }],
    outbox: { flushIntervalMs: 20 },
  }));
  const gw = await spawnTs<{ ready: true }>('scripts/bench/api-procs.ts', ['gateway', cfgFile]);
  const sse = await openSse(`${base}/api/v1/stream?gateway=gw-live&device=flood-1&point=level&types=readings`, { token: info.viewerToken });
  try {
    const change: number[] = [];
    const pipeline: number[] = [];
    const bank = sim.devices.get(1)!.bank;
    await sse.next((m) => m.event === 'readings', 30_000); // the gateway provisioned and its first poll arrived
    for (let i = 0; i < CHANGES; i++) {
      const raw = 1000 + (i % 2) * 500 + i; // alternate 1.0xx / 1.5xx m: far beyond the 2 mm deadband, below the alarm
      const wallT0 = Date.now();
      const t0 = performance.now();
      bank.setU16('input', 0, raw);
      const m = await sse.next((x) => x.event === 'readings' && x.data.readings.some((r: { value: number }) => Math.abs(r.value - raw / 1000) < 1e-9) && x.at >= t0, 10_000);
      change.push(m.at - t0);
      const r = m.data.readings.find((x: { value: number }) => Math.abs(x.value - raw / 1000) < 1e-9);
      pipeline.push(wallT0 + (m.at - t0) - r.ts); // same machine, same clock
      await sleep(50 + Math.random() * POLL_MS);
    }
    console.log(`live stream, device change → SSE client (poll ${POLL_MS} ms, outbox flush 20 ms): n=${CHANGES} p50=${fmt(pct(change, 50))} ms p99=${fmt(pct(change, 99))} ms`);
    console.log(`live stream, reading sampled at the gateway → SSE client (pipeline: outbox, MQTT, commit, stream): p50=${fmt(pct(pipeline, 50))} ms p99=${fmt(pct(pipeline, 99))} ms`);
    console.log(`BENCH live-stream-p50 ${fmt(pct(change, 50))} ms`);
  } finally {
    sse.close();
    await stopChild(gw.child);
    await sim.stop();
  }
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'ioc-edge-bench-api-'));
try {
  await fill(path.join(dir, 'hub'));
  const hub = await spawnTs<{ httpPort: number; mqttPort: number; viewerToken: string; claim: string }>('scripts/bench/api-procs.ts', ['hub', path.join(dir, 'hub')], STORE_URL ? { IOC_EDGE_HUB_STORE: STORE_URL } : {});
  console.log(`store: ${opt.store}`);
  try {
    const base = `http://127.0.0.1:${hub.info.httpPort}`;
    const p99 = await timeLatest(base, hub.info.viewerToken);
    await timeLive(dir, base, hub.info);
    console.log(`BENCH api-latest-p99 ${fmt(p99)} ms`);
  } finally {
    await stopChild(hub.child);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  if (PG_SCHEMA) {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${PG_SCHEMA} CASCADE`);
    await c.end();
  }
}
