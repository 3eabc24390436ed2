/**
 * Raw-socket MQTT gateways for bench:reconnect-storm and bench:connections, in
 * their own process: each gateway is a socket with a hand-made CONNECT (clean
 * session, username and password), so that tens of thousands fit in one process.
 *
 *   storm-clients.ts CONFIG.json
 *     {port, creds, from, to, keepaliveS, mode?, localAddresses?,
 *      minMs, maxMs, connectTimeoutMs   (mode "storm", the default)
 *      concurrency                      (mode "hold")}
 *
 * - `storm`: gateways that reconnect exactly as the uplink does (full-jitter
 *   Backoff from lib/ with the hub.reconnectMinMs/MaxMs given, a CONNACK
 *   timeout like mqtt.js's connectTimeout, a fresh try after a refused
 *   CONNACK), started spread over one second.
 * - `hold`: each gateway connects once, at most `concurrency` CONNECTs in
 *   flight, and holds its connection (PINGREQ); prints
 *   {"done": true, "ok", "codes": {returnCode: n}, "errors", "seconds"} when all
 *   are settled. A refused or failed gateway is not retried: bench:connections
 *   reports every CONNACK code it saw.
 *
 * `localAddresses` (e.g. ["127.0.0.1", "127.0.0.2"]): gateway i binds its socket
 * to localAddresses[i % n]. Loopback has ~28,000 ephemeral ports per source
 * address (net.ipv4.ip_local_port_range), so 50,000 connections need several.
 * Every 127.x address is on `lo` on Linux; macOS needs `ifconfig lo0 alias`.
 *
 * Prints {"ready": true}; answers on stdin:
 *   status  → {"connected", "attempts"}
 *   report  → {"connectedAt": [ms epoch of each gateway's last CONNACK], "attempts"}
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Backoff } from '../../lib/backoff.js';

interface Cred {
  clientId: string;
  username?: string;
  password?: string;
}

/** The worker's configuration file (see the module comment). */
interface Config {
  port: number;
  creds: string;
  from: number;
  to: number;
  keepaliveS: number;
  mode?: 'storm' | 'hold';
  localAddresses?: string[];
  minMs?: number;
  maxMs?: number;
  connectTimeoutMs?: number;
  concurrency?: number;
}

const say = (o: unknown): boolean => process.stdout.write(`${JSON.stringify(o)}\n`);
const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Config;
const creds = (JSON.parse(readFileSync(config.creds, 'utf8')) as Cred[]).slice(config.from, config.to);
const sources = config.localAddresses?.length ? config.localAddresses : null;

function str(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);
}

/** MQTT 3.1.1 §3.1 CONNECT, CleanSession 1. */
function connectPacket(c: Cred, keepalive: number): Buffer {
  const flags = 0x02 | (c.username ? 0x80 : 0) | (c.password ? 0x40 : 0);
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, flags, keepalive >> 8, keepalive & 255]), str(c.clientId), ...(c.username ? [str(c.username)] : []), ...(c.password ? [str(c.password)] : [])]);
  const len: number[] = [];
  let n = body.length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x10, ...len]), body]);
}

let attempts = 0;
let connected = 0;
let stopping = false;
const sockets = new Set<net.Socket>();
const connectedAt: number[] = new Array<number>(creds.length).fill(0);

/**
 * One connection attempt of gateway i. `settle` gets the CONNACK return code
 * (MQTT 3.1.1 §3.2.2.3), or -1 for a connection that failed or timed out first.
 * `lost` runs when a connection that was accepted closes.
 */
function attempt(i: number, settle: (code: number) => void, lost: () => void): void {
  attempts++;
  let up = false;
  let settled = false;
  const done = (code: number): void => {
    if (settled) return;
    settled = true;
    settle(code);
  };
  const s = net.connect({ port: config.port, host: '127.0.0.1', ...(sources ? { localAddress: sources[i % sources.length] } : {}) });
  sockets.add(s);
  const timer = config.connectTimeoutMs ? setTimeout(() => s.destroy(), config.connectTimeoutMs) : null;
  s.once('connect', () => s.write(connectPacket(creds[i]!, config.keepaliveS)));
  s.once('data', (d: Buffer) => {
    if (timer) clearTimeout(timer);
    // CONNACK: 0x20, remaining length 2, flags, return code.
    const code = d[0] === 0x20 && d.length >= 4 ? d[3]! : -1;
    if (code === 0) {
      up = true;
      connected++;
      connectedAt[i] = Date.now();
    } else s.destroy();
    done(code);
  });
  s.on('error', () => undefined);
  s.once('close', () => {
    if (timer) clearTimeout(timer);
    sockets.delete(s);
    done(-1);
    if (up) {
      connected--;
      lost();
    }
  });
}

/** Storm mode: connect, and on any loss wait backoff.next() and connect again (reset on CONNACK 0). */
function stormGateway(i: number): void {
  const backoff = new Backoff({ minMs: config.minMs ?? 500, maxMs: config.maxMs ?? 10_000, jitter: 'full' });
  const again = (): void => {
    if (!stopping) setTimeout(run, backoff.next());
  };
  const run = (): void => {
    if (stopping) return;
    attempt(i, (code) => (code === 0 ? backoff.reset() : again()), again);
  };
  run();
}

/** Hold mode: every gateway once, `concurrency` CONNECTs in flight; resolves with the tally. */
function holdAll(concurrency: number): Promise<{ ok: number; codes: Record<string, number>; errors: number; dropped: number; seconds: number }> {
  const t0 = performance.now();
  const codes: Record<string, number> = {};
  let next = 0;
  let active = 0;
  let settledN = 0;
  let dropped = 0;
  return new Promise((resolve) => {
    const launch = (): void => {
      while (active < concurrency && next < creds.length && !stopping) {
        active++;
        attempt(next++, (code) => {
          active--;
          settledN++;
          codes[String(code)] = (codes[String(code)] ?? 0) + 1;
          if (settledN % 1000 === 0) say({ progress: settledN, ok: codes['0'] ?? 0, seconds: (performance.now() - t0) / 1000 });
          if (settledN === creds.length) resolve({ ok: codes['0'] ?? 0, codes, errors: codes['-1'] ?? 0, dropped, seconds: (performance.now() - t0) / 1000 });
          else launch();
        }, () => dropped++);
      }
    };
    launch();
  });
}

const ping = setInterval(() => {
  for (const s of sockets) if (!s.destroyed && s.writable) s.write(Buffer.from([0xc0, 0x00]));
}, (config.keepaliveS * 1000) / 2);
say({ ready: true });
if (config.mode === 'hold') {
  void holdAll(config.concurrency ?? 128).then((r) => say({ done: true, ...r, alive: connected }));
} else {
  // Start spread over one second, as a fleet that has been running a while would be.
  creds.forEach((_, i) => setTimeout(() => stormGateway(i), Math.random() * 1000));
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'status') say({ connected, attempts });
  else if (cmd === 'report') say({ connectedAt, attempts });
});
rl.on('close', () => {
  stopping = true;
  clearInterval(ping);
  for (const s of sockets) s.destroy();
  setTimeout(() => process.exit(0), 200).unref();
});
