/**
 * A hub with authentication in its own process, for benchmarks:
 *   node --import tsx scripts/bench/secure-hub-process.ts DATA_DIR
 * Prints {"ready": true, "mqttPort", "httpPort", "pid", "maxOpenFiles"} when it listens, then
 * answers one JSON line per command line on stdin:
 *   issue N PREFIX FILE  → gateway credentials PREFIX-0…N-1 written to FILE as JSON; {"issued": N, "seconds"}
 *   consumer NAME        → {"username", "password"} of a new read-only consumer account
 *   service NAME         → the same for a hub service account
 *   heapsnapshot FILE    → {"snapshot": FILE} (v8.writeHeapSnapshot, for bench:connections --heap-snapshot)
 *   stats                → {"rss", "heapUsed", "heapTotal", "external", "arrayBuffers", "clients", "loginsOk", "loginsFailed",
 *                           "scryptChecks", "slotWaitMs", "checkMs", "checks", "commits", "batches"} (after a full GC)
 * Stops cleanly on SIGTERM/SIGINT or when stdin closes. Env SCRYPT_N overrides the scrypt cost,
 * MQTT_PORT fixes the MQTT port (a restart on the same address: bench:reconnect-storm), BROKER_LIMITS
 * (JSON, e.g. {"maxConcurrentLogins": 4}) overrides broker limits. stats also carries the process's
 * CPU time so far (cpuMs, user + system) and the event loop's active and idle time so far (loopActiveMs,
 * loopIdleMs: their ratio over an interval says whether the main thread was the bottleneck).
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import v8 from 'node:v8';
import { startHub } from '../../hub/index.js';
import { createLogger } from '../../lib/index.js';
import { cpuProfileFromEnv } from './cpu-profile.js';

const [dataDir] = process.argv.slice(2);
if (!dataDir) {
  console.error('usage: secure-hub-process.ts DATA_DIR');
  process.exit(2);
}
const scryptN = process.env.SCRYPT_N ? Number(process.env.SCRYPT_N) : undefined;
const hub = await startHub({
  dataDir, logger: createLogger({ level: process.env.LOG_LEVEL ?? 'error', destination: process.stderr }), mqttPort: Number(process.env.MQTT_PORT ?? 0), httpPort: 0,
  auth: { mode: 'required', ...(scryptN ? { scrypt: { N: scryptN, r: 8, p: 1 } } : {}) },
  ...(process.env.BROKER_LIMITS ? { brokerLimits: JSON.parse(process.env.BROKER_LIMITS) as Record<string, number> } : {}),
  ...(process.env.IOC_EDGE_HUB_STORE ? { store: process.env.IOC_EDGE_HUB_STORE } : {}), // bench:hub's PostgreSQL run
});
const say = (o: unknown): boolean => process.stdout.write(`${JSON.stringify(o)}\n`);
const writeProfile = await cpuProfileFromEnv();
say({ ready: true, mqttPort: hub.mqttPort, httpPort: hub.httpPort, pid: process.pid, maxOpenFiles: maxOpenFiles() });

/** Event loop active/idle milliseconds since start (performance.eventLoopUtilization). */
function loopTimes(): { loopActiveMs: number; loopIdleMs: number } {
  const u = performance.eventLoopUtilization();
  return { loopActiveMs: u.active, loopIdleMs: u.idle };
}

/** This process's soft open-file limit (Linux /proc; null elsewhere): each held connection is one descriptor. */
function maxOpenFiles(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void hub.stop().then(writeProfile).then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

const rl = createInterface({ input: process.stdin });
rl.on('close', stop);
rl.on('line', (line) => {
  const [cmd, ...a] = line.trim().split(/\s+/);
  void (async () => {
    switch (cmd) {
      case 'issue': {
        const n = Number(a[0]);
        const t0 = performance.now();
        const creds: Array<{ clientId: string; username: string; password: string }> = [];
        // Issued concurrently in slices: scrypt runs on the libuv thread pool.
        for (let i = 0; i < n; i += 64) {
          const slice = Array.from({ length: Math.min(64, n - i) }, (_, k) => `${a[1]}-${i + k}`);
          const made = await Promise.all(slice.map((id) => hub.identity.issueGatewayCredential(id, { site: 'bench', actor: 'bench' })));
          made.forEach((c) => creds.push({ clientId: c.username, ...c }));
        }
        await writeFile(a[2]!, JSON.stringify(creds));
        say({ issued: n, seconds: (performance.now() - t0) / 1000 });
        break;
      }
      case 'consumer':
      case 'service':
        say(await hub.identity.createAccount({ username: a[0]!, kind: cmd }, { actor: 'bench' }));
        break;
      case 'heapsnapshot':
        say({ snapshot: v8.writeHeapSnapshot(a[0]) });
        break;
      case 'stats': {
        if (globalThis.gc) globalThis.gc();
        const m = process.memoryUsage();
        say({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, clients: hub.broker.instance.connectedClients, ...hub.mqttAuth.counters, scryptChecks: hub.identity.counters.scryptChecks, ...hub.mqttAuth.timing, cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000, ...loopTimes(), commits: hub.store.counters.commits, batches: hub.store.counters.batches });
        break;
      }
      default:
        say({ error: `unknown command '${cmd}'` });
    }
  })().catch((err: unknown) => say({ error: (err as Error).message }));
});
