/**
 * Bad input at the broker: wrong passwords and brute force, client ids that
 * impersonate another identity, MQTT 3.1.1 rules Aedes lets through,
 * oversized packets, revoked gateways, offline detection by keepalive and
 * last will — all against a real hub over loopback.
 */
import t from 'tap';
import { once } from 'node:events';
import { topics } from '../../contract/index.js';
import { waitFor } from '../../test/support/wait.js';
import { api, closed, connectOk, connectPacket, exchange, mqttUrl, rawSocket, remainingLength, startSecureHub, tryConnect } from './support.js';

const CONNACK = (rc: number): Buffer => Buffer.from([0x20, 0x02, 0x00, rc]);

t.test('wrong, unknown and missing credentials get CONNACK 4', async (t) => {
  const hub = await startSecureHub(t);
  const url = mqttUrl(hub);
  const gw = await hub.identity.issueGatewayCredential('gw-1');
  t.match(await tryConnect(t, url, { clientId: 'gw-1', username: 'gw-1', password: 'not-the-secret' }), { ok: false, code: 4 }, 'wrong password');
  t.match(await tryConnect(t, url, { clientId: 'gw-9', username: 'gw-9', password: gw.password }), { ok: false, code: 4 }, 'unknown account');
  t.match(await tryConnect(t, url, { clientId: 'gw-1' }), { ok: false, code: 4 }, 'no credentials');
  t.match(await tryConnect(t, url, { clientId: 'gw-1', username: 'gw-1', password: gw.password }), { ok: true }, 'right password');
  t.equal(hub.mqttAuth.counters.loginsFailed, 3);
});

t.test('brute force: an address is locked out after repeated failures, then let in again', async (t) => {
  let now = 1_800_000_000_000;
  const hub = await startSecureHub(t, { clock: () => now, auth: { rateLimit: { maxFailures: 5, windowMs: 60_000, lockoutMs: 60_000 } } });
  const url = mqttUrl(hub);
  const gw = await hub.identity.issueGatewayCredential('gw-1');
  for (let i = 0; i < 5; i++) t.match(await tryConnect(t, url, { clientId: 'gw-1', username: 'gw-1', password: `guess-${i}` }), { ok: false, code: 4 }, `guess ${i + 1} refused`);
  t.match(await tryConnect(t, url, { clientId: 'gw-1', username: 'gw-1', password: gw.password }), { ok: false, code: 5 }, 'locked out: even the right secret is refused');
  t.equal(hub.mqttAuth.counters.lockedOut, 1, 'refused before the secret was checked');
  // The API shares the lockout policy, per (address, token id) (its own counter; api-limits.test.ts has the rest).
  for (let i = 0; i < 5; i++) t.equal((await api(hub, 'GET', '/api/v1/gateways', { token: `iet_nope.x${i}` })).status, 401);
  const locked = await api(hub, 'GET', '/api/v1/gateways', { token: 'iet_nope.x' });
  t.match(locked, { status: 429, body: { error: { code: 'HUB_ERR_RATE_LIMITED' } } }, 'API answers 429 while locked out');
  now += 61_000;
  t.match(await tryConnect(t, url, { clientId: 'gw-1', username: 'gw-1', password: gw.password }), { ok: true }, 'after the lockout the gateway gets in');
});

t.test('a client id that impersonates another identity is refused (CONNACK 2) without disturbing the real one', async (t) => {
  const hub = await startSecureHub(t);
  const url = mqttUrl(hub);
  const a = await hub.identity.issueGatewayCredential('gw-a');
  const b = await hub.identity.issueGatewayCredential('gw-b');
  const consumer = await hub.identity.createAccount({ username: 'ioc-dash', kind: 'consumer' }, { actor: 'test' });
  const victim = await connectOk(t, url, { clientId: 'gw-b', ...b });
  let victimClosed = false;
  victim.on('close', () => (victimClosed = true));
  t.match(await tryConnect(t, url, { clientId: 'gw-b', ...a }), { ok: false, code: 2 }, "gw-a's credentials with gw-b's client id");
  t.match(await tryConnect(t, url, { clientId: 'gw-b', username: consumer.username, password: consumer.password }), { ok: false, code: 2 }, "a consumer with a gateway's client id");
  t.match(await tryConnect(t, url, { clientId: 'ioc-dash-evil', username: consumer.username, password: consumer.password }), { ok: false, code: 2 }, 'a consumer id must be the account or account:suffix');
  t.match(await tryConnect(t, url, { clientId: 'ioc-dash:wall-1', username: consumer.username, password: consumer.password }), { ok: true });
  await victim.publishAsync(topics.events('gw-b'), JSON.stringify({ v: 1, id: 'still-here', ts: Date.now(), type: 'test.alive', severity: 'info', message: 'm' }), { qos: 1 });
  t.equal(victimClosed, false, 'the real gw-b was not taken over');
  t.equal(hub.broker.isConnected('gw-b', null), true);
});

t.test('MQTT 3.1.1 §3.1.3.1: zero-length client id with CleanSession 0 gets CONNACK 0x02 and is closed', async (t) => {
  for (const mode of ['required', 'open'] as const) {
    const hub = await startSecureHub(t, { auth: { mode } });
    const s = await rawSocket(t, hub.mqttPort);
    t.same(await exchange(s, connectPacket({ clientId: '', clean: false })), CONNACK(2), `${mode}: identifier rejected`);
    if (!s.closed) await once(s, 'close');
    t.pass(`${mode}: connection closed`);
    const s2 = await rawSocket(t, hub.mqttPort);
    t.same(await exchange(s2, connectPacket({ clientId: '', clean: true })), CONNACK(mode === 'open' ? 0 : 4), `${mode}: with CleanSession 1 the empty id is ${mode === 'open' ? 'accepted' : 'still unauthenticated'}`);
  }
});

t.test('oversized packets close the connection before the hub buffers them', async (t) => {
  const hub = await startSecureHub(t, { mqttMaxPacketBytes: 64 * 1024 });
  const url = mqttUrl(hub);
  const cred = await hub.identity.issueGatewayCredential('gw-1');
  const gw = await connectOk(t, url, { clientId: 'gw-1', ...cred });
  let acked = false;
  gw.publish(topics.telemetry('gw-1'), Buffer.alloc(100 * 1024, 0x20), { qos: 1 }, (err) => (acked = !err));
  await closed(gw);
  t.equal(acked, false, 'no PUBACK for the oversized publish');
  t.equal(hub.broker.counters.oversized, 1);

  // Before authentication the limit is 64 KiB for CONNECT: a header announcing 1 MB is cut off at once.
  const s = await rawSocket(t, hub.mqttPort);
  const r = await exchange(s, Buffer.concat([Buffer.from([0x10]), remainingLength(1_000_000), Buffer.alloc(1024)]));
  t.equal(r, 'closed', 'oversized CONNECT: closed without an answer');
  t.equal(hub.broker.counters.oversized, 2);
  // A malformed remaining length (five continuation bytes) is refused too (MQTT 3.1.1 §2.2.3).
  const s2 = await rawSocket(t, hub.mqttPort);
  t.equal(await exchange(s2, Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01])), 'closed', 'malformed length: closed');

  const gw2 = await connectOk(t, url, { clientId: 'gw-1', ...cred });
  await gw2.publishAsync(topics.events('gw-1'), JSON.stringify({ v: 1, id: 'after', ts: Date.now(), type: 'test.after', severity: 'info', message: 'm' }), { qos: 1 });
  t.pass('the hub keeps serving normal packets');
});

t.test('a revoked gateway is disconnected at once and kept out', async (t) => {
  const hub = await startSecureHub(t);
  const url = mqttUrl(hub);
  const admin = await hub.identity.createApiToken({ name: 'ops', role: 'admin' }, { actor: 'test' });
  const cred = await hub.identity.issueGatewayCredential('gw-1', { site: 'north' });
  const gw = await connectOk(t, url, { clientId: 'gw-1', ...cred });
  const gone = closed(gw);
  const res = await api(hub, 'POST', '/api/v1/gateways/gw-1/revoke', { token: admin.token });
  t.match(res, { status: 200, body: { id: 'gw-1', revoked: true } });
  await gone;
  t.pass('connection closed by the revocation');
  t.match(await tryConnect(t, url, { clientId: 'gw-1', ...cred }), { ok: false, code: 5 }, 'CONNACK 5 afterwards');
  const failedBefore = hub.mqttAuth.counters.lockedOut;
  for (let i = 0; i < 12; i++) await tryConnect(t, url, { clientId: 'gw-1', ...cred });
  t.equal(hub.mqttAuth.counters.lockedOut, failedBefore, "a revoked gateway's retries do not lock out its address (the secret was right)");
  const list = await api(hub, 'GET', '/api/v1/gateways/gw-1', { token: admin.token });
  t.match(list.body, { id: 'gw-1', revoked: true, online: false, site: 'north' });
  const audit = await api(hub, 'GET', '/api/v1/audit?action=gateway.revoke', { token: admin.token });
  t.match(audit.body.items, [{ action: 'gateway.revoke', target: 'gateway:gw-1', actor: 'token:' + admin.id + '/ops', outcome: 'ok' }]);
});

t.test('offline from keepalive and from the last will; a will into another namespace is refused', async (t) => {
  const hub = await startSecureHub(t);
  const url = mqttUrl(hub);
  const a = await hub.identity.issueGatewayCredential('gw-a');
  const b = await hub.identity.issueGatewayCredential('gw-b');
  // Keepalive: a client that goes silent is dropped after 1.5 × keepalive (MQTT 3.1.1 §3.1.2.10).
  const offline = new Promise<void>((resolve) => hub.events.on('gateway', (e) => e.gateway === 'gw-a' && e.online === false && resolve()));
  const s = await rawSocket(t, hub.mqttPort);
  t.same(await exchange(s, connectPacket({ clientId: 'gw-a', clean: true, keepalive: 1, username: 'gw-a', password: a.password })), CONNACK(0));
  await offline;
  t.pass('silent gateway marked offline by keepalive');

  // Last will: an abrupt disconnect publishes the offline status, which passes the ACL.
  const willStatus = (gw: string): { topic: string; payload: Buffer; qos: 1; retain: true } => ({ topic: topics.status(gw), payload: Buffer.from(JSON.stringify({ v: 1, state: 'offline', ts: Date.now(), version: `will-of-${gw}` })), qos: 1, retain: true });
  const gotWill = new Promise<string | undefined>((resolve) => hub.events.on('gateway', (e) => e.status?.state === 'offline' && resolve(`${e.gateway}:${e.status.version ?? ''}`)));
  const gwB = await connectOk(t, url, { clientId: 'gw-b', ...b, will: willStatus('gw-b') });
  gwB.stream.destroy();
  t.equal(await gotWill, 'gw-b:will-of-gw-b', "gw-b's will marks it offline");

  // A will aimed at another gateway's status is refused when it fires.
  const denied = hub.mqttAuth.counters.publishDenied;
  const gwA = await connectOk(t, url, { clientId: 'gw-a', ...a, will: willStatus('gw-b') });
  gwA.stream.destroy();
  await waitFor(() => hub.mqttAuth.counters.publishDenied > denied, 'the forged will to be refused');
  t.pass('forged will refused');
});

t.test('malformed firmware reports from a gateway are dropped; the hub keeps serving (it threw into the broker before)', async (t) => {
  const hub = await startSecureHub(t);
  const url = mqttUrl(hub);
  const cred = await hub.identity.issueGatewayCredential('gw-1');
  const gw = await connectOk(t, url, { clientId: 'gw-1', username: 'gw-1', password: cred.password });
  for (const sub of ['state', 'request', 'sync']) {
    for (const payload of ['{"not":"a report"}', 'not json', '']) await gw.publishAsync(`ioc/v1/gw/gw-1/fw/${sub}`, payload, { qos: 1 });
  }
  t.equal(gw.connected, true, 'every one acknowledged, the connection kept');
  await gw.publishAsync(topics.telemetry('gw-1'), JSON.stringify({ v: 1, epoch: 'e', seq: 1, readings: [{ device: 'd', point: 'p', ts: Date.now(), value: 7, quality: 'good' }] }), { qos: 1 });
  t.match(await hub.store.latest({ gateway: 'gw-1' }), [{ device: 'd', point: 'p', value: 7 }], 'telemetry still committed after them');
});
