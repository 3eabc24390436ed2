/**
 * The gateway's remote-configuration pieces without a hub: atomic files,
 * what it boots with (last good over the file; an interrupted version rolled
 * back), and `reconfigure` restarting only what changed (buses, devices,
 * enable/disable, removal) while the rest keeps polling.
 */
import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { configHash, type ConfigDesired } from '../../../contract/index.js';
import { silentLogger } from '../../../lib/index.js';
import { freePort } from '../../../scripts/sim/free-port.js';
import { gatewayConfig, startSim } from '../../../test/support/stack.js';
import { waitFor } from '../../../test/support/wait.js';
import { bootConfig } from '../config-agent.js';
import { ConfigFiles, writeJsonAtomic } from '../config-store.js';
import { parseGatewayConfig } from '../../config.js';
import { loadProfiles, startGateway } from '../../gateway.js';

const desired = (version: number, config: Record<string, unknown>): ConfigDesired => ({
  v: 1, gateway: 'gw-test-01', version, hash: configHash(config, []), pushedAt: 1, pushedBy: 'test', config,
});

t.test('atomic JSON files: complete or absent, no temporary files left', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'x.json');
  await writeJsonAtomic(file, { a: 1 });
  await writeJsonAtomic(file, { a: 2 });
  t.same(JSON.parse(readFileSync(file, 'utf8')), { a: 2 });
  t.same(readdirSync(dir), ['x.json'], 'only the file itself');
});

t.test('boot: last good over the file, interrupted versions and unreadable files', async (t) => {
  const dir = t.testdir();
  const deadHub = await freePort();
  const raw = gatewayConfig(dir, deadHub, 5020);
  const profiles = await loadProfiles();
  const local = parseGatewayConfig(raw, '<test>', { profiles });
  const files = new ConfigFiles(local.dataDir);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(local.dataDir, { recursive: true });
  const log = silentLogger();

  let boot = await bootConfig(local, '<test>', profiles, files, log);
  t.match(boot, { status: 'applied', version: 0, failedVersion: null }, 'nothing pushed yet: the file');
  t.equal(boot.running.config, local);

  const { dataDir: _d, ...pushed } = raw;
  (pushed.devices as Array<Record<string, unknown>>)[1]!.pollIntervalMs = 250;
  await files.writeLastGood({ doc: desired(3, pushed), confirmedAt: 1 });
  boot = await bootConfig(local, '<test>', profiles, files, log);
  t.equal(boot.running.version, 3, 'the last good version runs');
  t.equal(boot.running.config.devices[1]!.pollIntervalMs, 250);
  t.equal(boot.running.config.dataDir, local.dataDir, 'with the gateway\'s own data folder');

  await files.writeDesired({ doc: desired(4, pushed), state: 'confirming', at: 1 });
  boot = await bootConfig(local, '<test>', profiles, files, log);
  t.equal(boot.running.version, 3, 'an unconfirmed version does not run after a restart');
  t.match(boot, { status: 'rolled-back', version: 4, failedVersion: 4, error: { code: 'CONFIG_ERR_INTERRUPTED', phase: 'restart' } });
  t.match((await files.readDesired())!, { state: 'rolled-back', error: { code: 'CONFIG_ERR_INTERRUPTED' } }, 'recorded, so it is not tried again');

  writeFileSync(files.lastGoodFile, '{"doc": {"v":1');
  boot = await bootConfig(local, '<test>', profiles, files, log);
  t.equal(boot.running.version, 0, 'a damaged last-good.json falls back to the file');

  const gone = structuredClone(pushed);
  (gone.devices as Array<Record<string, unknown>>)[0]!.profile = 'model-removed-since';
  await files.writeLastGood({ doc: desired(5, gone), confirmedAt: 1 });
  boot = await bootConfig(local, '<test>', profiles, files, log);
  t.equal(boot.running.version, 0, 'a last good version that no longer resolves falls back to the file');
  t.match(boot, { status: 'rolled-back', version: 5, error: { phase: 'restart', message: /model-removed-since/ } });
});

t.test('reconfigure restarts only what changed', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  const sim2 = await startSim(t);
  const deadHub = await freePort();
  const raw = gatewayConfig(dir, deadHub, sim.port);
  const gw = await startGateway({ config: raw, source: '<test>', logger: silentLogger() });
  t.teardown(() => gw.stop());
  await waitFor(() => gw.devices()['flood-1'] === 'up' && gw.devices()['tsc-1'] === 'up', 'both devices up');
  const parse = (c: Record<string, unknown>) => parseGatewayConfig(c, '<test>', { profiles: new Set(['flood-level-sensor', 'traffic-signal-controller']) });

  // A second bus with one device: nothing else restarts.
  const two = structuredClone(raw);
  (two.buses as unknown[]).push({ id: 'lan2', type: 'modbus-tcp', host: '127.0.0.1', port: sim2.port, timeoutMs: 300 });
  (two.devices as unknown[]).push({ id: 'flood-2', bus: 'lan2', unitId: 1, profile: 'flood-level-sensor', pollIntervalMs: 100 });
  let r = await gw.reconfigure(parse(two));
  t.same(r.restarted, { buses: ['lan2'], devices: ['flood-2'], uplink: false }, 'only the new bus and its device');
  await waitFor(() => gw.devices()['flood-2'] === 'up', 'the new device polls');

  // A bus setting changes: that bus restarts with its devices.
  const three = structuredClone(two);
  (three.buses as Array<Record<string, unknown>>)[0]!.timeoutMs = 400;
  const flood2Polls = gw.pollStats()['flood-2']!.polls;
  r = await gw.reconfigure(parse(three));
  t.same(r.restarted, { buses: ['lan'], devices: ['flood-1', 'tsc-1'], uplink: false }, 'bus lan and its two devices');
  t.ok(gw.pollStats()['flood-2']!.polls >= flood2Polls, 'flood-2 on the other bus was not restarted');

  // Disable one device, remove another, change nothing else.
  const four = structuredClone(three);
  (four.devices as Array<Record<string, unknown>>)[1]!.enabled = false;
  (four.devices as unknown[]).splice(2, 1);
  r = await gw.reconfigure(parse(four));
  t.same(r.restarted.devices.sort(), ['flood-2', 'tsc-1'], 'the disabled and the removed device');
  t.same(r.restarted.buses, [], 'no bus restarted (lan2 stays, now empty)');
  t.same(Object.keys(gw.devices()), ['flood-1'], 'one driver left');

  // Outbox settings wait for a restart; the same configuration again changes nothing.
  const five = structuredClone(four);
  (five.outbox as Record<string, unknown>).maxRows = 50_000;
  r = await gw.reconfigure(parse(five));
  t.same(r, { restarted: { buses: [], devices: [], uplink: false }, pending: ['/outbox'] });
  await waitFor(() => gw.devices()['flood-1'] === 'up', 'flood-1 keeps polling');
});
