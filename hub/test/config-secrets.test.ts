/**
 * Pushed secrets at the hub (issue 13 item 5), against a real hub, real
 * SQLite files and a real MQTT client playing the gateway: readers see no
 * digit derived from a password; the hash cannot test a guess; the gateway
 * still receives the plaintext, also after a hub restart; the registry file
 * holds no plaintext; the data directory is 0700 with files 0600 and the key
 * file 0600; rows stored in clear by an earlier hub are sealed at start.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import t from 'tap';
import type { Test } from 'tap';
import { canonicalJson, configHash, topics, type ConfigDesired } from '../../contract/index.js';
import { silentLogger, SqliteDb } from '../../lib/index.js';
import { startHub, type Hub } from '../index.js';
import { api, startSecureHub, tempDir, TEST_SCRYPT } from './support.js';

const GW = 'gw-sec';
const SECRET = 'correct-horse-battery-42';
const cfg = (password: string, extra: Record<string, unknown> = {}) => ({
  gatewayId: GW,
  hub: { url: 'mqtt://127.0.0.1:1883', username: GW, password },
  buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 5020 }],
  devices: [{ id: 'flood-1', bus: 'lan', unitId: 1, profile: 'flood-level-sensor' }],
  ...extra,
});

/** The retained desired document as the gateway itself receives it. */
async function asGateway(t: Test, hub: Hub, cred: { username: string; password: string }): Promise<ConfigDesired> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: GW, ...cred, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  const got = new Promise<ConfigDesired>((resolve) => client.on('message', (_t, p) => resolve(JSON.parse(p.toString()) as ConfigDesired)));
  await client.subscribeAsync(topics.configDesired(GW), { qos: 1 });
  return got;
}

/** Every file below `dir` with its mode. */
function modes(dir: string): Array<{ file: string; mode: number; dir: boolean }> {
  const out: Array<{ file: string; mode: number; dir: boolean }> = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const st = statSync(p);
      out.push({ file: path.relative(dir, p), mode: st.mode & 0o777, dir: st.isDirectory() });
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** All bytes of the registry database files. */
const registryBytes = (dataDir: string): string =>
  readdirSync(dataDir).filter((f) => f.startsWith('registry.sqlite')).map((f) => readFileSync(path.join(dataDir, f)).toString('latin1')).join('');

t.test('readers see nothing derived from a secret; the gateway gets the plaintext', async (t) => {
  const hub = await startSecureHub(t);
  const op = await hub.identity.createApiToken({ name: 'op', role: 'operator' }, { actor: 'test' });
  const viewer = await hub.identity.createApiToken({ name: 'wall', role: 'viewer' }, { actor: 'test' });
  const cred = await hub.identity.issueGatewayCredential(GW);
  const push = async (password: string, extra?: Record<string, unknown>) => {
    const r = await api(hub, 'POST', `/api/v1/gateways/${GW}/config`, { token: op.token, body: { config: cfg(password, extra) } });
    t.equal(r.status, 201);
    return r.body as { version: number; hash: string };
  };
  const v1 = await push(SECRET);
  await push('another-secret-77');
  await push('another-secret-77', { devices: [{ id: 'flood-1', bus: 'lan', unitId: 2, profile: 'flood-level-sensor' }] });

  const reads = await Promise.all([
    `/api/v1/gateways/${GW}/config`, `/api/v1/gateways/${GW}/config/versions`, `/api/v1/gateways/${GW}/config/versions/1`,
    `/api/v1/gateways/${GW}/config/versions/2`, `/api/v1/gateways/${GW}/config/diff?from=1&to=3`, '/api/v1/config/fleet',
  ].map((u) => api(hub, 'GET', u, { token: viewer.token })));
  t.ok(reads.every((r) => r.status === 200), 'a viewer reads every configuration view');
  const seen = JSON.stringify(reads.map((r) => r.body));
  for (const s of [SECRET, 'another-secret-77']) {
    const digest = createHash('sha256').update(s).digest('hex');
    t.notOk(seen.includes(s), 'no plaintext');
    t.notOk(seen.includes(digest.slice(0, 8)), 'not the 8 hex digits of its SHA-256 shown before');
  }
  t.equal(reads[2]!.body.config.hub.password, 'redacted:v1');
  t.same(reads[4]!.body.changes.filter((c: { label: string }) => c.label === 'config.hub.password').map((c: { from: string; to: string }) => [c.from, c.to]), [['redacted:v1', 'redacted:v2']], 'a changed password shows in the diff as the version it was set in');
  t.equal(reads[0]!.body.document.config.hub.password, 'redacted:v2', 'version 3 kept the password of version 2');

  // The hash a viewer reads cannot test a guess: it is the same whatever the password.
  const doc1 = reads[2]!.body as ConfigDesired;
  const withGuess = (p: string) => configHash({ ...doc1.config, hub: { ...(doc1.config.hub as object), password: p } }, doc1.profiles ?? []);
  t.equal(withGuess(SECRET), v1.hash, 'the real password gives the published hash');
  t.equal(withGuess('wrong guess'), v1.hash, 'and so does any guess');
  const plainHash = `sha256:${createHash('sha256').update(canonicalJson({ config: cfg(SECRET), profiles: [] })).digest('hex')}`;
  t.not(v1.hash, plainHash, 'it is not the hash over the plaintext any more');

  const received = await asGateway(t, hub, cred);
  t.equal(received.version, 3);
  t.equal((received.config.hub as { password: string }).password, 'another-secret-77', 'the gateway receives the plaintext (its own retained topic only)');
  t.equal(configHash(received.config, received.profiles ?? []), received.hash, 'and a hash it can check');
  t.equal(received.hash, reads[0]!.body.desired.hash, 'the same hash the API shows');

  // Audit rows of the pushes carry the masked hash only.
  const audit = await api(hub, 'GET', '/api/v1/audit?action=config.push', { token: op.token });
  t.notOk(JSON.stringify(audit.body).includes(plainHash.slice(7, 15)));
});

t.test('at rest: sealed in the registry file, key file 0600, data directory private; survives a restart', async (t) => {
  const dataDir = path.join(tempDir(t, 'ioc-edge-hub-'), 'hub');
  const start = () => startHub({ dataDir, logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'required', scrypt: TEST_SCRYPT } });
  let hub = await start();
  const op = await hub.identity.createApiToken({ name: 'op', role: 'operator' }, { actor: 'test' });
  const cred = await hub.identity.issueGatewayCredential(GW);
  t.equal((await api(hub, 'POST', `/api/v1/gateways/${GW}/config`, { token: op.token, body: { config: cfg(SECRET) } })).status, 201);
  const img = await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/firmware/images`, { method: 'PUT', headers: { authorization: `Bearer ${op.token}`, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(1000, 1) });
  t.equal(img.status, 201, 'an image is stored');
  t.notOk(registryBytes(dataDir).includes(SECRET), 'the registry files (database, WAL) do not hold the password while the hub runs');
  await hub.stop();
  t.notOk(registryBytes(dataDir).includes(SECRET), 'nor after it stopped');

  const all = modes(dataDir);
  t.equal(statSync(dataDir).mode & 0o777, 0o700, 'data directory 0700');
  t.ok(all.some((e) => e.file === 'secrets.key'), 'a key file was created in the data directory');
  t.ok(all.some((e) => e.file.startsWith('firmware') && !e.dir && e.file.includes('sha256')), 'the image is there');
  t.same(all.filter((e) => (e.dir ? e.mode !== 0o700 : e.mode !== 0o600)), [], 'every folder 0700, every file 0600 (SQLite files, key, images)');

  // An earlier version left the directory open: it is tightened at start.
  chmodSync(dataDir, 0o755);
  chmodSync(path.join(dataDir, 'registry.sqlite'), 0o644);
  chmodSync(path.join(dataDir, 'secrets.key'), 0o644);
  writeFileSync(path.join(dataDir, 'operator-notes.txt'), 'not the hub\'s', { mode: 0o644 });
  chmodSync(path.join(dataDir, 'operator-notes.txt'), 0o644);
  hub = await start();
  t.teardown(() => hub.stop());
  t.equal(statSync(dataDir).mode & 0o777, 0o700);
  t.equal(statSync(path.join(dataDir, 'registry.sqlite')).mode & 0o777, 0o600);
  t.equal(statSync(path.join(dataDir, 'secrets.key')).mode & 0o777, 0o600);
  t.equal(statSync(path.join(dataDir, 'operator-notes.txt')).mode & 0o777, 0o644, 'a file that is not the hub\'s is left alone');
  const received = await asGateway(t, hub, cred);
  t.equal((received.config.hub as { password: string }).password, SECRET, 'after a restart the gateway still receives the plaintext');
});

t.test('a configurable key file; a wrong key refuses to open, readers are unaffected', async (t) => {
  const root = tempDir(t, 'ioc-edge-hub-');
  const dataDir = path.join(root, 'hub');
  const keyFile = path.join(root, 'keys', 'hub-secrets.key');
  const start = () => startHub({ dataDir, secretsKeyFile: keyFile, logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'required', scrypt: TEST_SCRYPT } });
  let hub = await start();
  const op = await hub.identity.createApiToken({ name: 'op', role: 'operator' }, { actor: 'test' });
  t.equal((await api(hub, 'POST', `/api/v1/gateways/${GW}/config`, { token: op.token, body: { config: cfg(SECRET) } })).status, 201);
  await hub.stop();
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'created where configured, 0600');
  t.throws(() => statSync(path.join(dataDir, 'secrets.key')), 'and not in the data directory');

  writeFileSync(keyFile, 'too short\n', { mode: 0o600 });
  await t.rejects(start(), { code: 'HUB_ERR_SECRET_KEY', message: /hub-secrets\.key: does not hold a base64 key of 32 bytes/ }, 'a damaged key file stops the start with a clear error');

  writeFileSync(keyFile, `${Buffer.alloc(32, 9).toString('base64')}\n`, { mode: 0o600 });
  hub = await start();
  t.teardown(() => hub.stop());
  const read = await api(hub, 'GET', `/api/v1/gateways/${GW}/config`, { token: op.token });
  t.equal(read.body.document.config.hub.password, 'redacted:v1', 'with another key, readers still see the redacted document');
  const again = await api(hub, 'POST', `/api/v1/gateways/${GW}/config`, { token: op.token, body: { config: cfg(SECRET) } });
  t.equal(again.status, 201, 'and a new push works (its secrets count as set anew)');
  t.equal((await api(hub, 'GET', `/api/v1/gateways/${GW}/config`, { token: op.token })).body.document.config.hub.password, 'redacted:v2');
});

t.test('versions stored in clear by an earlier hub are sealed, re-hashed and scrubbed at start', async (t) => {
  const dataDir = path.join(tempDir(t, 'ioc-edge-hub-'), 'hub');
  mkdirSync(dataDir, { recursive: true });
  const start = () => startHub({ dataDir, logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'required', scrypt: TEST_SCRYPT } });
  let hub = await start();
  const viewer = await hub.identity.createApiToken({ name: 'wall', role: 'viewer' }, { actor: 'test' });
  await hub.stop();
  // What an earlier hub stored: the document in clear, hashed over the plaintext, and the gateway's report of that hash.
  const oldHash = `sha256:${createHash('sha256').update(canonicalJson({ config: cfg(SECRET), profiles: [] })).digest('hex')}`;
  const db = await SqliteDb.open(path.join(dataDir, 'registry.sqlite'));
  for (const version of [1, 2]) {
    const doc = { v: 1, gateway: GW, version, hash: oldHash, pushedAt: 1, pushedBy: 'old', confirmWindowS: 30, config: cfg(SECRET) };
    await db.run('INSERT INTO config_versions(gateway, version, hash, doc, pushed_at, pushed_by, note) VALUES (?,?,?,?,?,?,?)', [GW, version, oldHash, JSON.stringify(doc), 1, 'old', null]);
  }
  await db.run('INSERT INTO config_reported(gateway, doc, received_at) VALUES (?,?,?)', [GW, JSON.stringify({ v: 1, ts: 1, running: { version: 2, hash: oldHash, since: 1 }, status: 'applied', version: 2 }), 1]);
  await db.close();
  t.ok(registryBytes(dataDir).includes(SECRET), 'the old row holds the plaintext');

  hub = await start();
  t.teardown(() => hub.stop());
  t.notOk(registryBytes(dataDir).includes(SECRET), 'sealed, and no copy left in free pages or the WAL');
  const read = await api(hub, 'GET', `/api/v1/gateways/${GW}/config`, { token: viewer.token });
  t.equal(read.body.document.config.hub.password, 'redacted:v1', 'unchanged in version 2: marked as set in version 1');
  t.equal(read.body.desired.hash, configHash(cfg(SECRET)), 're-hashed with secrets masked');
  t.equal(read.body.reported.running.hash, read.body.desired.hash, "the gateway's reported hash follows");
  t.notOk(JSON.stringify(read.body).includes(oldHash.slice(7, 15)), 'the old hash is not shown');
  t.equal(read.body.state, 'in-sync');
});

t.test('a password inside a URL is refused, not stored or echoed', async (t) => {
  const hub = await startSecureHub(t);
  const op = await hub.identity.createApiToken({ name: 'op', role: 'operator' }, { actor: 'test' });
  const config = { ...cfg(SECRET), hub: { url: 'mqtts://gw-sec:hunter2-secret@hub.example:8883' } };
  const r = await api(hub, 'POST', `/api/v1/gateways/${GW}/config`, { token: op.token, body: { config } });
  t.match(r, { status: 400, body: { error: { code: 'CONFIG_ERR_INVALID', context: { problems: [{ pointer: '/config/hub/url', message: /password inside a URL/ }] } } } });
  t.notOk(JSON.stringify(r.body).includes('hunter2'), 'the answer does not repeat it');
  t.same((await api(hub, 'GET', `/api/v1/gateways/${GW}/config/versions`, { token: op.token })).body.items, [], 'nothing stored');
  const audit = await api(hub, 'GET', '/api/v1/audit?action=config.push', { token: op.token });
  t.notOk(JSON.stringify(audit.body).includes('hunter2'), 'nor audited');
  const plainUser = await api(hub, 'POST', `/api/v1/gateways/${GW}/config`, { token: op.token, body: { config: { ...cfg(SECRET), hub: { url: 'mqtts://hub.example:8883', username: GW, password: SECRET } } } });
  t.equal(plainUser.status, 201, 'the same settings with the password where it belongs are accepted');
});
