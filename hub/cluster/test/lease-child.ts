/**
 * Test helper: a second hub node in its own process for lease-takeover.test.ts.
 * Holds the singleton `waves` (ttl from argv) and drives the stand-in rollout
 * (lease-model.ts). Lines on stdout: `HOLD <epoch>` once it holds, `MID
 * <stage>` when it stops before advancing `stopAt` (mode `kill`: it waits
 * there to be SIGKILLed; mode `pause`: it waits for `go` on stdin, after
 * being SIGSTOPped and continued, then tries the advance anyway and prints
 * `FENCED <code>` or `WROTE`).
 */
import { createInterface } from 'node:readline';
import { silentLogger } from '../../../lib/index.js';
import { PgPool } from '../../store/postgres/pg-pool.js';
import { LeaseRunner, PgLeases } from '../lease.js';
import { waveWork } from './lease-model.js';

const [url, schema, holder, ttl, mode, stopAt] = process.argv.slice(2) as [string, string, string, string, 'kill' | 'pause', string];
const db = new PgPool({ url, schema, max: 3 }, silentLogger());
const runner = new LeaseRunner({ leases: new PgLeases(db), holder, logger: silentLogger(), ttlMs: Number(ttl) });
const lines = createInterface({ input: process.stdin });
const go = new Promise<void>((resolve) => lines.on('line', (l) => l.trim() === 'go' && resolve()));
let announced = false;
const work = waveWork(db, 'r1', {
  careless: mode === 'pause',
  afterOffer: async (stage) => {
    if (stage !== Number(stopAt)) return;
    process.stdout.write(`MID ${stage}\n`);
    if (mode === 'kill') await new Promise(() => undefined); // until SIGKILL
    await go;
    // Resumed: the runner says the lease is not held (its local deadline passed, or the renewal failed by now).
    process.stdout.write(`HELD ${runner.states()[0]!.held}\n`);
  },
});
runner.singleton('waves', async (ctx) => {
  if (!announced) process.stdout.write(`HOLD ${ctx.lease!.epoch}\n`);
  announced = true;
  try {
    await work(ctx);
  } catch (err) {
    process.stdout.write(`FENCED ${(err as { code?: string }).code ?? (err as Error).message}\n`);
    await new Promise(() => undefined);
  }
});
await runner.start();
setInterval(() => undefined, 60_000); // the runner's timers are unref'd: stay alive until killed
