/**
 * bench:commit-lag — the gateway's crash window (docs/durability.md): how
 * long a reading waits between its append and its commit in the SQLite
 * outbox, with `synchronous=FULL` and `NORMAL`, while readings are appended
 * at RATE/s and a drain loop reserves and acknowledges batches (the uplink's
 * load on the same file). Reports p50/p99/max of the per-flush lag.
 *
 *   npm run bench:commit-lag -- [--rate 10000] [--seconds 15] [--flush-ms 100]
 *
 * Last lines: BENCH commit-lag-full-p99 <ms> ms, BENCH commit-lag-normal-p99 <ms> ms.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../lib/index.js';
import { SqliteOutbox } from '../../gateway/outbox/sqlite-outbox.js';

const { values: a } = parseArgs({ options: { rate: { type: 'string' }, seconds: { type: 'string' }, 'flush-ms': { type: 'string' } } });
const rate = Number(a.rate ?? 10_000);
const seconds = Number(a.seconds ?? 15);
const flushMs = Number(a['flush-ms'] ?? 100);
const q = (xs: number[], p: number): number => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;

async function run(mode: 'FULL' | 'NORMAL'): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-lag-'));
  const outbox = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits: { maxRows: 10_000_000, maxBytes: 1 << 30, maxAgeMs: 86_400_000 }, flushIntervalMs: flushMs, synchronous: mode });
  await outbox.start();
  const lags: number[] = [];
  outbox.on('committed', ({ lagMs }: { lagMs: number }) => lags.push(lagMs));
  let stop = false;
  const drain = (async () => {
    while (!stop) {
      const b = await outbox.nextBatch(1000);
      if (b) await outbox.ack(b.seq);
      else await sleep(5);
    }
  })();
  const perTick = Math.max(1, Math.round(rate / 100));
  const t0 = Date.now();
  let n = 0;
  while (Date.now() - t0 < seconds * 1000) {
    const ts = Date.now();
    outbox.append(Array.from({ length: perTick }, (_, i) => ({ device: `d${i % 50}`, point: `p${i}`, ts, value: n++, quality: 'good' as const })));
    await sleep(10);
  }
  stop = true;
  await drain;
  await outbox.stop();
  await rm(dir, { recursive: true, force: true });
  lags.sort((x, y) => x - y);
  console.log(`synchronous=${mode}: ${lags.length} flushes of ~${Math.round(n / Math.max(1, lags.length))} readings; append→commit p50 ${q(lags, 0.5)} ms, p99 ${q(lags, 0.99)} ms, max ${lags[lags.length - 1]} ms (flushIntervalMs ${flushMs})`);
  return q(lags, 0.99);
}

const full = await run('FULL');
const normal = await run('NORMAL');
console.log(`BENCH commit-lag-full-p99 ${full} ms`);
console.log(`BENCH commit-lag-normal-p99 ${normal} ms`);
