/**
 * Child process of bench:sparkplug: one gateway from a configuration file
 * (northbound ioc/v1 or sparkplug), reporting every second its CPU time
 * (process.cpuUsage, µs), RSS, peak RSS, readings its drivers produced and
 * readings acknowledged northbound (the uplink's PUBACKs for ioc/v1, the
 * Sparkplug fences for sparkplug). stdin close stops it.
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
  const acked = gw.sparkplug ? gw.sparkplug.stats().readingsAcked : gw.uplink.stats().readingsAcked;
  console.log(JSON.stringify({ stats: true, t: Date.now(), cpuUs: cpu.user + cpu.system, rss: process.memoryUsage().rss, maxRssKb: process.resourceUsage().maxRSS, produced, acked, backlog: gw.outbox.stats().rows }));
}, 1000);
createInterface({ input: process.stdin }).on('close', () => {
  clearInterval(report);
  void gw.stop().then(() => process.exit(0));
});
