/**
 * Firmware signing keys handed over at provisioning (issue 7): a hub with
 * authentication and firmware keys provisions a gateway from a claim; the
 * gateway stores the keys with its credential (0600) and, with no keys in
 * its own configuration, accepts firmware signed by them — and still refuses
 * firmware signed by any other key.
 */
import t from 'tap';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { startGateway } from '../gateway/index.js';
import { generateSigningKey } from '../firmware-bridge/index.js';
import { silentLogger } from '../lib/index.js';
import { startSecureHub, tempDir } from '../hub/test/support.js';
import { ModbusFileDeviceSim } from '../scripts/sim/modbus-file-device.js';
import { buildSimImage } from '../scripts/sim/sim-firmware.js';
import { PROFILE_DIR, rolloutState, sign } from './support/fw-stack.js';
import { waitFor } from './support/wait.js';

t.test('the keys of the provisioning answer are trusted by the gateway', async (t) => {
  const dir = tempDir(t);
  const release = generateSigningKey();
  const hub = await startSecureHub(t, { dataDir: path.join(dir, 'hub'), firmware: { trustedKeys: [release.publicKey] } });
  const by = { actor: 'test' };
  const { token } = await hub.identity.createClaim({ site: 'riverside' }, by);
  const op = await hub.identity.createApiToken({ name: 'release', role: 'operator' }, by);
  const device = new ModbusFileDeviceSim();
  await device.start();
  t.teardown(() => device.stop());
  const gw = await startGateway({
    source: '<test>', logger: silentLogger(),
    config: {
      gatewayId: 'gw-prov-fw', dataDir: path.join(dir, 'gw'), profileDirs: [PROFILE_DIR],
      hub: { url: `mqtt://127.0.0.1:${hub.mqttPort}`, claim: token, reconnectMinMs: 100, reconnectMaxMs: 300 },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: device.port, timeoutMs: 500 }],
      devices: [{ id: 'fc21-1', bus: 'lan', unitId: 1, profile: 'sim-fc21-device', pollIntervalMs: 200 }],
      uplink: { statusIntervalS: 1 },
    },
  });
  t.teardown(() => gw.stop());
  const cred = JSON.parse(await readFile(path.join(dir, 'gw', 'hub-credential.json'), 'utf8')) as { firmwareKeys?: string[] };
  t.same(cred.firmwareKeys, [release.publicKey], 'stored with the credential');
  t.equal(gw.config.firmware, undefined, 'no keys in the gateway configuration');
  await waitFor(async () => (await hub.registry.listDevices({ gateway: 'gw-prov-fw' })).length === 1, 'registry');

  const call = async <T>(method: string, url: string, body?: unknown): Promise<T> => {
    const raw = Buffer.isBuffer(body);
    const res = await fetch(`http://127.0.0.1:${hub.httpPort}${url}`, { method, headers: { authorization: `Bearer ${op.token}`, ...(body !== undefined ? { 'content-type': raw ? 'application/octet-stream' : 'application/json' } : {}) }, ...(body !== undefined ? { body: raw ? body : JSON.stringify(body) } : {}) });
    return (await res.json()) as T;
  };
  const image = buildSimImage('7.0.0', 20_000);
  await call('PUT', '/api/v1/firmware/images', image);
  const stranger = generateSigningKey();
  const refused = await call<{ error: { code: string } }>('POST', '/api/v1/firmware/manifests', sign(stranger, image, 'sim-fc21-device', '7.0.0'));
  t.equal(refused.error.code, 'FW_ERR_UNTRUSTED_KEY', 'the hub checks uploads against the same keys');
  const m = await call<{ id: string }>('POST', '/api/v1/firmware/manifests', sign(release, image, 'sim-fc21-device', '7.0.0'));
  const r = await call<{ id: string }>('POST', '/api/v1/firmware/rollouts', { manifest: m.id });
  const done = await waitFor(async () => {
    const res = await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/firmware/rollouts/${r.id}`, { headers: { authorization: `Bearer ${op.token}` } });
    const v = (await res.json()) as Awaited<ReturnType<typeof rolloutState>>;
    return v.state === 'completed' ? v : null;
  }, 'rollout completed', 20_000);
  t.match(done.jobs, [{ status: 'updated', version: '7.0.0' }]);
  t.equal(device.version, '7.0.0');
});
