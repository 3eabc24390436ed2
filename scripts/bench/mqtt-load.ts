/**
 * The client side of bench:connections and bench:hub, run in its own
 * process(es) so the broker's numbers are its own:
 *
 *   mqtt-load.ts hold CONFIG.json     raw sockets, hand-made CONNECT with credentials; holds them (PINGREQ)
 *   mqtt-load.ts publish CONFIG.json  mqtt.js publishers (QoS 1, windowed) + an optional QoS 1 subscriber
 *
 * Prints {"ready": true} at start, progress and result as JSON lines; stops when stdin closes.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import mqtt, { type MqttClient } from 'mqtt';

const say = (o: unknown): boolean => process.stdout.write(`${JSON.stringify(o)}\n`);
const [mode, configFile] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configFile!, 'utf8')) as Record<string, unknown>;
interface Cred {
  clientId: string;
  username?: string;
  password?: string;
}
const cleanups: Array<() => void> = [];
createInterface({ input: process.stdin }).on('close', () => {
  for (const c of cleanups) c();
  setTimeout(() => process.exit(0), 200).unref();
});
say({ ready: true });

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

async function hold(): Promise<void> {
  const creds = (JSON.parse(readFileSync(config.creds as string, 'utf8')) as Cred[]).slice(config.from as number, config.to as number);
  const port = config.port as number;
  const keepalive = (config.keepaliveS as number) ?? 120;
  const concurrency = (config.concurrency as number) ?? 256;
  const sockets: net.Socket[] = [];
  let ok = 0;
  let refused = 0;
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  cleanups.push(() => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((resolveAll) => {
    let active = 0;
    const launch = (): void => {
      while (active < concurrency && next < creds.length) {
        const c = creds[next++]!;
        active++;
        const s = net.connect(port, '127.0.0.1');
        let settled = false;
        const settle = (kind: 'ok' | 'refused' | 'error'): void => {
          if (settled) return;
          settled = true;
          if (kind === 'ok') ok++;
          else if (kind === 'refused') refused++;
          else errors++;
          active--;
          if ((ok + refused + errors) % 1000 === 0) say({ progress: ok + refused + errors, ok, seconds: (performance.now() - t0) / 1000 });
          if (next < creds.length) launch();
          else if (active === 0) resolveAll();
        };
        s.once('connect', () => s.write(connectPacket(c, keepalive)));
        s.once('data', (d: Buffer) => settle(d[0] === 0x20 && d[3] === 0 ? 'ok' : 'refused'));
        s.on('error', () => settle('error'));
        s.once('close', () => settle('error'));
        sockets.push(s);
      }
    };
    launch();
  });
  const seconds = (performance.now() - t0) / 1000;
  // Keep them alive: PINGREQ well inside 1.5 × keepalive (MQTT 3.1.1 §3.1.2.10).
  const ping = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write(Buffer.from([0xc0, 0x00]));
  }, (keepalive * 1000) / 2);
  cleanups.push(() => clearInterval(ping));
  say({ done: true, ok, refused, errors, seconds, alive: sockets.filter((s) => !s.destroyed).length });
}

function connectClient(url: string, c: Cred): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId: c.clientId, ...(c.username ? { username: c.username, password: c.password } : {}), clean: true, reconnectPeriod: 0, keepalive: 60 });
}

async function publish(): Promise<void> {
  const url = config.url as string;
  const pubs = config.publishers as Cred[];
  const perPublisher = config.messages as number;
  const window = config.window as number;
  const warmup = Math.floor(perPublisher * ((config.warmup as number) ?? 0.2));
  const readings = (config.readingsPerMessage as number) ?? 2;
  let received = 0;
  const sub = config.subscriber as (Cred & { filter: string }) | undefined;
  if (sub) {
    const s = await connectClient(url, sub);
    s.on('message', () => received++);
    await s.subscribeAsync(sub.filter, { qos: 1 });
    cleanups.push(() => s.end(true));
  }
  const clients = await Promise.all(pubs.map((p) => connectClient(url, p)));
  cleanups.push(() => clients.forEach((c) => c.end(true)));
  const epoch = `b${Date.now().toString(36)}`;
  // 'command-result': a valid command result no command waits for (same size class), for the no-commit diagnostic.
  const payload = (seq: number): string => {
    const batch = Array.from({ length: readings }, (_, i) => ({ device: 'flood-1', point: `p${i}`, ts: Date.now(), value: seq + i / 10, quality: 'good' }));
    return JSON.stringify(config.payload === 'command-result' ? { v: 1, transaction: `${epoch}-${seq}`, status: 'ok', data: { readings: batch } } : { v: 1, epoch, seq, readings: batch });
  };
  let tStart = 0;
  let warmDone = 0;
  let acked = 0;
  const tAll = performance.now();
  await Promise.all(clients.map((c, k) => new Promise<void>((resolve) => {
    const topic = (config.topic as string).replace('{id}', pubs[k]!.clientId);
    let sent = 0;
    let done = 0;
    const pump = (): void => {
      while (sent < perPublisher && sent - done < window) {
        const seq = ++sent;
        c.publish(topic, payload(seq), { qos: 1 }, () => {
          done++;
          acked++;
          if (done === warmup && ++warmDone === clients.length) {
            tStart = performance.now();
            acked = 0;
          }
          if (done === perPublisher) resolve();
          else pump();
        });
      }
    };
    pump();
  })));
  const seconds = (performance.now() - (tStart || tAll)) / 1000;
  // The subscriber's copies leave the broker after the commit, as the PUBACKs do: let the last ones arrive (≤ 5 s)
  // before counting them, so "subscriber got" says what was delivered, not what was still on its way.
  const expected = perPublisher * clients.length;
  for (const until = Date.now() + 5000; sub && received < expected && Date.now() < until;) await new Promise((r) => setTimeout(r, 20));
  say({ done: true, acked, seconds, rate: acked / seconds, received, payloadBytes: payload(1).length });
}

await (mode === 'hold' ? hold() : publish());
