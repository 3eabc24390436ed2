/**
 * Identity end to end, the way people do it: the operator makes a token and a
 * claim with the CLI, the technician provisions the gateway with the CLI and
 * adds a field device with the CLI, the gateway runs with the stored
 * credential against a hub with authentication on, and the hub's registry
 * shows site, versions and field devices. Then the operator revokes it.
 */
import t from 'tap';
import { Writable } from 'node:stream';
import { stat, writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { startGateway } from '../gateway/index.js';
import { gatewayCommands } from '../gateway/cli/index.js';
import { hubCommands } from '../hub/cli/index.js';
import { silentLogger } from '../lib/index.js';
import { api, startSecureHub, tempDir } from '../hub/test/support.js';
import { gatewayConfig, startSim } from './support/stack.js';
import { waitFor } from './support/wait.js';

/** Runs `ioc-edge <words> args` in-process; returns exit code and output. */
async function cli(line: string[]): Promise<{ code: number; out: string; err: string }> {
  const all = [...gatewayCommands, ...hubCommands].sort((a, b) => b.name.split(' ').length - a.name.split(' ').length);
  const cmd = all.find((c) => c.name.split(' ').every((w, i) => line[i] === w));
  if (!cmd) throw new Error(`no command ${line.join(' ')}`);
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void): Writable => new Writable({ write(chunk, _e, cb) { f(String(chunk)); cb(); } });
  const code = await cmd.run(line.slice(cmd.name.split(' ').length), { out: sink((s) => (out += s)), err: sink((s) => (err += s)) });
  return { code, out, err };
}

t.test('operator and technician CLI: token, claim, provision, device add, registry, revoke', async (t) => {
  const dir = tempDir(t);
  const sim = await startSim(t);
  const hub = await startSecureHub(t, { dataDir: path.join(dir, 'hub') });
  const apiUrl = `http://127.0.0.1:${hub.httpPort}`;

  // Operator: the first admin token straight into the hub's registry (hub machine), then a claim over the API.
  const tok = await cli(['token', 'create', '--data-dir', path.join(dir, 'hub'), '--name', 'ops', '--role', 'admin']);
  t.equal(tok.code, 0, tok.err);
  const admin = /token \(shown once\): (\S+)/.exec(tok.out)![1]!;
  const cl = await cli(['claim', 'create', '--api', apiUrl, '--token', admin, '--site', 'riverside', '--ttl', '2h']);
  t.equal(cl.code, 0, cl.err);
  t.match(cl.out, /claim \w+ for site riverside, expires/);
  const claim = /works once\): (\S+)/.exec(cl.out)![1]!;
  t.match((await cli(['claim', 'list', '--api', apiUrl, '--token', admin])).out, /active\s+site=riverside/);
  t.equal((await cli(['claim', 'create', '--api', apiUrl, '--token', 'iet_bad.token', '--site', 'x'])).code, 1, 'a bad token fails clearly');

  // Technician: a configuration with only the hub URL, then provision with the claim.
  const cfgFile = path.join(dir, 'gateway.json');
  const cfg = gatewayConfig(dir, hub.mqttPort, sim.port);
  await writeFile(cfgFile, JSON.stringify(cfg, null, 2));
  const prov = await cli(['provision', '--config', cfgFile, '--claim', claim.toUpperCase(), '--location', 'Cabinet 12, Riverside Rd']);
  t.equal(prov.code, 0, prov.err);
  t.match(prov.out, /1\. claim \w+ for gateway gw-test-01[\s\S]*4\. asking the hub to register gw-test-01[\s\S]*6\. credential saved to .*hub-credential\.json \(mode 0600\)[\s\S]*8\. gateway gw-test-01 is provisioned[\s\S]*OK: gateway gw-test-01 is registered at site riverside/);
  const credFile = path.join(dir, 'gw', 'hub-credential.json');
  t.equal((await stat(credFile)).mode & 0o777, 0o600, 'credential stored with mode 0600');
  const again = await cli(['provision', '--config', cfgFile, '--claim', claim]);
  t.equal(again.code, 1);
  t.match(again.err, /FAILED at step 'request': .*already used.*HUB_ERR_CLAIM_USED/);

  // The gateway runs with the stored credential: telemetry arrives; the registry fills in.
  const fileCfg = JSON.parse(await readFile(cfgFile, 'utf8')) as Record<string, unknown>;
  let gw = await startGateway({ config: fileCfg, source: cfgFile, logger: silentLogger() });
  t.teardown(() => gw.stop());
  await waitFor(async () => (await api(hub, 'GET', '/api/v1/readings/latest?gateway=gw-test-01', { token: admin })).body.items.length > 0, 'telemetry from the provisioned gateway');
  const view = await waitFor(async () => {
    const r = await api(hub, 'GET', '/api/v1/gateways/gw-test-01', { token: admin });
    return r.body.fieldDevices?.length === 2 ? r.body : null;
  }, 'the registry to list the field devices');
  t.match(view, { id: 'gw-test-01', online: true, site: 'riverside', location: 'Cabinet 12, Riverside Rd', version: /\d+\.\d+\.\d+/, revoked: false });
  t.type(view.firmware, 'string');
  t.match(view.fieldDevices, [
    { gateway: 'gw-test-01', id: 'flood-1', profile: 'flood-level-sensor', bus: 'lan', busType: 'modbus-tcp', unitId: 1, address: `unit 1 @ 127.0.0.1:${sim.port}` },
    { id: 'tsc-1', profile: 'traffic-signal-controller', unitId: 2 },
  ]);

  // Technician adds a field device; checked like the gateway checks; after a restart it is in the hub's registry.
  const bad = await cli(['device', 'add', '--config', cfgFile, '--id', 'flood-2', '--bus', 'lan', '--profile', 'no-such-model', '--unit-id', '3']);
  t.equal(bad.code, 1);
  t.match(bad.err, /unknown device profile 'no-such-model'/);
  const taken = await cli(['device', 'add', '--config', cfgFile, '--id', 'flood-2', '--bus', 'lan', '--profile', 'flood-level-sensor', '--unit-id', '1']);
  t.match(taken.err, /unit id 1 on bus 'lan' is already used/);
  const add = await cli(['device', 'add', '--config', cfgFile, '--id', 'flood-2', '--bus', 'lan', '--profile', 'flood-level-sensor', '--unit-id', '3']);
  t.equal(add.code, 0, add.err);
  t.match(add.out, /added device flood-2 \(flood-level-sensor, unit 3 on bus lan\)/);
  await gw.stop();
  gw = await startGateway({ config: JSON.parse(await readFile(cfgFile, 'utf8')), source: cfgFile, logger: silentLogger() });
  const devices = await waitFor(async () => {
    const r = await api(hub, 'GET', '/api/v1/devices?gateway=gw-test-01', { token: admin });
    return r.body.items.some((d: { id: string }) => d.id === 'flood-2') ? r.body.items : null;
  }, 'flood-2 in the hub registry');
  t.match(devices.find((d: { id: string }) => d.id === 'flood-2'), { profile: 'flood-level-sensor', bus: 'lan', unitId: 3 });

  // Operator revokes the gateway: disconnected now, kept out afterwards.
  const rev = await cli(['gateway', 'revoke', 'gw-test-01', '--api', apiUrl, '--token', admin]);
  t.equal(rev.code, 0, rev.err);
  await waitFor(() => !gw.uplink.connected, 'the gateway to be disconnected');
  const refusals = hub.mqttAuth.counters.loginsFailed;
  await waitFor(() => hub.mqttAuth.counters.loginsFailed > refusals, 'its reconnect to be refused', 10_000);
  t.equal(gw.uplink.connected, false, 'still out');
  t.match((await api(hub, 'GET', '/api/v1/gateways/gw-test-01', { token: admin })).body, { revoked: true, online: false });
});

t.test('a gateway configured with a claim provisions itself at start', async (t) => {
  const dir = tempDir(t);
  const sim = await startSim(t);
  const hub = await startSecureHub(t);
  const { token } = await hub.identity.createClaim({ site: 'harbour', gatewayId: 'gw-test-01' }, { actor: 'test' });
  const claimFile = path.join(dir, 'claim.txt');
  await writeFile(claimFile, `${token}\n`);
  const cfg = gatewayConfig(dir, hub.mqttPort, sim.port);
  (cfg.hub as Record<string, unknown>).claimFile = claimFile;
  const gw = await startGateway({ config: cfg, source: '<test>', logger: silentLogger() });
  t.teardown(() => gw.stop());
  await waitFor(() => gw.uplink.connected, 'the gateway to log in with its new credential');
  t.equal((await stat(path.join(dir, 'gw', 'hub-credential.json'))).mode & 0o777, 0o600);
  const admin = await hub.identity.createApiToken({ name: 'a', role: 'admin' }, { actor: 'test' });
  t.match((await api(hub, 'GET', '/api/v1/gateways/gw-test-01', { token: admin.token })).body, { site: 'harbour', online: true });
  // A second start uses the stored credential (the claim is spent).
  await gw.stop();
  const gw2 = await startGateway({ config: cfg, source: '<test>', logger: silentLogger() });
  t.teardown(() => gw2.stop());
  await waitFor(() => gw2.uplink.connected, 'restart with the stored credential');
  t.pass('restarted without the claim');
});

t.test('a gateway without credentials is refused by a hub with authentication', async (t) => {
  const dir = tempDir(t);
  const sim = await startSim(t);
  const hub = await startSecureHub(t);
  const gw = await startGateway({ config: gatewayConfig(dir, hub.mqttPort, sim.port), source: '<test>', logger: silentLogger() });
  t.teardown(() => gw.stop());
  await waitFor(() => hub.mqttAuth.counters.loginsFailed > 0, 'the anonymous login to be refused');
  t.equal(gw.uplink.connected, false);
  t.equal((await stat(path.join(dir, 'gw', 'outbox.sqlite'))).isFile(), true, 'it keeps buffering in its outbox');
});
