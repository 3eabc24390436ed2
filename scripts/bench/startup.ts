/**
 * bench:startup — time from starting the demo (what `npm start` runs) to the
 * first telemetry batch committed at the hub, then a clean SIGINT shutdown.
 * Spawns node directly (npm itself adds ~0.3 s of its own start-up).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

const dir = await mkdtemp(path.join(tmpdir(), 'ioc-bench-startup-'));
const t0 = process.hrtime.bigint();
const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', '--data-dir', dir, '--mqtt-port', '0', '--http-port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
const rl = createInterface({ input: child.stdout });
let apiAt = 0;
const firstReading = await new Promise<number>((resolve, reject) => {
  rl.on('line', (line) => {
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (line.startsWith('hub api:')) apiAt = s;
    if (/ hub ← .*readings/.test(line)) resolve(s);
  });
  child.once('exit', (code) => reject(new Error(`demo exited with ${code}`)));
});
const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
child.kill('SIGINT');
const code = await exited;
await rm(dir, { recursive: true, force: true });
console.log(`api listening after ${apiAt.toFixed(2)} s; first reading at the hub after ${firstReading.toFixed(2)} s; SIGINT exit code ${code}`);
console.log(`BENCH startup-first-reading ${firstReading.toFixed(2)} s`);
