/**
 * bench:retention — what a retention pass costs the commits that run beside
 * it (issue 13 item 4). A hub store (SQLite, as the hub opens it) holds N
 * readings (default 1,000,000: 1,000 points × 1,000) older than raw
 * retention; a "live gateway" commits a 100-reading batch every 5 ms, first
 * alone (baseline), then while one retention pass rolls the old readings up
 * and deletes them in chunks. Prints commit latency p50/p99/max for both, and
 * the pass's readings/s. Figures from a shared, loaded machine are noisy.
 *
 *   npm run bench:retention -- [--readings N] [--chunk ROWS]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Reading } from '../../contract/index.js';
import { resolveDataLimits } from '../../hub/data-limits.js';
import { HubStore } from '../../hub/store/sqlite/hub-store.js';
import { silentLogger } from '../../lib/index.js';

const { values } = parseArgs({ options: { readings: { type: 'string', default: '1000000' }, chunk: { type: 'string', default: '1000' } } });
const N = Number(values.readings);
const DAY = 86_400_000;
const now = Date.now();
const dir = await mkdtemp(path.join(tmpdir(), 'ioc-bench-retention-'));
const store = new HubStore({
  file: path.join(dir, 'hub.sqlite'), logger: silentLogger(), retentionTimer: false,
  limits: resolveDataLimits({ retention: { rawMs: 30 * DAY, chunkRows: Number(values.chunk) } }),
});
await store.start();

const POINTS = 1000;
const per = Math.ceil(N / POINTS);
let seq = 1;
for (let p0 = 0; p0 < POINTS; p0 += 50) {
  const readings: Reading[] = [];
  for (let p = p0; p < Math.min(POINTS, p0 + 50); p++) for (let i = 0; i < per; i++) readings.push({ device: 'd', point: `p${p}`, ts: now - 40 * DAY + i * 60_000, value: (i % 100) / 3, quality: 'good' });
  for (let i = 0; i < readings.length; i += 10_000) await store.commitBatch({ gateway: 'old', epoch: 'e', seq: seq++, historical: true, readings: readings.slice(i, i + 10_000) });
}
console.log(`store holds ${POINTS * per} old readings`);

let liveSeq = 1;
async function live(until: () => boolean, max = Infinity): Promise<number[]> {
  const lat: number[] = [];
  while (!until() && lat.length < max) {
    const readings: Reading[] = Array.from({ length: 100 }, (_, i) => ({ device: 'live', point: `q${i}`, ts: Date.now(), value: i, quality: 'good' }));
    const t0 = performance.now();
    await store.commitBatch({ gateway: 'live', epoch: 'l', seq: liveSeq++, historical: false, readings });
    lat.push(performance.now() - t0);
    await sleep(5);
  }
  return lat;
}
const q = (a: number[], p: number): number => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))] ?? 0;
const fmt = (a: number[]): string => `p50 ${q(a, 0.5).toFixed(1)} ms, p99 ${q(a, 0.99).toFixed(1)} ms, max ${Math.max(...a).toFixed(1)} ms (${a.length} commits)`;

const baseline = await live(() => false, 400);
console.log(`commits alone:            ${fmt(baseline)}`);
let done = false;
const t0 = performance.now();
const pass = store.runRetention().then((r) => {
  done = true;
  return r;
});
const during = await live(() => done);
const r = await pass;
const secs = (performance.now() - t0) / 1000;
console.log(`commits during retention: ${fmt(during)}`);
console.log(`retention pass: ${r?.age} readings rolled up and deleted in ${secs.toFixed(1)} s (${Math.round((r?.age ?? 0) / secs)} readings/s), chunks of ${values.chunk}`);
await store.stop();
await rm(dir, { recursive: true, force: true });
console.log(`BENCH retention-commit-p99 ${q(during, 0.99).toFixed(1)} ms`);
