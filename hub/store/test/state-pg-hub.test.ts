/**
 * A hub on PostgreSQL keeps its identities there (hub/store/state.ts): a
 * gateway provisioned by claim on one hub process still authenticates after
 * the hub restarts on an empty data directory, an API token made on the
 * first is valid on the second, the audit chain goes on, and the first
 * hub wrote no SQLite file. Skipped
 * with one line where no PostgreSQL answers (a failure under CI=true).
 */
import t from 'tap';
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { provisionGateway } from '../../../gateway/identity/provision.js';
import { runCli } from '../../../test/support/cli.js';
import { PG_URL, pgClient, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { api, mqttUrl, startSecureHub, tempDir, tryConnect } from '../../test/support.js';

const skip = await skipUnlessPostgres();

t.test('hub on postgres://: a gateway provisioned by claim authenticates after a restart with no local state', { skip }, async (t) => {
  const schema = pgSchema(t);
  const store = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const dirA = path.join(tempDir(t, 'ioc-edge-pgid-'), 'hub');
  const hubA = await startSecureHub(t, { store, dataDir: dirA });
  const admin = await hubA.identity.createApiToken({ name: 'admin', role: 'admin' }, { actor: 'test' });
  const claim = await hubA.identity.createClaim({ site: 'north-depot' }, { actor: 'test' });
  const res = await provisionGateway({ hubUrl: mqttUrl(hubA), dataDir: tempDir(t, 'ioc-edge-pgid-gw-'), claim: claim.token, gatewayId: 'gw-pg', location: 'Cabinet 9', timeoutMs: 10_000 });
  const cred = { clientId: 'gw-pg', username: res.credential.username, password: res.credential.password };
  t.match(await tryConnect(t, mqttUrl(hubA), cred), { ok: true }, 'the new credential works on the hub that issued it');
  await hubA.stop();

  // Nothing of it in SQLite: the first hub made no SQLite file at all (telemetry and all state are in the schema).
  t.same(readdirSync(dirA).filter((f) => f.includes('.sqlite')), [], 'no SQLite file in the data directory');
  const pg = await pgClient(t, schema);
  t.equal(Number((await pg.query("SELECT count(*) AS n FROM principals WHERE username = 'gw-pg'")).rows[0].n), 1, 'the account is in PostgreSQL');

  // A restart on a fresh data directory: everything must come from PostgreSQL.
  const hubB = await startSecureHub(t, { store, dataDir: path.join(tempDir(t, 'ioc-edge-pgid-'), 'hub') });
  t.match(await tryConnect(t, mqttUrl(hubB), cred), { ok: true }, 'the gateway still authenticates');
  t.match(await tryConnect(t, mqttUrl(hubB), { ...cred, password: 'not-the-secret' }), { ok: false, code: 4 }, 'a wrong secret is still refused');
  const g = await api(hubB, 'GET', '/api/v1/gateways/gw-pg', { token: admin.token });
  t.match(g, { status: 200, body: { id: 'gw-pg', site: 'north-depot', location: 'Cabinet 9', registeredBy: `claim:${claim.claim.id}` } }, 'the API token made before the restart works; the registry row is there');
  const claims = await api(hubB, 'GET', '/api/v1/claims?all=true', { token: admin.token });
  t.match(claims.body.items.find((c: { id: string }) => c.id === claim.claim.id), { state: 'used', usedBy: 'gw-pg' });
  const v = await hubB.audit.verify();
  t.ok(v.ok, 'the audit chain holds across the restart');
  t.ok((await hubB.audit.list({ action: 'gateway.provision' })).some((e) => e.target === 'gateway:gw-pg' && e.outcome === 'ok'), 'the provisioning was audited');

  await hubB.identity.revokeGateway('gw-pg', { actor: 'test' });
  t.match(await tryConnect(t, mqttUrl(hubB), cred), { ok: false, code: 5 }, 'a revocation in PostgreSQL is honoured');
});

t.test('token create --data-dir --store postgres://…: the first admin token goes where a PostgreSQL hub looks for it', { skip }, async (t) => {
  const schema = pgSchema(t);
  const store = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const dataDir = path.join(tempDir(t, 'ioc-edge-pgtok-'), 'hub');
  const made = await runCli(['token', 'create', '--data-dir', dataDir, '--store', store, '--name', 'ops', '--role', 'admin']);
  t.equal(made.code, 0, made.err);
  const token = /token \(shown once\): (\S+)/.exec(made.out)?.[1];
  t.ok(token, 'the token is shown once');
  const hub = await startSecureHub(t, { store, dataDir: path.join(tempDir(t, 'ioc-edge-pgtok-'), 'hub') });
  t.match(await api(hub, 'GET', '/api/v1/tokens', { token }), { status: 200, body: { items: [{ name: 'ops', role: 'admin' }] } }, 'a hub on that store (another data directory) accepts it');
  t.match((await hub.audit.list({ action: 'token.create' }))[0], { actor: /^local:/, outcome: 'ok' }, 'its creation is audited in PostgreSQL');
  const bad = await runCli(['token', 'create', '--data-dir', dataDir, '--store', 'mysql://x', '--name', 'ops', '--role', 'admin']);
  t.match(bad, { code: 1, err: /neither postgres:\/\/… nor sqlite:DIR/ }, 'a store that is not one is refused with the reason');
});
