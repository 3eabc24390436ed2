/**
 * bench:e2e — 100,000 readings pre-loaded in a gateway outbox, drained
 * through the real uplink (MQTT QoS 1, windowed) into a hub running in its own
 * process (Aedes, ingest, SQLite commit before PUBACK). Prints readings/s.
 *
 *   npm run bench:e2e -- [--readings N] [--batch N] [--window N]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { once } from 'node:events';
import { SqliteOutbox } from '../../gateway/outbox/sqlite-outbox.js';
import { Uplink } from '../../gateway/uplink/uplink.js';
import { silentLogger } from '../../lib/index.js';
import { spawnTs, stopChild } from './spawn.js';

const { values } = parseArgs({ options: { readings: { type: 'string', default: '100000' }, batch: { type: 'string', default: '1000' }, window: { type: 'string', default: '8' } } });
const N = Number(values.readings);
const dir = await mkdtemp(path.join(tmpdir(), 'ioc-bench-e2e-'));
const logger = silentLogger();
const { child, info } = await spawnTs<{ mqttPort: number }>('scripts/bench/hub-process.ts', [path.join(dir, 'hub')]);

const outbox = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger, limits: { maxRows: 10_000_000, maxBytes: 1 << 30, maxAgeMs: 86_400_000 }, flushRows: 5000 });
await outbox.start();
const t0 = Date.now();
const devices = 50;
for (let i = 0; i < N; i += 5000) {
  const chunk = [];
  for (let j = i; j < Math.min(N, i + 5000); j++) chunk.push({ device: `dev-${j % devices}`, point: `p${Math.floor(j / devices) % 30}`, ts: t0 - N + j, value: Math.round(Math.sin(j) * 1e6) / 1e3, quality: 'good' as const });
  outbox.append(chunk);
  await outbox.flush();
}
console.log(`preloaded ${outbox.stats().rows} readings in ${Date.now() - t0} ms`);

const uplink = new Uplink({
  gatewayId: 'gw-bench', url: `mqtt://127.0.0.1:${info.mqttPort}`, logger, outbox, version: 'bench',
  batchSize: Number(values.batch), window: Number(values.window), statusIntervalMs: 60_000, keepaliveS: 30, reconnect: { minMs: 100, maxMs: 1000 },
});
const start = process.hrtime.bigint();
await uplink.start();
while (outbox.stats().rows > 0) await once(uplink, 'batch-acked');
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const rate = Math.round(N / seconds);
console.log(`drained ${N} readings in ${seconds.toFixed(2)} s (batch ${values.batch}, window ${values.window}); uplink ${JSON.stringify(uplink.stats())}`);
await uplink.stop();
await outbox.stop();
await stopChild(child);
await rm(dir, { recursive: true, force: true });
console.log(`BENCH e2e-drain ${rate} readings/s`);
