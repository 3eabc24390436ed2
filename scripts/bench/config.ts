/**
 * bench:config — remote configuration round trip on loopback: an operator's
 * push through the hub API → the gateway (its own process, `ioc-edge run`)
 * validates, applies, confirms with the hub → the hub stores the `applied`
 * report. Median of N pushes (BENCH_N, default 20); each push changes the
 * traffic controller's poll interval, so its driver restarts every time,
 * while the flood sensor (unchanged, polled every 100 ms) must keep polling:
 * the longest gap between its readings (reading timestamps, as the hub
 * stored them) around each apply is reported too.
 *
 * Last line: `BENCH config-roundtrip <median ms> ms` (target ≤ 300 ms).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { ConfigReported } from '../../contract/index.js';
import { startHub } from '../../hub/index.js';
import { silentLogger } from '../../lib/index.js';
import { FloodLevelSensor, TrafficSignalController, type SimDevice } from '../sim/field-devices.js';
import { ModbusTcpSimulator } from '../sim/modbus-tcp-sim.js';
import { stopChild } from './spawn.js';

const N = Number(process.env.BENCH_N ?? 20);
const POLL_MS = 100;
const GW = 'gw-bench-config';

const dir = await mkdtemp(path.join(tmpdir(), 'ioc-bench-config-'));
const sim = new ModbusTcpSimulator(new Map<number, SimDevice>([[1, new FloodLevelSensor()], [2, new TrafficSignalController()]]), { tickMs: 50 });
await sim.start();
const hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });

const floodTs: number[] = [];
hub.events.on('batch', ({ gateway, readings }) => {
  if (gateway !== GW) return;
  for (const r of readings) if (r.device === 'flood-1' && floodTs[floodTs.length - 1] !== r.ts) floodTs.push(r.ts);
});
const reports: Array<{ at: number; report: ConfigReported }> = [];
const onReport = ({ gateway, report }: { gateway: string; report: ConfigReported }): void => {
  if (gateway === GW) reports.push({ at: performance.now(), report });
};
hub.config.on('reported', onReport);

const config = (tscPollMs: number) => ({
  gatewayId: GW,
  hub: { url: `mqtt://127.0.0.1:${hub.mqttPort}`, reconnectMinMs: 100, reconnectMaxMs: 1000 },
  buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim.port, timeoutMs: 300 }],
  devices: [
    { id: 'flood-1', bus: 'lan', unitId: 1, profile: 'flood-level-sensor', pollIntervalMs: POLL_MS },
    { id: 'tsc-1', bus: 'lan', unitId: 2, profile: 'traffic-signal-controller', pollIntervalMs: tscPollMs },
  ],
  outbox: { flushIntervalMs: 20 },
  uplink: { statusIntervalS: 5 },
});
const file = path.join(dir, 'gateway.json');
await writeFile(file, JSON.stringify({ ...config(POLL_MS), dataDir: path.join(dir, 'gw') }));
const cli = fileURLToPath(new URL('../../bin/ioc-edge.js', import.meta.url));
const child = spawn(process.execPath, [cli, 'run', '--config', file, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
child.once('exit', (code) => {
  if (code !== null && code !== 0) console.error(`gateway exited with ${code}`);
});

async function until<T>(fn: () => T | undefined | null | false, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

try {
  await until(() => reports.length > 0 && floodTs.length > 10, 'the gateway to report and send readings');
  // Baseline: the same measure over quiet stretches of the same length, without any apply.
  const quietFrom = Date.now();
  await sleep(3000);
  const quiet = floodTs.filter((x) => x >= quietFrom && x <= quietFrom + 3000);
  let baseline = 0;
  for (let k = 1; k < quiet.length; k++) baseline = Math.max(baseline, quiet[k]! - quiet[k - 1]!);
  const rtts: number[] = [];
  const gaps: number[] = [];
  for (let i = 1; i <= N; i++) {
    const wall0 = Date.now();
    const t0 = performance.now();
    const res = await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/gateways/${GW}/config`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ config: config(i % 2 === 1 ? 2 * POLL_MS : POLL_MS), note: `bench ${i}` }),
    });
    const body = (await res.json()) as { version: number; error?: { message: string } };
    if (res.status !== 201) throw new Error(`push refused: ${body.error?.message}`);
    const done = await until(() => reports.find((r) => r.report.version === body.version && (r.report.status === 'applied' || r.report.status === 'rolled-back' || r.report.status === 'rejected')), `version ${body.version} applied`);
    if (done.report.status !== 'applied') throw new Error(`version ${body.version} ${done.report.status}: ${done.report.error?.message}`);
    rtts.push(done.at - t0);
    const wall1 = Date.now();
    // Readings of the unchanged device around the apply, once they reached the hub.
    await until(() => floodTs.some((x) => x > wall1 + 2 * POLL_MS), 'flood readings after the apply', 10_000);
    const inside = floodTs.filter((x) => x >= wall0 - POLL_MS && x <= wall1 + POLL_MS);
    let prev = wall0 - POLL_MS;
    let gap = 0;
    for (const x of inside) {
      gap = Math.max(gap, x - prev);
      prev = x;
    }
    gaps.push(Math.max(gap, wall1 + POLL_MS - prev));
  }
  const sorted = [...rtts].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const p90 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))]!;
  console.log(`${N} pushes: push → applied → reported round trip median ${median.toFixed(1)} ms, p90 ${p90.toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms`);
  console.log(`unchanged device (flood-1, polled every ${POLL_MS} ms): longest gap between readings during an apply ${Math.max(...gaps)} ms (median over applies ${[...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)]} ms; longest over 3 s without applies ${baseline} ms)`);
  if (process.env.BENCH_VERBOSE) console.log(`round trips ${rtts.map((x) => x.toFixed(0)).join(' ')}\ngaps ${gaps.join(' ')}`);
  console.log(`BENCH config-roundtrip ${median.toFixed(1)} ms`);
} finally {
  hub.config.off('reported', onReport);
  await stopChild(child);
  await hub.stop();
  await sim.stop();
  await rm(dir, { recursive: true, force: true });
}
