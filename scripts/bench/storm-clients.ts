/**
 * The client side of bench:reconnect-storm, in its own process: gateways that
 * reconnect exactly as the uplink does (full-jitter Backoff from lib/ with the
 * hub.reconnectMinMs/MaxMs given, a CONNACK timeout like mqtt.js's
 * connectTimeout, a fresh try after a refused CONNACK), each a raw socket with
 * a hand-made CONNECT so that thousands fit in one process.
 *
 *   storm-clients.ts CONFIG.json   {port, creds, from, to, minMs, maxMs, connectTimeoutMs, keepaliveS}
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
const say = (o: unknown): boolean => process.stdout.write(`${JSON.stringify(o)}\n`);
const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { port: number; creds: string; from: number; to: number; minMs: number; maxMs: number; connectTimeoutMs: number; keepaliveS: number };
const creds = (JSON.parse(readFileSync(config.creds, 'utf8')) as Cred[]).slice(config.from, config.to);

function str(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);
}

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

/** One gateway: connect, and on any loss wait backoff.next() and connect again (reset on CONNACK 0). */
function gateway(i: number): void {
  const c = creds[i]!;
  const backoff = new Backoff({ minMs: config.minMs, maxMs: config.maxMs, jitter: 'full' });
  const attempt = (): void => {
    if (stopping) return;
    attempts++;
    let up = false;
    const s = net.connect(config.port, '127.0.0.1');
    sockets.add(s);
    const timer = setTimeout(() => s.destroy(), config.connectTimeoutMs);
    s.once('connect', () => s.write(connectPacket(c, config.keepaliveS)));
    s.once('data', (d: Buffer) => {
      clearTimeout(timer);
      if (d[0] === 0x20 && d[3] === 0) {
        up = true;
        connected++;
        connectedAt[i] = Date.now();
        backoff.reset();
      } else s.destroy();
    });
    s.on('error', () => undefined);
    s.once('close', () => {
      clearTimeout(timer);
      sockets.delete(s);
      if (up) connected--;
      if (!stopping) setTimeout(attempt, backoff.next());
    });
  };
  attempt();
}

// Start spread over one second, as a fleet that has been running a while would be.
creds.forEach((_, i) => setTimeout(() => gateway(i), Math.random() * 1000));
const ping = setInterval(() => {
  for (const s of sockets) if (!s.destroyed && s.writable) s.write(Buffer.from([0xc0, 0x00]));
}, (config.keepaliveS * 1000) / 2);
say({ ready: true });

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
