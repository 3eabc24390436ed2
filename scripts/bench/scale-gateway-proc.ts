/**
 * Child process of bench:modbus-scale: one gateway (startGateway: pollers,
 * Modbus TCP transports, SQLite outbox, MQTT uplink) from a configuration
 * file, measuring itself: every second one line with its CPU time
 * (process.cpuUsage, µs), RSS and peak RSS, readings produced by its
 * drivers so far, outbox backlog, poll overruns of all devices so far and
 * the largest stretch of poll intervals seen (poll-pacer.ts). stdin close stops it. SCALE_TRACE=1 adds
 * a memory breakdown per second on stderr.
 * Args: CONFIG_FILE
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createInterface } from 'node:readline';
import { getHeapSpaceStatistics } from 'node:v8';
import { startGateway } from '../../gateway/index.js';
import { createLogger } from '../../lib/index.js';

const file = process.argv[2] as string;
/** SCALE_TRACE=1: a memory breakdown line per second on stderr (heap, external, array buffers). */
const trace = process.env.SCALE_TRACE === '1';
const loaded = process.memoryUsage();
if (trace) process.stderr.write(`after module load: rss ${(loaded.rss / 1048576).toFixed(1)} MB, heapUsed ${(loaded.heapUsed / 1048576).toFixed(1)} MB\n`);
const gw = await startGateway({ config: JSON.parse(readFileSync(file, 'utf8')), source: file, logger: createLogger({ level: 'warn', destination: process.stderr }) });
/**
 * SCALE_HEAP_PROFILE=FILE: sampling heap profile from 5 s after start to stop, written to FILE
 * (.heapprofile, Chrome DevTools). It keeps the samples a full GC collected: what was promoted
 * to the old generation and then died, the garbage that drives peak RSS.
 * SCALE_HEAP_PROFILE_ALL=1 keeps every sample: all allocations, short-lived ones included.
 */
const heapProfile = process.env.SCALE_HEAP_PROFILE;
const session = heapProfile ? new Session() : null;
if (session) {
  session.connect();
  setTimeout(() => void session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.SCALE_HEAP_PROFILE_ALL === '1' } as never), 5000);
}
/** SCALE_HEAP_SNAPSHOT=FILE: one heap snapshot (live objects) 10 s after start. */
const snapshotFile = process.env.SCALE_HEAP_SNAPSHOT;
if (snapshotFile) setTimeout(() => void import('node:v8').then((v8) => v8.writeHeapSnapshot(snapshotFile)), 10_000);
let produced = 0;
gw.bus.on('readings', (r: unknown[]) => (produced += r.length));
console.log(JSON.stringify({ ready: true }));
/** Modbus requests of all devices that got no reply within their timeout (a late reply is discarded, Modbus/TCP Implementation Guide §4.2.1.2). */
const timeouts = (): number => Object.values(gw.pollStats()).reduce((n, s) => n + (s.timeouts ?? 0), 0);
const report = setInterval(() => {
  const cpu = process.cpuUsage();
  const outbox = gw.outbox.stats();
  const mem = process.memoryUsage();
  let overruns = 0;
  for (const s of Object.values(gw.pollStats())) overruns += s.overruns;
  console.log(JSON.stringify({ stats: true, t: Date.now(), cpuUs: cpu.user + cpu.system, rss: mem.rss, heap: mem.heapUsed, maxRssKb: process.resourceUsage().maxRSS, backlog: outbox.rows, produced, overruns, stretch: gw.pacer.stats().maxStretch, stretchNow: gw.pacer.stats().stretch, connects: gw.uplink.stats().connects, timeouts: timeouts() }));
  if (trace) {
    const mb = (n: number): string => (n / 1048576).toFixed(1);
    const spaces = getHeapSpaceStatistics().map((s) => `${s.space_name.replace('_space', '')} ${mb(s.space_size)}/${mb(s.space_used_size)}`).join(' ');
    process.stderr.write(`mem rss ${mb(mem.rss)} heapTotal ${mb(mem.heapTotal)} heapUsed ${mb(mem.heapUsed)} external ${mb(mem.external)} arrayBuffers ${mb(mem.arrayBuffers)} maxRss ${(process.resourceUsage().maxRSS / 1024).toFixed(1)} backlog ${outbox.rows} buffered ${outbox.buffered} | ${spaces}\n`);
  }
}, 1000);
createInterface({ input: process.stdin }).on('close', () => {
  clearInterval(report);
  void (async () => {
    if (session) {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      writeFileSync(heapProfile!, JSON.stringify(profile));
    }
    await gw.stop();
    // The run's final counts, after the last polls finished (soak accounting), and the readings still held
    // in the outbox (on disk, unacknowledged: the next start sends them).
    console.log(JSON.stringify({ final: true, produced, timeouts: timeouts(), left: gw.outbox.stats().rows }));
    process.exit(0);
  })();
});
