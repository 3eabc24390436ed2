/**
 * bench:rtu — Modbus RTU bus efficiency: points per second the gateway reads
 * on a simulated 9600-baud RS-485 line (pty pair; the slaves in another
 * process answer with wire timing: a reply starts 3.5 character times after
 * the request has crossed the wire and arrives when its own bytes would
 * have), divided by the physical maximum of the same poll plan computed from
 * frame sizes and character times:
 *
 *   per request: (request bytes + reply bytes) × 11 bits / baud + 2 × t3.5
 *   (Modbus over Serial Line v1.02 §2.5.1.1: the silence before the reply and
 *   the silence before the next request)
 *
 * The gateway side is the real poll path: DevicePollers (coalesced read plans
 * of the eastron-sdm120 profile, all points in one poll group, polled as fast
 * as the bus allows) on one ModbusRtuTransport (scheduler, t3.5, timeouts).
 * Last line: BENCH rtu-efficiency <ratio> ratio.
 *
 *   npm run bench:rtu -- [--seconds 15] [--devices 4] [--baud 9600]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PROFILES_DIR, loadProfileFile, planReads, type ModbusProfile, type ModbusTable } from '../../device-profiles/index.js';
import { silentLogger } from '../../lib/index.js';
import { DevicePoller } from '../../gateway/southbound/device-poller.js';
import { openSerialPort } from '../../gateway/southbound/drivers/byte-link.js';
import { ModbusRtuTransport, interFrameSilenceMs, charTimeMs } from '../../gateway/southbound/drivers/modbus-rtu.js';
import type { ModbusRequestOptions, ModbusTransport } from '../../gateway/southbound/drivers/modbus-transport.js';
import { PtyPair } from '../sim/serial-adapters.js';
import { LineProc } from './line-proc.js';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, devices: { type: 'string' }, baud: { type: 'string' } } });
const seconds = Number(values.seconds ?? 15);
const units = Number(values.devices ?? 4);
const baudRate = Number(values.baud ?? 9600);

const dir = mkdtempSync(path.join(tmpdir(), 'bench-rtu-'));
const pair = new PtyPair(path.join(dir, 'gw'), path.join(dir, 'sim'));
await pair.start();
const sim = LineProc.start('scripts/bench/rtu-sim-proc.ts', [pair.b, String(baudRate), String(units)]);
await sim.next((o) => o.ready === true, 30_000);

// One poll group: the profile's slower points polled with the rest.
const shipped = (await loadProfileFile(path.join(PROFILES_DIR, 'eastron-sdm120.json'))) as ModbusProfile;
const profile: ModbusProfile = { ...shipped, points: shipped.points.map(({ pollIntervalMs: _drop, ...p }) => p) };
const plan = planReads(profile.points, profile.modbus);
const pointsAt = new Map(plan.map((r) => [`${r.table}:${r.address}:${r.count}`, r.points.length]));

const transport = new ModbusRtuTransport({
  config: { id: 'bench', type: 'modbus-rtu', path: pair.a, baudRate, parity: 'even', dataBits: 8, stopBits: 1, timeoutMs: 200, retries: 0, interFrameDelayMs: 0, reconnectMinMs: 100, reconnectMaxMs: 1000 },
  logger: silentLogger(),
  openPort: openSerialPort,
});
let counting = false;
let points = 0;
let failures = 0;
const counted: ModbusTransport = {
  id: transport.id,
  start: () => transport.start(),
  stop: () => transport.stop(),
  write: (...a) => transport.write(...a),
  async read(unit: number, table: ModbusTable, address: number, count: number, opts?: ModbusRequestOptions) {
    try {
      const data = await transport.read(unit, table, address, count, opts);
      if (counting) points += pointsAt.get(`${table}:${address}:${count}`) ?? 0;
      return data;
    } catch (err) {
      if (counting) failures++;
      throw err;
    }
  },
};
await transport.start();
const pollers = Array.from({ length: units }, (_, i) => new DevicePoller({
  device: { id: `meter-${i + 1}`, bus: 'bench', profile: profile.model, unitId: i + 1, pollIntervalMs: 50, enabled: true },
  profile, transport: counted, logger: silentLogger(), onReadings: () => undefined, onEvent: () => undefined,
}));
for (const p of pollers) await p.start();
await new Promise((r) => setTimeout(r, 3000));
counting = true;
const t0 = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
counting = false;
const elapsed = (performance.now() - t0) / 1000;
for (const p of pollers) await p.stop();
const stats = await sim.ask('stats', (o) => o.stats === true);
await transport.stop();
await sim.stop();
await pair.kill();
rmSync(dir, { recursive: true, force: true });

const ch = charTimeMs(baudRate, 11);
const t35 = interFrameSilenceMs(baudRate, 11);
const cycleMs = plan.reduce((s, r) => {
  const reply = r.table === 'coil' || r.table === 'discrete' ? 5 + Math.ceil(r.count / 8) : 5 + 2 * r.count;
  return s + (8 + reply) * ch + 2 * t35;
}, 0);
const pointsPerCycle = plan.reduce((s, r) => s + r.points.length, 0);
const physicalMax = (pointsPerCycle / cycleMs) * 1000;
const achieved = points / elapsed;
console.log(`plan per device: ${plan.map((r) => `${r.table}@${r.address}×${r.count}`).join(', ')} (${pointsPerCycle} points, ${cycleMs.toFixed(1)} ms on the wire incl. 2×t3.5 = ${(2 * t35).toFixed(2)} ms per request)`);
console.log(`${units} devices at ${baudRate} baud 8E1 for ${elapsed.toFixed(1)} s: ${points} points, ${failures} failed requests, slave saw ${String(stats.silenceViolations)} inter-frame silence violations`);
console.log(`achieved ${achieved.toFixed(1)} points/s, physical maximum ${physicalMax.toFixed(1)} points/s`);
console.log(`BENCH rtu-efficiency ${(achieved / physicalMax).toFixed(3)} ratio`);
