/** The gateway's stored hub credential (mode 0600), its login resolution, TLS options, inventory and firmware reporting. */
import t from 'tap';
import { chmod, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { silentLogger } from '../../../lib/index.js';
import { parseGatewayConfig } from '../../config.js';
import { credentialPath, loadCredential, saveCredential, type GatewayCredential } from '../credential.js';
import { resolveHubLogin } from '../hub-login.js';
import { hubTlsOptions } from '../hub-tls.js';
import { inventoryOf } from '../../inventory.js';
import { detectFirmware } from '../../system-info.js';

const cred: GatewayCredential = { v: 1, gatewayId: 'gw-1', site: 'north', username: 'gw-1', password: 'p'.repeat(43), hub: 'mqtt://127.0.0.1:1883', issuedAt: 1 };

t.test('saved with mode 0600 even under a permissive umask; widened files are tightened on load', async (t) => {
  const dir = t.testdir();
  const file = credentialPath(dir);
  t.equal(file, path.join(dir, 'hub-credential.json'));
  const old = process.umask(0o000);
  try {
    await saveCredential(file, cred);
  } finally {
    process.umask(old);
  }
  t.equal((await stat(file)).mode & 0o777, 0o600);
  t.same((await loadCredential(file)).credential, cred);
  await chmod(file, 0o644);
  const r = await loadCredential(file);
  t.equal(r.tightened, true, 'reported');
  t.equal((await stat(file)).mode & 0o777, 0o600, 'tightened');
});

t.test('missing, malformed and incomplete files fail with GW_ERR_CREDENTIAL', async (t) => {
  const dir = t.testdir({ 'bad.json': '{oops', 'partial.json': JSON.stringify({ gatewayId: 'gw-1', username: 'gw-1', hub: 'x' }) });
  await t.rejects(loadCredential(path.join(dir, 'none.json')), { code: 'GW_ERR_CREDENTIAL', message: /ioc-edge provision/ });
  await t.rejects(loadCredential(path.join(dir, 'bad.json')), { code: 'GW_ERR_CREDENTIAL', message: /not valid JSON/ });
  await t.rejects(loadCredential(path.join(dir, 'partial.json')), { code: 'GW_ERR_CREDENTIAL', message: /no 'password'/ });
});

t.test('login resolution: config account, credential file, none; mismatches refused', async (t) => {
  const dir = t.testdir();
  const base = { gatewayId: 'gw-1', dataDir: dir, buses: [], devices: [] };
  const cfg = (hub: Record<string, unknown>) => parseGatewayConfig({ ...base, hub: { url: 'mqtt://127.0.0.1:1', ...hub } }, path.join(dir, 'gw.json'));
  t.match(await resolveHubLogin(cfg({ username: 'u', password: 'p' }), silentLogger()), { username: 'u', password: 'p', source: 'config' });
  t.match(await resolveHubLogin(cfg({}), silentLogger()), { source: 'none' });
  await t.rejects(resolveHubLogin(cfg({ credentialFile: 'elsewhere.json' }), silentLogger()), { code: 'GW_ERR_CREDENTIAL', message: /does not exist/ });
  await saveCredential(credentialPath(dir), cred);
  t.match(await resolveHubLogin(cfg({}), silentLogger()), { username: 'gw-1', password: cred.password, source: 'credential-file' });
  await saveCredential(credentialPath(dir), { ...cred, gatewayId: 'gw-2' });
  await t.rejects(resolveHubLogin(cfg({}), silentLogger()), { code: 'GW_ERR_CREDENTIAL', message: /belongs to gateway 'gw-2'/ });
});

t.test('hub TLS options', async (t) => {
  const dir = t.testdir({ 'ca.pem': '-----BEGIN CERTIFICATE-----\n' });
  t.same(await hubTlsOptions('mqtt://127.0.0.1:1883'), {});
  t.same(await hubTlsOptions('mqtts://hub:8883'), { rejectUnauthorized: true });
  t.match(await hubTlsOptions('mqtts://hub:8883', path.join(dir, 'ca.pem')), { rejectUnauthorized: true, ca: Buffer });
  await t.rejects(hubTlsOptions('mqtt://hub:1883', path.join(dir, 'ca.pem')), { code: 'CONFIG_ERR_INVALID', message: /not TLS/ });
  await t.rejects(hubTlsOptions('mqtts://hub:8883', path.join(dir, 'none.pem')), { code: 'CONFIG_ERR_READ' });
});

t.test('inventory and firmware for the registry', async (t) => {
  const dir = t.testdir({ 'os-release': 'NAME="X"\nPRETTY_NAME="CabinetOS 3.1"\n' });
  const cfg = parseGatewayConfig({
    gatewayId: 'gw-1', dataDir: dir, hub: { url: 'mqtt://h:1' },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '10.0.0.5', port: 502 }],
    devices: [{ id: 'flood-1', bus: 'lan', profile: 'flood-level-sensor', unitId: 3 }, { id: 'off', bus: 'lan', profile: 'flood-level-sensor', unitId: 4, enabled: false }],
  }, '<test>');
  t.same(inventoryOf(cfg), [
    { id: 'flood-1', profile: 'flood-level-sensor', bus: 'lan', busType: 'modbus-tcp', address: 'unit 3 @ 10.0.0.5:502', unitId: 3, enabled: true },
    { id: 'off', profile: 'flood-level-sensor', bus: 'lan', busType: 'modbus-tcp', address: 'unit 4 @ 10.0.0.5:502', unitId: 4, enabled: false },
  ]);
  t.match(detectFirmware(path.join(dir, 'os-release')), /^CabinetOS 3\.1 \(/);
  await writeFile(path.join(dir, 'empty'), '');
  t.ok(detectFirmware(path.join(dir, 'empty')).length > 0, 'falls back to the kernel');
  t.ok(detectFirmware(path.join(dir, 'missing')).length <= 128);
});
