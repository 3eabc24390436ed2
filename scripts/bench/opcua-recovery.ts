/**
 * bench:opcua-recovery — how long after an OPC UA server restart monitored
 * values flow again. The camera server runs in its own process; a restart
 * kills that process and starts a new one on the same port with the same
 * certificate (--mode service: the server restarts inside its process); the gateway's OPC UA line (node-opcua client,
 * one session, one subscription) detects the loss, reconnects with backoff,
 * creates a new session and re-creates the subscription and its monitored
 * items. Measured per restart: from the moment the restarted server listens
 * to the first good value received (and, for reference, from the moment the
 * old server was gone). Median over the restarts.
 * Last line: BENCH opcua-recovery <seconds> s.
 *
 *   npm run bench:opcua-recovery -- [--restarts 5] [--mode process|service]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Reading } from '../../contract/index.js';
import { PROFILES_DIR, loadProfileFile, type OpcuaProfile } from '../../device-profiles/index.js';
import { silentLogger } from '../../lib/index.js';
import { parseGatewayConfig, type OpcuaBusConfig } from '../../gateway/config.js';
import { OpcuaLine } from '../../gateway/southbound/drivers/opcua-line.js';
import { LineProc } from './line-proc.js';

const { values } = parseArgs({ options: { restarts: { type: 'string', default: '5' }, mode: { type: 'string', default: 'process' } } });
const restarts = Number(values.restarts);
const mode = values.mode === 'service' ? 'service' : 'process';
const dir = mkdtempSync(path.join(tmpdir(), 'bench-opcua-'));
process.env.HOME = dir;

let server = LineProc.start('scripts/bench/opcua-server-proc.ts', [dir]);
const { endpointUrl, port } = (await server.next((o) => o.ready === true, 60_000)) as unknown as { endpointUrl: string; port: number };

// The bus exactly as a configuration with defaults would give it (reconnect backoff included).
const cfg = parseGatewayConfig({
  gatewayId: 'bench', dataDir: path.join(dir, 'gw'), hub: { url: 'mqtt://127.0.0.1:1' },
  buses: [{ id: 'cam', type: 'opcua', endpointUrl }], devices: [],
}, '<bench>');
const bus = cfg.buses[0] as OpcuaBusConfig;
const profile = (await loadProfileFile(path.join(PROFILES_DIR, 'camera-health-opcua.json'))) as OpcuaProfile;
let lastGood = 0;
const line = new OpcuaLine({ config: bus, logger: silentLogger(), onEvent: () => undefined });
line.addDevice({
  device: { id: 'cam-1', bus: 'cam', profile: profile.model, unitId: 1, enabled: true }, profile, logger: silentLogger(), onEvent: () => undefined,
  onReadings: (rs: Reading[]) => {
    if (rs.some((r) => r.quality === 'good')) lastGood = Date.now();
  },
});
await line.start();

async function untilGoodAfter(t: number, timeoutMs = 60_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (lastGood <= t) {
    if (Date.now() > end) throw new Error('values did not come back within 60 s');
    await new Promise((r) => setTimeout(r, 5));
  }
  return lastGood;
}

const fromUp: number[] = [];
const fromGone: number[] = [];
await untilGoodAfter(0);
for (let i = 0; i < restarts; i++) {
  await new Promise((r) => setTimeout(r, 1000));
  let tGone: number;
  let tUp: number;
  if (mode === 'service') {
    // The server application restarts inside its process (stop, start on the same port).
    const stopped = server.next((o) => typeof o.stopped === 'number');
    const up = server.next((o) => typeof o.up === 'number', 60_000);
    server.child.stdin!.write('restart\n');
    tGone = (await stopped).stopped as number;
    tUp = (await up).up as number;
  } else {
    // The server process dies and a new one starts on the same port with the same certificate.
    server.child.kill('SIGKILL');
    await new Promise((r) => server.child.once('exit', r));
    tGone = Date.now();
    server = LineProc.start('scripts/bench/opcua-server-proc.ts', [dir, String(port)]);
    tUp = (await server.next((o) => o.ready === true, 60_000)).up as number;
  }
  const tBack = await untilGoodAfter(tUp);
  fromUp.push((tBack - tUp) / 1000);
  fromGone.push((tBack - tGone) / 1000);
  console.log(`restart ${i + 1}: server down ${((tUp - tGone) / 1000).toFixed(2)} s, values again ${((tBack - tUp) / 1000).toFixed(2)} s after it listened (${((tBack - tGone) / 1000).toFixed(2)} s after it went away)`);
}
await line.stop();
await server.stop();
rmSync(dir, { recursive: true, force: true });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
console.log(`mode ${mode}; sessions: ${line.sessions} (1 + ${restarts} re-subscriptions); median from server gone: ${median(fromGone).toFixed(2)} s`);
console.log(`BENCH opcua-recovery ${median(fromUp).toFixed(2)} s`);
