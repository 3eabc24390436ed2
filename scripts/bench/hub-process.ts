/**
 * Runs a hub in its own process for benchmarks and fault tests:
 *   node --import tsx scripts/bench/hub-process.ts DATA_DIR [MQTT_PORT]
 * Prints one JSON line {"ready": true, "mqttPort", "httpPort", "pid"} when it listens (logs go to stderr); stops
 * cleanly on SIGTERM/SIGINT. SIGKILL it to simulate a crash.
 */
import { startHub } from '../../hub/index.js';
import { createLogger } from '../../lib/index.js';
import { cpuProfileFromEnv } from './cpu-profile.js';

const [dataDir, port] = process.argv.slice(2);
if (!dataDir) {
  console.error('usage: hub-process.ts DATA_DIR [MQTT_PORT]');
  process.exit(2);
}
const hub = await startHub({ dataDir, logger: createLogger({ level: process.env.LOG_LEVEL ?? 'error', destination: process.stderr }), mqttPort: Number(port ?? 0), httpPort: 0 });
process.stdout.write(`${JSON.stringify({ ready: true, mqttPort: hub.mqttPort, httpPort: hub.httpPort, pid: process.pid })}\n`);
const writeProfile = await cpuProfileFromEnv();
const stop = (): void => void hub.stop().then(writeProfile).then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
