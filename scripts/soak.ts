/**
 * soak — a long run of the whole path with restarts (issue 13 "Tests and
 * measurements"): a hub with authentication (its own process,
 * scripts/bench/secure-hub-process.ts, on a fixed MQTT port so clients find
 * it again), one gateway (its own process, scripts/bench/scale-gateway-proc.ts)
 * polling 200 simulated Modbus TCP devices (scripts/bench/scale-sim-proc.ts,
 * registers that change on every read) every second, and two IOC consumers
 * (persistent sessions, QoS 1) here. A gateway restart and a hub restart
 * every 10 minutes; for runs under 30 minutes each happens once (gateway at
 * a third of the run, hub at two thirds).
 *
 *   npm run soak -- --minutes N [--devices 200] [--points 10]
 *
 * Every minute: RSS of the hub, the gateway, the simulator and this process.
 * At the end: readings the devices served (polls answered × points), readings
 * the gateway's drivers produced (exact: each gateway run's final count),
 * Modbus requests that timed out at the gateway (a reply that comes after
 * the timeout is served by the device but discarded by the gateway, as
 * Modbus/TCP requires: served, never produced), readings stored at the hub,
 * and from these lost (produced but not stored, or served but neither stored
 * nor explained by a timed-out poll) and duplicated (same series and
 * timestamp twice), and what each consumer received.
 * Last line: BENCH soak-rss-growth <percent> % — the larger of the hub's and
 * the gateway's RSS growth from minute 10 to the end (runs under 20 minutes:
 * from the middle of the run, and the output says so).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { SqliteDb } from '../lib/index.js';
import { LineProc } from './bench/line-proc.js';
import { freePort } from './sim/free-port.js';

const { values: a } = parseArgs({ options: { minutes: { type: 'string' }, devices: { type: 'string' }, points: { type: 'string' } } });
const minutes = Number(a.minutes ?? 5);
const devices = Number(a.devices ?? 200);
const points = Number(a.points ?? 10);
if (!(minutes >= 1)) {
  console.error('usage: npm run soak -- --minutes N (N ≥ 1)');
  process.exit(2);
}
const MB = 1024 * 1024;
const dir = await mkdtemp(path.join(os.tmpdir(), 'soak-'));
const hubDir = path.join(dir, 'hub');
const mqttPort = await freePort();
const restartEveryMin = 10;
/** Minutes (from the start) at which the gateway and the hub restart. */
const gwRestarts: number[] = [];
const hubRestarts: number[] = [];
if (minutes < 3 * restartEveryMin) {
  gwRestarts.push(minutes / 3);
  hubRestarts.push((2 * minutes) / 3);
} else {
  for (let m = restartEveryMin; m < minutes; m += restartEveryMin) {
    gwRestarts.push(m - restartEveryMin / 2);
    hubRestarts.push(m);
  }
}
console.log(`soak: ${minutes} min, ${devices} devices × ${points} points at 1 s, gateway restarts at ${gwRestarts.map((m) => m.toFixed(1)).join(', ')} min, hub restarts at ${hubRestarts.map((m) => m.toFixed(1)).join(', ')} min`);

const startHubProc = async (): Promise<LineProc> => {
  const h = LineProc.start('scripts/bench/secure-hub-process.ts', [hubDir], { env: { MQTT_PORT: String(mqttPort) } });
  await h.next((o) => o.ready === true, 120_000);
  return h;
};

let hub = await startHubProc();
const sim = LineProc.start('scripts/bench/scale-sim-proc.ts', [String(devices)], { nofile: 8192 });
let gw: LineProc | null = null;
const consumers: MqttClient[] = [];
try {
  const { ports } = (await sim.next((o) => o.ready === true, 120_000)) as unknown as { ports: number[] };
  const credFile = path.join(dir, 'creds.json');
  await hub.ask(`issue 1 soak-gw ${credFile}`, (o) => 'issued' in o);
  const [cred] = JSON.parse(readFileSync(credFile, 'utf8')) as Array<{ username: string; password: string }>;
  const ioc = (await hub.ask('consumer ioc', (o) => 'password' in o)) as { username: string; password: string };

  const profileDir = path.join(dir, 'profiles');
  mkdirSync(profileDir);
  writeFileSync(path.join(profileDir, 'soak-device.json'), JSON.stringify({
    model: 'soak-device', manufacturer: 'soak', protocol: 'modbus', pollIntervalMs: 1000,
    points: Array.from({ length: points }, (_, i) => ({ name: `p${i}`, table: 'holding', address: i, type: 'uint16' })),
  }));
  const configFile = path.join(dir, 'gateway.json');
  writeFileSync(configFile, JSON.stringify({
    gatewayId: cred!.username, dataDir: path.join(dir, 'gateway'), profileDirs: [profileDir],
    hub: { url: `mqtt://127.0.0.1:${mqttPort}`, username: cred!.username, password: cred!.password },
    buses: ports.map((port, i) => ({ id: `dev-${i}`, type: 'modbus-tcp', host: '127.0.0.1', port, timeoutMs: 1000 })),
    devices: ports.map((_, i) => ({ id: `dev-${i}`, bus: `dev-${i}`, unitId: 1, profile: 'soak-device', pollIntervalMs: 1000 })),
  }));

  // Readings the gateway's drivers produced, summed over its runs (each run counts from 0).
  // Polls that timed out at the gateway, summed the same way: a reply after the timeout is counted as
  // served by the devices and discarded by the gateway (Modbus/TCP), so it is served but never stored.
  let producedDone = 0;
  let producedNow = 0;
  let timeoutsDone = 0;
  let timeoutsNow = 0;
  let gwRss = 0;
  let final: Promise<Record<string, unknown> | null> = Promise.resolve(null);
  const startGw = async (): Promise<LineProc> => {
    const g = LineProc.start('scripts/bench/scale-gateway-proc.ts', [configFile], { nofile: 8192 });
    await g.next((o) => o.ready === true, 120_000);
    producedNow = 0;
    timeoutsNow = 0;
    final = g.next((o) => o.final === true, 24 * 3600_000).catch(() => null);
    void (async () => {
      for (;;) {
        const s = await g.next((o) => o.stats === true).catch(() => null);
        if (!s) return;
        producedNow = Number(s.produced);
        timeoutsNow = Number(s.timeouts ?? 0);
        gwRss = Number(s.rss);
      }
    })();
    return g;
  };
  /** Stops the gateway; resolves with the readings it left in its outbox (unacknowledged, sent at its next start). */
  const stopGw = async (g: LineProc): Promise<number> => {
    await g.stop(60_000);
    const f = await final;
    producedDone += f ? Number(f.produced) : producedNow;
    timeoutsDone += f ? Number(f.timeouts) : timeoutsNow;
    producedNow = 0;
    timeoutsNow = 0;
    return f ? Number(f.left ?? 0) : 0;
  };
  gw = await startGw();

  // Two IOC consumers: persistent sessions at QoS 1, so a hub restart loses nothing for them either.
  const received = [new Map<string, number>(), new Map<string, number>()];
  for (const [i, map] of received.entries()) {
    const c = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `ioc:soak-${i}`, username: ioc.username, password: ioc.password, clean: false, reconnectPeriod: 1000 });
    c.on('error', () => undefined);
    c.on('message', (_t, payload) => {
      try {
        const b = JSON.parse(payload.toString()) as { epoch: string; seq: number; readings: unknown[] };
        const key = `${b.epoch}/${b.seq}`;
        map.set(key, (map.get(key) ?? 0) + 1);
      } catch {
        // not a batch
      }
    });
    await new Promise<void>((resolve) => c.once('connect', () => resolve()));
    await c.subscribeAsync('ioc/v1/gw/+/telemetry', { qos: 1 });
    consumers.push(c);
  }

  const t0 = Date.now();
  const rssLog: Array<{ min: number; hub: number; gw: number; sim: number; self: number }> = [];
  const simRss = (): number => {
    try {
      const pid = (sim as unknown as { child: { pid: number } }).child.pid;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    } catch {
      return 0;
    }
  };
  let nextGw = 0;
  let nextHub = 0;
  for (let minute = 1; minute <= minutes; minute++) {
    const due = t0 + minute * 60_000;
    while (Date.now() < due) {
      const elapsedMin = (Date.now() - t0) / 60_000;
      if (nextGw < gwRestarts.length && elapsedMin >= gwRestarts[nextGw]!) {
        nextGw++;
        console.log(`${elapsedMin.toFixed(1)} min: gateway restart`);
        await stopGw(gw);
        gw = await startGw();
      }
      if (nextHub < hubRestarts.length && elapsedMin >= hubRestarts[nextHub]!) {
        nextHub++;
        console.log(`${elapsedMin.toFixed(1)} min: hub restart`);
        await hub.stop(60_000);
        hub = await startHubProc();
      }
      await sleep(Math.min(1000, Math.max(0, due - Date.now())));
    }
    const hs = (await hub.ask('stats', (o) => 'rss' in o, 60_000)) as { rss: number };
    const row = { min: minute, hub: hs.rss, gw: gwRss, sim: simRss(), self: process.memoryUsage().rss };
    rssLog.push(row);
    console.log(`minute ${minute}: RSS hub ${(row.hub / MB).toFixed(1)} MB, gateway ${(row.gw / MB).toFixed(1)} MB, simulator ${(row.sim / MB).toFixed(1)} MB, soak driver ${(row.self / MB).toFixed(1)} MB; readings produced ${producedDone + producedNow}`);
  }

  // Let the last readings drain, then stop everything and count.
  // The gateway first: once it is stopped every poll it made has been answered and counted by the devices,
  // and what it has not delivered yet is in its outbox (counted, not lost: its next start sends it).
  const left = await stopGw(gw);
  gw = null;
  const served0 = (await sim.ask('stats', (o) => o.stats === true)) as { requests: number };
  await sleep(3000);
  const served = Number(served0.requests) * points;
  await hub.stop(60_000);
  const db = await SqliteDb.open(path.join(hubDir, 'hub.sqlite'));
  const stored = (await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM readings r JOIN series s ON s.id = r.series WHERE s.gateway = ?', [cred!.username]))?.n ?? 0;
  const distinct = (await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM (SELECT DISTINCT r.series, r.ts FROM readings r JOIN series s ON s.id = r.series WHERE s.gateway = ?)', [cred!.username]))?.n ?? 0;
  await db.close();
  const produced = producedDone;
  const lateMax = timeoutsDone * points;
  // Readings the last gateway run left in its outbox are held on its disk, not lost: they are not stored yet.
  const gap = Math.max(0, served - distinct - left);
  console.log(`readings: devices served ${served} (polls answered × ${points}), gateway produced ${produced}, hub stored ${stored} (${distinct} distinct series × timestamp), left in the stopped gateway's outbox ${left} (sent at its next start)`);
  console.log(`polls timed out at the gateway: ${timeoutsDone} (a reply after the ${1000} ms timeout counts as served at the device and is discarded by the gateway: at most ${lateMax} readings)`);
  console.log(`produced, neither stored nor in the outbox (lost on the way to the hub's store): ${Math.max(0, produced - distinct - left)}; served, neither stored nor in the outbox: ${gap}, of which not explained by timed-out polls: ${Math.max(0, gap - lateMax)}`);
  console.log(`lost: ${Math.max(0, produced - distinct - left, gap - lateMax)}; duplicated (same series and timestamp stored twice): ${stored - distinct}`);
  for (const [i, map] of received.entries()) {
    let dup = 0;
    for (const n of map.values()) if (n > 1) dup += n - 1;
    console.log(`consumer ${i}: ${map.size} distinct batches received, ${dup} delivered more than once (QoS 1 allows it)`);
  }
  const ref = minutes >= 20 ? 10 : Math.max(1, Math.floor(minutes / 2));
  if (minutes < 20) console.log(`run shorter than 20 min: RSS growth measured from minute ${ref} (the middle of the run), not minute 10`);
  const at = rssLog.find((r) => r.min === ref)!;
  const end = rssLog.at(-1)!;
  const growth = (x: number, y: number): number => (x > 0 ? ((y - x) / x) * 100 : 0);
  const hubG = growth(at.hub, end.hub);
  const gwG = growth(at.gw, end.gw);
  console.log(`RSS growth minute ${ref} → ${end.min}: hub ${hubG.toFixed(1)} % (${(at.hub / MB).toFixed(1)} → ${(end.hub / MB).toFixed(1)} MB), gateway ${gwG.toFixed(1)} % (${(at.gw / MB).toFixed(1)} → ${(end.gw / MB).toFixed(1)} MB); restarts in between reset a process's RSS`);
  // Like for like: the hub's RSS at the end of each of its lifetimes (the minute before each restart, and the last).
  // Its SQLite page cache (64 MiB) fills as the store grows: the first lifetime, on a young store, ends lower.
  const ends = [...hubRestarts.map((m) => Math.floor(m)), end.min].map((m) => rssLog.find((r) => r.min === m)).filter((r) => r !== undefined);
  if (ends.length > 1) {
    const later = ends.slice(1);
    const spread = ((Math.max(...later.map((r) => r.hub)) - Math.min(...later.map((r) => r.hub))) / Math.min(...later.map((r) => r.hub))) * 100;
    console.log(`hub RSS at the end of each lifetime: ${ends.map((r) => `minute ${r.min} ${(r.hub / MB).toFixed(1)} MB`).join(', ')}; from the second on they differ by at most ${spread.toFixed(1)} %`);
  }
  console.log(`BENCH soak-rss-growth ${Math.max(hubG, gwG).toFixed(1)} %`);
} finally {
  for (const c of consumers) c.end(true);
  if (gw) await gw.stop(30_000).catch(() => undefined);
  await hub.stop(30_000).catch(() => undefined);
  await sim.stop().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
