/**
 * TLS for MQTT and the API from certificate files; plain TCP only on
 * loopback or when explicitly allowed; configurations that would expose a
 * plain or unauthenticated hub are refused at start.
 */
import t from 'tap';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../lib/index.js';
import { provisionGateway } from '../../gateway/identity/provision.js';
import { startHub } from '../index.js';
import { startSecureHub, tempDir, tryConnect } from './support.js';
import { makeTestPki, opensslMissing } from './tls-certs.js';

function httpsGet(port: number, url: string, ca: Buffer, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: url, ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

t.test('MQTT and API over TLS with certificates from files', { skip: opensslMissing() }, async (t) => {
  const pki = makeTestPki(t.testdir());
  const ca = readFileSync(pki.caFile);
  const hub = await startSecureHub(t, { tls: { certFile: pki.certFile, keyFile: pki.keyFile } });
  t.equal(hub.tls, true);
  const url = `mqtts://127.0.0.1:${hub.mqttPort}`;
  const cred = await hub.identity.issueGatewayCredential('gw-1');
  t.match(await tryConnect(t, url, { clientId: 'gw-1', ...cred, ca, rejectUnauthorized: true }), { ok: true }, 'verified TLS + credentials');
  const untrusted = await tryConnect(t, url, { clientId: 'gw-1', ...cred, rejectUnauthorized: true });
  t.match(untrusted, { ok: false, message: /self[- ]signed|unable to (get|verify)/i }, 'a client that does not trust the CA refuses the hub');
  t.match(await tryConnect(t, `mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: 'gw-1', ...cred, connectTimeout: 1500 }), { ok: false }, 'plain MQTT to the TLS port fails');

  const admin = await hub.identity.createApiToken({ name: 'ops', role: 'admin' }, { actor: 'test' });
  const r = await httpsGet(hub.httpPort, '/api/v1/gateways', ca, admin.token);
  t.equal(r.status, 200, 'API over HTTPS');

  // A gateway provisions over mqtts, verifying the hub against the CA file.
  const { token } = await hub.identity.createClaim({ site: 'north' }, { actor: 'test' });
  const steps: string[] = [];
  const res = await provisionGateway({ hubUrl: url, claim: token, gatewayId: 'gw-tls', dataDir: tempDir(t), caFile: pki.caFile, timeoutMs: 5000, onStep: (s) => steps.push(s.message) });
  t.equal(res.credential.gatewayId, 'gw-tls');
  t.match(steps.join('\n'), /TLS, verifying the hub certificate/);
  await t.rejects(provisionGateway({ hubUrl: url, claim: token, gatewayId: 'gw-x', dataDir: tempDir(t), timeoutMs: 5000 }), { code: 'GW_ERR_PROVISION', message: /self[- ]signed|unable to/i }, 'without the CA the gateway does not talk to the hub');
});

t.test('unsafe configurations are refused at start', { skip: opensslMissing() }, async (t) => {
  const dir = t.testdir();
  const pki = makeTestPki(dir);
  const base = { logger: silentLogger(), mqttPort: 0, httpPort: 0 };
  await t.rejects(startHub({ ...base, dataDir: path.join(dir, 'a'), mqttHost: '0.0.0.0' }), { code: 'HUB_ERR_INSECURE_CONFIG', message: /plain TCP/ }, 'plain on a network address');
  await t.rejects(startHub({ ...base, dataDir: path.join(dir, 'b'), mqttHost: '0.0.0.0', allowPlain: true, auth: { mode: 'open' } }), { code: 'HUB_ERR_INSECURE_CONFIG', message: /without authentication/ }, 'open on a network address');
  await t.rejects(startHub({ ...base, dataDir: path.join(dir, 'c'), tls: { certFile: path.join(dir, 'missing.pem'), keyFile: pki.keyFile } }), { code: 'HUB_ERR_TLS_CONFIG', message: /missing\.pem/ });
  await t.rejects(startHub({ ...base, dataDir: path.join(dir, 'd'), tls: { certFile: pki.certFile, keyFile: pki.otherKeyFile } }), { code: 'HUB_ERR_TLS_CONFIG', message: /cannot be used together/ });
  const allowed = await startHub({ ...base, dataDir: path.join(dir, 'e'), mqttHost: '0.0.0.0', allowPlain: true });
  t.teardown(() => allowed.stop());
  t.equal(allowed.authMode, 'required', 'a network-reachable hub requires authentication by default');
  const local = await startHub({ ...base, dataDir: path.join(dir, 'f') });
  t.teardown(() => local.stop());
  t.equal(local.authMode, 'open', 'a loopback-only plain hub defaults to open (tests, demo), with a warning');
});
