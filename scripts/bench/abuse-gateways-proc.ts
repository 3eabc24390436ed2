/**
 * The well-behaved side of bench:abuse, in its own process so the attacker's
 * client work does not skew its clock:
 *   node --import tsx scripts/bench/abuse-gateways-proc.ts PORT CREDS_FILE N RATE
 * Connects the first N gateways of CREDS_FILE and has each publish one QoS 1
 * telemetry batch (10 readings) RATE times a second, timing each PUBACK.
 * Prints {"ready": true} once all are connected; then one JSON line per
 * stdin command:
 *   mark  → {"n", "p50", "p99", "max" (ms), "disconnects", "unacked"} since the last mark
 * Stops when stdin closes.
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import mqtt, { type MqttClient } from 'mqtt';

const [port, credFile, nArg, rateArg] = process.argv.slice(2);
const creds = (JSON.parse(await readFile(credFile!, 'utf8')) as Array<{ clientId: string; username: string; password: string }>).slice(0, Number(nArg ?? 10));
const rate = Number(rateArg ?? 20);
const say = (o: unknown): boolean => process.stdout.write(`${JSON.stringify(o)}\n`);

let lat: number[] = [];
let disconnects = 0;
let inflight = 0;
const clients: MqttClient[] = [];
await Promise.all(creds.map(async (c) => {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: c.clientId, username: c.username, password: c.password, reconnectPeriod: 500, keepalive: 30 });
  client.on('error', () => undefined);
  client.on('close', () => disconnects++);
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  clients.push(client);
}));
disconnects = 0;
say({ ready: true });

const seqs = new Map<string, number>();
const timer = setInterval(() => {
  for (const c of clients) {
    if (!c.connected) continue;
    const id = c.options.clientId!;
    const seq = (seqs.get(id) ?? 0) + 1;
    seqs.set(id, seq);
    const ts = Date.now();
    const readings = Array.from({ length: 10 }, (_, i) => ({ device: 'meter', point: `p${i}`, ts, value: seq + i / 10, quality: 'good' }));
    const t0 = performance.now();
    inflight++;
    c.publish(`ioc/v1/gw/${id}/telemetry`, JSON.stringify({ v: 1, epoch: 'bench-abuse', seq, readings }), { qos: 1 }, (err) => {
      inflight--;
      if (!err) lat.push(performance.now() - t0);
    });
  }
}, 1000 / rate);

const pct = (a: number[], p: number): number => (a.length ? a[Math.min(a.length - 1, Math.floor((a.length * p) / 100))]! : 0);
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() !== 'mark') return;
  const a = lat.sort((x, y) => x - y);
  say({ n: a.length, p50: pct(a, 50), p99: pct(a, 99), max: a[a.length - 1] ?? 0, disconnects, unacked: inflight });
  lat = [];
  disconnects = 0;
});
rl.on('close', () => {
  clearInterval(timer);
  void Promise.all(clients.map((c) => c.endAsync())).then(() => process.exit(0));
});
