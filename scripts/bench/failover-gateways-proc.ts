/**
 * The gateways of bench:failover (failover.ts), in their own process: N real
 * uplinks (gateway/uplink: the failover code under test, hub.url a list of
 * the hub nodes) over a light in-memory outbox each (no SQLite file per
 * gateway: what is measured is the move between hubs, not the disk).
 *
 *   failover-gateways-proc.ts CONFIG.json
 *     {urls: [nodeA, nodeB], count, readingsPerS, tickMs, minMs, maxMs}
 *
 * Gateway i lists the nodes starting at i % nodes, so the fleet is spread.
 * Each gateway appends readingsPerS readings a second (every tickMs), each
 * with its own ts, and counts them. Prints {"ready": true}; answers on stdin:
 *   status          → {"connected", "byHub": {url: n}, "produced", "acked"}
 *   snapshot URL    → remembers the gateways on URL now → {"snapshot": n}
 *   killed MS       → once every remembered gateway has a batch acknowledged
 *                     on another node after MS (epoch ms) → {"recovered": n, "seconds", "p50",
 *                     "connectedMax", "connectedP50" (seconds until connected to the other node)}
 *   drain           → stops the load, waits for every outbox to empty → {"drained": true, "produced", "acked"}
 * Stops when stdin closes.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GatewayEvent, Reading } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import type { Outbox, OutboxBatch, OutboxStats } from '../../gateway/outbox/outbox.js';
import { Uplink } from '../../gateway/uplink/uplink.js';

interface Config {
  urls: string[];
  count: number;
  readingsPerS: number;
  tickMs: number;
  minMs: number;
  maxMs: number;
}

const say = (o: unknown): boolean => process.stdout.write(`${JSON.stringify(o)}\n`);
const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Config;

/** An outbox in memory: readings wait in a list; a reserved batch keeps its seq until acknowledged. */
class MemOutbox extends EventEmitter implements Outbox {
  readonly epoch = `e${process.pid}`;
  private waiting: Reading[] = [];
  private readonly reserved = new Map<number, number>();
  private seq = 0;
  private appended = 0;
  private acked = 0;

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async flush(): Promise<void> {}
  async appendEvent(_e: GatewayEvent): Promise<void> {}
  async nextEvents(): Promise<GatewayEvent[]> {
    return [];
  }
  async ackEvent(): Promise<void> {}

  append(readings: readonly Reading[]): void {
    this.waiting.push(...readings);
    this.appended += readings.length;
    this.emit('readable');
  }

  async nextBatch(maxRows: number): Promise<OutboxBatch | null> {
    if (this.waiting.length === 0) return null;
    const readings = this.waiting.slice(0, maxRows);
    this.waiting = this.waiting.slice(readings.length);
    const seq = ++this.seq;
    this.reserved.set(seq, readings.length);
    return { epoch: this.epoch, seq, count: readings.length, historical: false, payload: JSON.stringify({ v: 1, epoch: this.epoch, seq, readings }) };
  }

  async ack(seq: number): Promise<void> {
    const n = this.reserved.get(seq);
    if (n === undefined) return;
    this.reserved.delete(seq);
    this.acked += n;
  }

  stats(): OutboxStats {
    let reserved = 0;
    for (const n of this.reserved.values()) reserved += n;
    const rows = this.waiting.length + reserved;
    return { rows, bytes: rows * 80, oldestTs: this.waiting[0]?.ts ?? null, appended: this.appended, dropped: 0, acked: this.acked, events: 0, historical: 0, buffered: 0 };
  }
}

interface Gw {
  id: string;
  uplink: Uplink;
  outbox: MemOutbox;
  produced: number;
  /** Epoch ms of the last acknowledgement and the hub it came through. */
  ackedAt: number;
  ackedVia: string | null;
  /** Epoch ms of the last connection and the hub it went to. */
  connectedAt: number;
  connectedTo: string | null;
}

const base = Date.now();
const gws: Gw[] = [];
for (let i = 0; i < config.count; i++) {
  const id = `gw-fo-${String(i).padStart(4, '0')}`;
  const outbox = new MemOutbox();
  const urls = config.urls.map((_, k) => config.urls[(i + k) % config.urls.length]!);
  const uplink = new Uplink({
    gatewayId: id, url: urls, logger: silentLogger(), outbox, version: 'bench', batchSize: 500, window: 4,
    statusIntervalMs: 60_000, keepaliveS: 30, reconnect: { minMs: config.minMs, maxMs: config.maxMs },
  });
  const gw: Gw = { id, uplink, outbox, produced: 0, ackedAt: 0, ackedVia: null, connectedAt: 0, connectedTo: null };
  uplink.on('batch-acked', () => {
    gw.ackedAt = Date.now();
    gw.ackedVia = uplink.stats().hub;
  });
  uplink.on('connect', () => {
    gw.connectedAt = Date.now();
    gw.connectedTo = uplink.stats().hub;
  });
  gws.push(gw);
}
for (const gw of gws) await gw.uplink.start();

const perTick = Math.max(1, Math.round((config.readingsPerS * config.tickMs) / 1000));
let loading = true;
const load = setInterval(() => {
  if (!loading) return;
  for (const gw of gws) {
    const readings: Reading[] = [];
    for (let k = 0; k < perTick; k++) readings.push({ device: 'dev-1', point: 'p', ts: base + gw.produced++, value: gw.produced, quality: 'good' });
    gw.outbox.append(readings);
  }
}, config.tickMs);

let snapshot: Gw[] = [];
let snapshotUrl = '';
const totals = (): { produced: number; acked: number } => ({
  produced: gws.reduce((n, g) => n + g.produced, 0),
  acked: gws.reduce((n, g) => n + g.outbox.stats().acked, 0),
});

say({ ready: true });
createInterface({ input: process.stdin })
  .on('line', (line) => {
    const [cmd, arg] = line.trim().split(/\s+/);
    void (async () => {
      if (cmd === 'status') {
        const byHub: Record<string, number> = {};
        for (const g of gws) {
          const h = g.uplink.stats().hub;
          if (h) byHub[h] = (byHub[h] ?? 0) + 1;
        }
        say({ connected: gws.filter((g) => g.uplink.connected).length, byHub, ...totals() });
      } else if (cmd === 'snapshot') {
        snapshotUrl = arg!;
        // On the node: connected to it, or (between CONNACK and mqtt.js's 'connect', while it resends) last connected to it.
        snapshot = gws.filter((g) => g.uplink.stats().hub === snapshotUrl || (g.uplink.connected && g.connectedTo === snapshotUrl));
        say({ snapshot: snapshot.length });
      } else if (cmd === 'killed') {
        const at = Number(arg);
        const back = (g: Gw): boolean => g.ackedAt > at && g.ackedVia !== null && g.ackedVia !== snapshotUrl;
        while (!snapshot.every(back)) await sleep(50);
        const s = snapshot.map((g) => (g.ackedAt - at) / 1000).sort((x, y) => x - y);
        const c = snapshot.map((g) => (g.connectedAt - at) / 1000).sort((x, y) => x - y);
        say({ recovered: s.length, seconds: s[s.length - 1] ?? 0, p50: s[Math.floor(s.length / 2)] ?? 0, connectedMax: c[c.length - 1] ?? 0, connectedP50: c[Math.floor(c.length / 2)] ?? 0 });
      } else if (cmd === 'drain') {
        loading = false;
        clearInterval(load);
        while (gws.some((g) => g.outbox.stats().rows > 0 || g.uplink.stats().inFlight > 0)) await sleep(100);
        say({ drained: true, ...totals() });
      }
    })();
  })
  .on('close', () => {
    clearInterval(load);
    void Promise.all(gws.map((g) => g.uplink.stop().catch(() => undefined))).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  });
