/**
 * bench:sparkplug — the same gateway load northbound as ioc/v1 and as
 * Sparkplug B (issue 17): 500 Modbus TCP devices × 30 points polled every
 * 500 ms (simulated in a child process, scale-sim-proc.ts; every poll yields
 * new values), the gateway in its own process (sparkplug-gateway-proc.ts,
 * sources under tsx), an Aedes broker here behind a counting TCP proxy.
 *
 * Bytes on the wire per reading: telemetry PUBLISH packets as the broker
 * receives them (MQTT framing included: ioc/v1 telemetry batches; Sparkplug
 * births, data, deaths and fences), over readings acknowledged in the window.
 * Also the whole connection's bytes counted at a TCP proxy (for ioc/v1 that
 * includes status and events: the status follows device up/down at once). CPU = the gateway
 * process's user+system time over the window, RSS = its peak.
 *
 *   npm run bench:sparkplug -- [--devices 500] [--points 30] [--interval 500] [--seconds 20] [--warmup 8] [--sp-batch N] [--sp-window N]
 *
 * Last lines: `BENCH sparkplug-cpu-ratio <sparkplug/ioc-v1> ratio`, then
 * `BENCH sparkplug-bytes-ratio <sparkplug/ioc-v1> ratio`.
 * Targets (issue 17): bytes ≤ 0.6, CPU ≤ 1.2.
 */
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Aedes } from 'aedes';
import { LineProc } from './line-proc.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '500' }, points: { type: 'string', default: '30' }, interval: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '20' }, warmup: { type: 'string', default: '8' },
    'sp-batch': { type: 'string' }, 'sp-window': { type: 'string' }, trace: { type: 'boolean' },
  },
});
const devices = Number(values.devices);
const points = Number(values.points);
const intervalMs = Number(values.interval);

const dir = mkdtempSync(path.join(tmpdir(), 'bench-sparkplug-'));
const profileDir = path.join(dir, 'profiles');
mkdirSync(profileDir);
// Raw registers as the flood sensor has them: unsigned 16-bit, half of them scaled (Double in Sparkplug).
writeFileSync(path.join(profileDir, 'bench-scale.json'), JSON.stringify({
  model: 'bench-scale', manufacturer: 'bench', protocol: 'modbus', pollIntervalMs: 500,
  points: Array.from({ length: points }, (_, i) => ({ name: `p${i}`, table: 'holding', address: i, type: 'uint16', ...(i % 2 ? { scale: 0.1, unit: 'm' } : {}) })),
}));

const aedes = await Aedes.createBroker();
/**
 * Telemetry bytes as the broker receives them, per PUBLISH: fixed header,
 * remaining length, topic, packet id (QoS 1) and payload (MQTT 3.1.1 §3.3).
 * ioc/v1: the telemetry topic; Sparkplug: every spBv1.0 message of the node
 * and the fences. Status and events (hub link) are left out in both.
 */
const telemetry = { bytes: 0 };
aedes.on('publish', (packet, client) => {
  if (!client) return;
  const t = packet.topic;
  if (!(t.endsWith('/telemetry') || t.startsWith('spBv1.0/bench/') || t.endsWith('/fence'))) return;
  const rest = 2 + Buffer.byteLength(t) + (packet.qos > 0 ? 2 : 0) + (packet.payload as Buffer).length;
  telemetry.bytes += 1 + (rest < 128 ? 1 : rest < 16384 ? 2 : rest < 2097152 ? 3 : 4) + rest;
});
const broker = net.createServer(aedes.handle).listen(0, '127.0.0.1');
await once(broker, 'listening');
const brokerPort = (broker.address() as net.AddressInfo).port;

/** The counting proxy: bytes from clients to the broker (up) and back (down). */
const wire = { up: 0, down: 0 };
const proxy = net.createServer((client) => {
  const upstream = net.connect(brokerPort, '127.0.0.1');
  client.on('data', (d: Buffer) => (wire.up += d.length));
  upstream.on('data', (d: Buffer) => (wire.down += d.length));
  client.pipe(upstream).on('error', () => undefined);
  upstream.pipe(client).on('error', () => undefined);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
}).listen(0, '127.0.0.1');
await once(proxy, 'listening');
const proxyPort = (proxy.address() as net.AddressInfo).port;

const sim = LineProc.start('scripts/bench/scale-sim-proc.ts', [String(devices)], { nofile: 8192 });
const { ports } = (await sim.next((o) => o.ready === true, 120_000)) as unknown as { ports: number[] };

interface Run { mode: string; readingsPerS: number; bytesPerReading: number; telemetryPerReading: number; downPerReading: number; cores: number; peakRssMb: number; produced: number }
interface Stat { t: number; cpuUs: number; rss: number; maxRssKb: number; produced: number; acked: number; backlog: number }

async function run(mode: 'ioc/v1' | 'sparkplug'): Promise<Run> {
  const name = mode === 'sparkplug' ? 'sparkplug' : 'iocv1';
  const viaProxy = `mqtt://127.0.0.1:${proxyPort}`;
  const direct = `mqtt://127.0.0.1:${brokerPort}`;
  const config = {
    gatewayId: 'gw-bench-01',
    dataDir: path.join(dir, name),
    profileDirs: [profileDir],
    hub: { url: mode === 'ioc/v1' ? viaProxy : direct },
    buses: ports.map((port, i) => ({ id: `dev-${i}`, type: 'modbus-tcp', host: '127.0.0.1', port, timeoutMs: 1000 })),
    devices: ports.map((_, i) => ({ id: `dev-${i}`, bus: `dev-${i}`, unitId: 1, profile: 'bench-scale', pollIntervalMs: intervalMs })),
    uplink: { statusIntervalS: 3600 },
    ...(mode === 'sparkplug' ? { northbound: {
      type: 'sparkplug', url: viaProxy, groupId: 'bench',
      ...(values['sp-batch'] ? { batchSize: Number(values['sp-batch']) } : {}), ...(values['sp-window'] ? { window: Number(values['sp-window']) } : {}),
    } } : {}),
  };
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  const gw = LineProc.start('scripts/bench/sparkplug-gateway-proc.ts', [file], { nofile: 8192 });
  await gw.next((o) => o.ready === true, 180_000);
  const stats: Stat[] = [];
  let reading = true;
  const loop = (async () => {
    while (reading) {
      const s = (await gw.next((o) => o.stats === true, 5000).catch(() => null)) as Stat | null;
      if (s) stats.push(s);
      if (s && values.trace) console.error(`${mode} ${JSON.stringify(s)}`);
    }
  })();
  await new Promise((r) => setTimeout(r, Number(values.warmup) * 1000));
  const a = { stat: stats.at(-1)!, wire: { ...wire }, telemetry: telemetry.bytes };
  await new Promise((r) => setTimeout(r, Number(values.seconds) * 1000));
  const b = { stat: stats.at(-1)!, wire: { ...wire }, telemetry: telemetry.bytes };
  reading = false;
  await loop;
  await gw.stop(30_000);
  const secs = (b.stat.t - a.stat.t) / 1000;
  const acked = b.stat.acked - a.stat.acked;
  return {
    mode, readingsPerS: acked / secs, produced: (b.stat.produced - a.stat.produced) / secs,
    bytesPerReading: (b.wire.up - a.wire.up) / acked, telemetryPerReading: (b.telemetry - a.telemetry) / acked, downPerReading: (b.wire.down - a.wire.down) / acked,
    cores: (b.stat.cpuUs - a.stat.cpuUs) / 1e6 / secs, peakRssMb: Math.max(...stats.map((s) => s.maxRssKb)) / 1024,
  };
}

const show = (r: Run): string =>
  `${r.mode.padEnd(9)}: ${Math.round(r.readingsPerS)} readings/s acknowledged (produced ${Math.round(r.produced)}/s), telemetry ${r.telemetryPerReading.toFixed(1)} B/reading at the broker (whole connection ${r.bytesPerReading.toFixed(1)} B/reading at the proxy, +${r.downPerReading.toFixed(2)} B back), gateway ${r.cores.toFixed(3)} cores, peak RSS ${r.peakRssMb.toFixed(0)} MB`;
const ioc = await run('ioc/v1');
console.log(show(ioc));
const spb = await run('sparkplug');
console.log(show(spb));
await sim.stop();
proxy.close();
broker.close();
await new Promise<void>((r) => aedes.close(() => r()));
rmSync(dir, { recursive: true, force: true });
const cpuRatio = spb.cores / spb.readingsPerS / (ioc.cores / ioc.readingsPerS);
console.log(`${devices} devices × ${points} points every ${intervalMs} ms; CPU ratio per reading acknowledged ${cpuRatio.toFixed(2)} (target ≤ 1.2), RSS ${spb.peakRssMb.toFixed(0)} vs ${ioc.peakRssMb.toFixed(0)} MB`);
console.log(`BENCH sparkplug-cpu-ratio ${cpuRatio.toFixed(3)} ratio`);
console.log(`whole-connection bytes ratio (status and events included for ioc/v1) ${(spb.bytesPerReading / ioc.bytesPerReading).toFixed(3)}`);
console.log(`BENCH sparkplug-bytes-ratio ${(spb.telemetryPerReading / ioc.telemetryPerReading).toFixed(3)} ratio`);
process.exit(0);
