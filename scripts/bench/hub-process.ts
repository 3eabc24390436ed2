/**
 * Runs a hub in its own process for benchmarks and fault tests:
 *   node --import tsx scripts/bench/hub-process.ts DATA_DIR [MQTT_PORT]
 * Prints one JSON line {"ready": true, "mqttPort", "httpPort", "pid"} when it listens (logs go to stderr); stops
 * cleanly on SIGTERM/SIGINT. SIGKILL it to simulate a crash.
 */
import { startHub } from '../../hub/index.js';
import { createLogger } from '../../lib/index.js';

const [dataDir, port] = process.argv.slice(2);
if (!dataDir) {
  console.error('usage: hub-process.ts DATA_DIR [MQTT_PORT]');
  process.exit(2);
}
const hub = await startHub({ dataDir, logger: createLogger({ level: process.env.LOG_LEVEL ?? 'error', destination: process.stderr }), mqttPort: Number(port ?? 0), httpPort: 0 });
process.stdout.write(`${JSON.stringify({ ready: true, mqttPort: hub.mqttPort, httpPort: hub.httpPort, pid: process.pid })}\n`);
// HUB_CPU_PROFILE=FILE writes a V8 CPU profile of the hub's life to FILE (for benchmark analysis).
let writeProfile = async (): Promise<void> => undefined;
if (process.env.HUB_CPU_PROFILE) {
  const { Session } = await import('node:inspector/promises');
  const { writeFile } = await import('node:fs/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  writeProfile = async () => {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(process.env.HUB_CPU_PROFILE!, JSON.stringify(profile));
  };
}
const stop = (): void => void hub.stop().then(writeProfile).then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
