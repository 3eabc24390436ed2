/**
 * Runs a hub in its own process for benchmarks and fault tests:
 *   node --import tsx scripts/bench/hub-process.ts DATA_DIR [MQTT_PORT]
 * Prints one JSON line {"ready": true, "mqttPort", "httpPort", "pid"} when it listens (logs go to stderr); stops
 * cleanly on SIGTERM/SIGINT. SIGKILL it to simulate a crash. IOC_EDGE_HUB_STORE chooses the store (default SQLite in DATA_DIR);
 * IOC_EDGE_REDIS (with IOC_EDGE_NODE_ID, IOC_EDGE_CLUSTER_PREFIX) makes it a cluster node.
 * With HISTORICAL_TARGET=N it also prints {"historical": N, "at": ms} once
 * the N-th historical (backlog) reading has been committed (bench:drain).
 */
import { startHub } from '../../hub/index.js';
import { createLogger } from '../../lib/index.js';
import { cpuProfileFromEnv } from './cpu-profile.js';

const [dataDir, port] = process.argv.slice(2);
if (!dataDir) {
  console.error('usage: hub-process.ts DATA_DIR [MQTT_PORT]');
  process.exit(2);
}
// IOC_EDGE_HUB_STORE=postgres://…?schema=… runs it on PostgreSQL (bench:drain --store postgres, bench:hub).
const store = process.env.IOC_EDGE_HUB_STORE || undefined;
// IOC_EDGE_REDIS=redis://… runs it as a cluster node (bench:cluster), IOC_EDGE_NODE_ID / IOC_EDGE_CLUSTER_PREFIX name it and its cluster.
const redis = process.env.IOC_EDGE_REDIS || undefined;
const cluster = redis ? { redis, ...(process.env.IOC_EDGE_NODE_ID ? { nodeId: process.env.IOC_EDGE_NODE_ID } : {}), ...(process.env.IOC_EDGE_CLUSTER_PREFIX ? { keyPrefix: process.env.IOC_EDGE_CLUSTER_PREFIX } : {}) } : undefined;
const hub = await startHub({ dataDir, logger: createLogger({ level: process.env.LOG_LEVEL ?? 'error', destination: process.stderr }), mqttPort: Number(port ?? 0), httpPort: 0, ...(store ? { store } : {}), ...(cluster ? { cluster } : {}) });
process.stdout.write(`${JSON.stringify({ ready: true, mqttPort: hub.mqttPort, httpPort: hub.httpPort, pid: process.pid })}\n`);
const writeProfile = await cpuProfileFromEnv();
const target = Number(process.env.HISTORICAL_TARGET ?? 0);
if (target > 0) {
  let historical = 0;
  const onBatch = (b: { historical: boolean; duplicate: boolean; readings: unknown[] }): void => {
    if (!b.historical || b.duplicate) return;
    historical += b.readings.length;
    if (historical >= target) {
      hub.events.off('batch', onBatch);
      process.stdout.write(`${JSON.stringify({ historical, at: Date.now() })}\n`);
    }
  };
  hub.events.on('batch', onBatch);
}
const stop = (): void => void hub.stop().then(writeProfile).then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
