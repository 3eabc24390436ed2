/**
 * bench:recovery — how soon a device that answers again is read (issue 14.3).
 * For each protocol a device is muted for `--mute-s` seconds (15) and then
 * answers again; measured from the unmute to the first good reading the
 * gateway's driver hands on. Buses and devices come from a configuration
 * with defaults (parseGatewayConfig), built by the gateway's own
 * buildSouthbound, so the default backoff caps are what is measured:
 *
 * - Modbus TCP: a flood level sensor behind the Modbus TCP simulator, which
 *   stops answering (connection kept open, requests time out);
 * - Modbus RTU: a cabinet monitor on the RTU simulator behind a raw RTU over
 *   TCP converter (the serial side of a device server), unit silent;
 * - OPC UA: the camera server (its own process, as in bench:opcua-recovery,
 *   so its start-up does not stall the gateway's event loop) stopped for the
 *   mute and started again on the same port; measured from the moment it
 *   listens again (there is no "silent" for a subscription: a server that is
 *   up answers keep-alives).
 *
 * The three run side by side in each round; `--runs` rounds (default 3).
 * Prints each measurement, each protocol's median, and last
 * `BENCH recovery <s> s`: the largest of the three medians (the target,
 * ≤ 5 s, holds for each protocol only if it holds for that one).
 *
 *   npm run bench:recovery -- [--runs 3] [--mute-s 15]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Reading } from '../../contract/index.js';
import { PROFILES_DIR, loadProfileFile, type DeviceProfile } from '../../device-profiles/index.js';
import { silentLogger } from '../../lib/index.js';
import { parseGatewayConfig } from '../../gateway/config.js';
import { buildSouthbound } from '../../gateway/southbound/southbound.js';
import { FloodLevelSensor, type SimDevice } from '../sim/field-devices.js';
import { ModbusTcpSimulator } from '../sim/modbus-tcp-sim.js';
import { CabinetEnvironment } from '../sim/rtu-devices.js';
import { RtuSlaveLine } from '../sim/rtu-slave.js';
import { RtuTcpServer } from '../sim/rtu-tcp-server.js';
import { LineProc } from './line-proc.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'mute-s': { type: 'string', default: '15' } } });
const runs = Number(values.runs);
const muteMs = Number(values['mute-s']) * 1000;
const dir = mkdtempSync(path.join(tmpdir(), 'bench-recovery-'));
process.env.HOME = dir; // node-opcua's PKI

const tcpSim = new ModbusTcpSimulator(new Map<number, SimDevice>([[1, new FloodLevelSensor()]]));
await tcpSim.start();
const rtuLine = new RtuSlaveLine(new Map<number, SimDevice>([[2, new CabinetEnvironment()]]), { baudRate: 19200 });
const rtuServer = new RtuTcpServer(rtuLine);
await rtuServer.start();
const uaServer = LineProc.start('scripts/bench/opcua-server-proc.ts', [dir]);
const { endpointUrl } = (await uaServer.next((o) => o.ready === true, 60_000)) as unknown as { endpointUrl: string };

const config = parseGatewayConfig({
  gatewayId: 'bench', dataDir: path.join(dir, 'gw'), hub: { url: 'mqtt://127.0.0.1:1' },
  buses: [
    { id: 'tcp', type: 'modbus-tcp', host: '127.0.0.1', port: tcpSim.port },
    { id: 'rtu', type: 'modbus-rtu-tcp', host: '127.0.0.1', port: rtuServer.port, baudRate: 19200 },
    { id: 'ua', type: 'opcua', endpointUrl, pkiDir: path.join(dir, 'client-pki'), devMode: true },
  ],
  devices: [
    { id: 'flood-1', bus: 'tcp', profile: 'flood-level-sensor', unitId: 1 },
    { id: 'cabinet-2', bus: 'rtu', profile: 'cabinet-environment', unitId: 2 },
    { id: 'cam-1', bus: 'ua', profile: 'camera-health-opcua' },
  ],
}, '<bench>');
const profiles = new Map<string, DeviceProfile>();
for (const m of ['flood-level-sensor', 'cabinet-environment', 'camera-health-opcua']) profiles.set(m, await loadProfileFile(path.join(PROFILES_DIR, `${m}.json`)));

/** Time of the last good reading per device. */
const lastGood = new Map<string, number>();
const sb = await buildSouthbound({
  config, profiles, logger: silentLogger(), onEvent: () => undefined,
  onReadings: (rs: Reading[]) => {
    const now = Date.now();
    for (const r of rs) if (r.quality === 'good') lastGood.set(r.device, now);
  },
});
for (const l of sb.lines) await l.start();
for (const d of sb.drivers) await d.start();

async function goodAfter(device: string, t: number, timeoutMs = 120_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  while ((lastGood.get(device) ?? 0) <= t) {
    if (Date.now() > end) throw new Error(`${device}: no good reading within ${timeoutMs / 1000} s of the unmute`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return lastGood.get(device) as number;
}

/** Asks the OPC UA server process to stop or start; resolves with the time it was done (Date.now() there). */
async function ua(cmd: 'stop' | 'start'): Promise<number> {
  const key = cmd === 'stop' ? 'stopped' : 'up';
  const done = uaServer.next((o) => typeof o[key] === 'number', 60_000);
  uaServer.child.stdin!.write(`${cmd}\n`);
  return (await done)[key] as number;
}

/** Each device: mute, unmute (resolving with the moment it answers again). */
const devices = [
  { name: 'modbus-tcp', device: 'flood-1', mute: async () => tcpSim.silent(true), unmute: async () => (tcpSim.silent(false), Date.now()) },
  { name: 'modbus-rtu', device: 'cabinet-2', mute: async () => rtuLine.silent(true, 2), unmute: async () => (rtuLine.silent(false, 2), Date.now()) },
  { name: 'opcua', device: 'cam-1', mute: async () => void (await ua('stop')), unmute: () => ua('start') },
];
const results = new Map<string, number[]>(devices.map((d) => [d.name, []]));
for (const d of devices) await goodAfter(d.device, 0);
for (let run = 1; run <= runs; run++) {
  await Promise.all(devices.map(async (d) => {
    await d.mute();
    await new Promise((r) => setTimeout(r, muteMs));
    const tUnmute = await d.unmute();
    const s = ((await goodAfter(d.device, tUnmute)) - tUnmute) / 1000;
    results.get(d.name)?.push(s);
    console.log(`run ${run}: ${d.name} muted ${muteMs / 1000} s, first good reading ${s.toFixed(2)} s after the unmute`);
  }));
}
for (const d of [...sb.drivers].reverse()) await d.stop();
for (const l of [...sb.lines].reverse()) await l.stop();
await uaServer.stop();
await tcpSim.stop();
rtuLine.close();
await rtuServer.stop();
rmSync(dir, { recursive: true, force: true });

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
let worst = 0;
for (const [name, xs] of results) {
  const m = median(xs);
  worst = Math.max(worst, m);
  console.log(`${name}: median ${m.toFixed(2)} s over ${xs.length} runs (max ${Math.max(...xs).toFixed(2)} s)${m <= 5 ? '' : ' — above the 5 s target'}`);
}
console.log(`BENCH recovery ${worst.toFixed(2)} s`);
