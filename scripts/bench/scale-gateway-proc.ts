/**
 * Child process of bench:modbus-scale: one gateway (startGateway: pollers,
 * Modbus TCP transports, SQLite outbox, MQTT uplink) from a configuration
 * file, measuring itself: every second one line with its CPU time
 * (process.cpuUsage, µs), RSS and peak RSS, readings produced by its
 * drivers so far, outbox backlog. stdin close stops it.
 * Args: CONFIG_FILE
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { startGateway } from '../../gateway/index.js';
import { createLogger } from '../../lib/index.js';

const file = process.argv[2] as string;
const gw = await startGateway({ config: JSON.parse(readFileSync(file, 'utf8')), source: file, logger: createLogger({ level: 'warn', destination: process.stderr }) });
let produced = 0;
gw.bus.on('readings', (r: unknown[]) => (produced += r.length));
console.log(JSON.stringify({ ready: true }));
const report = setInterval(() => {
  const cpu = process.cpuUsage();
  const outbox = gw.outbox.stats();
  const mem = process.memoryUsage();
  console.log(JSON.stringify({ stats: true, t: Date.now(), cpuUs: cpu.user + cpu.system, rss: mem.rss, heap: mem.heapUsed, maxRssKb: process.resourceUsage().maxRSS, backlog: outbox.rows, produced }));
}, 1000);
createInterface({ input: process.stdin }).on('close', () => {
  clearInterval(report);
  void gw.stop().then(() => process.exit(0));
});
