/**
 * The API's failed-login limiter and token lifetime against a real hub
 * (issue 13 items 6 and 7): a request without a token is not a failure;
 * failures count per (source, token id) with a looser per-source bucket, so a
 * guesser cannot lock a correct token out of a shared address; the trusted
 * proxy setting decides which address that is; revoking a token ends its
 * open live streams at once.
 */
import t from 'tap';
import { openSse } from '../../test/support/sse.js';
import { api, startSecureHub } from './support.js';

/** GET with extra headers; status only. */
async function get(port: number, url: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${url}`, { headers });
  await res.arrayBuffer();
  return res.status;
}

t.test('no token is not a guess; failures count per (source, token id)', async (t) => {
  const hub = await startSecureHub(t, { auth: { rateLimit: { maxFailures: 3, windowMs: 60_000, lockoutMs: 60_000 } } });
  const viewer = await hub.identity.createApiToken({ name: 'wallboard', role: 'viewer' }, { actor: 'test' });
  const other = await hub.identity.createApiToken({ name: 'duty', role: 'viewer' }, { actor: 'test' });
  const fresh = await hub.identity.createApiToken({ name: 'spare', role: 'viewer' }, { actor: 'test' });

  // The console's signed-out page asks without a token on every load.
  for (let i = 0; i < 40; i++) t.equal((await api(hub, 'GET', '/api/v1/gateways')).status, 401);
  t.equal((await api(hub, 'GET', '/api/v1/gateways', { token: viewer.token })).status, 200, 'forty requests without a token lock nobody out');

  // A guesser aims at the wallboard's token id from the same address.
  const forged = `iet_${viewer.id}.not-the-secret`;
  for (let i = 0; i < 3; i++) t.equal((await api(hub, 'GET', '/api/v1/gateways', { token: forged })).status, 401);
  t.match(await api(hub, 'GET', '/api/v1/gateways', { token: forged }), { status: 429, body: { error: { code: 'HUB_ERR_RATE_LIMITED', message: new RegExp(`token id ${viewer.id}`) } } }, 'the guessed pair is locked out');
  t.equal((await api(hub, 'GET', '/api/v1/gateways', { token: viewer.token })).status, 200, 'the correct token of that id still works from the same address');
  t.equal((await api(hub, 'GET', '/api/v1/gateways', { token: other.token })).status, 200, 'another token from the same address is not affected');

  // Spraying random ids fills the per-source bucket (10 × 3 failures in all), not the pairs.
  let locked = 0;
  for (let i = 0; i < 40 && locked === 0; i++) {
    const id = `zz${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}`;
    const s = (await api(hub, 'GET', '/api/v1/gateways', { token: `iet_${id}.x` })).status;
    if (s === 429) locked = i;
  }
  t.ok(locked >= 20, `the source is locked out after about 30 failures in all (locked at attempt ${locked + 1} of the spray)`);
  t.equal((await api(hub, 'GET', '/api/v1/gateways', { token: fresh.token })).status, 429, 'a token never seen before waits while its source is locked (no scrypt for it)');
  t.equal((await api(hub, 'GET', '/api/v1/gateways', { token: viewer.token })).status, 200, 'a token verified before is still recognised');
  t.equal((await api(hub, 'GET', '/api/v1/gateways', { token: other.token })).status, 200);
});

t.test('trusted proxy: X-Forwarded-For is believed only from a listed address', async (t) => {
  await t.test('with 127.0.0.1 listed, the forwarded client is the source', async (t) => {
    const hub = await startSecureHub(t, { trustedProxies: ['127.0.0.1/32'], auth: { rateLimit: { maxFailures: 3, windowMs: 60_000, lockoutMs: 60_000 } } });
    const op = await hub.identity.createApiToken({ name: 'duty', role: 'operator' }, { actor: 'test' });
    const forged = { authorization: `Bearer iet_${op.id}.wrong` };
    for (let i = 0; i < 3; i++) t.equal(await get(hub.httpPort, '/api/v1/gateways', { ...forged, 'x-forwarded-for': '203.0.113.5' }), 401);
    t.equal(await get(hub.httpPort, '/api/v1/gateways', { ...forged, 'x-forwarded-for': '203.0.113.5' }), 429, 'the guessing client is locked out');
    t.equal(await get(hub.httpPort, '/api/v1/gateways', { ...forged, 'x-forwarded-for': '203.0.113.6' }), 401, 'another client behind the same proxy is not');
    const res = await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/claims`, {
      method: 'POST', headers: { authorization: `Bearer ${op.token}`, 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.7, 203.0.113.9' }, body: JSON.stringify({ site: 'north' }),
    });
    t.equal(res.status, 201);
    const audit = await api(hub, 'GET', '/api/v1/audit?action=claim.create', { token: op.token });
    t.equal(audit.body.items[0]?.source, '203.0.113.9', 'the audit log names the nearest untrusted address');
  });

  await t.test('without the setting, X-Forwarded-For is ignored', async (t) => {
    const hub = await startSecureHub(t, { auth: { rateLimit: { maxFailures: 3, windowMs: 60_000, lockoutMs: 60_000 } } });
    const op = await hub.identity.createApiToken({ name: 'duty', role: 'operator' }, { actor: 'test' });
    t.equal((await api(hub, 'GET', '/api/v1/whoami', { token: op.token })).status, 200, 'the operator signed in before the guessing');
    const forged = { authorization: `Bearer iet_${op.id}.wrong` };
    for (let i = 0; i < 3; i++) t.equal(await get(hub.httpPort, '/api/v1/gateways', { ...forged, 'x-forwarded-for': `203.0.113.${i + 10}` }), 401);
    t.equal(await get(hub.httpPort, '/api/v1/gateways', { ...forged, 'x-forwarded-for': '203.0.113.99' }), 429, 'a client cannot pick a new address per attempt');
    await api(hub, 'POST', '/api/v1/claims', { token: op.token, body: { site: 'north' } });
    const audit = await api(hub, 'GET', '/api/v1/audit?action=claim.create', { token: op.token });
    t.equal(audit.body.items[0]?.source, '127.0.0.1');
  });
});

t.test('revoking a token ends its open live streams at once', async (t) => {
  const hub = await startSecureHub(t);
  const admin = await hub.identity.createApiToken({ name: 'root', role: 'admin' }, { actor: 'test' });
  const wall = await hub.identity.createApiToken({ name: 'wallboard', role: 'viewer' }, { actor: 'test' });
  const other = await hub.identity.createApiToken({ name: 'ioc', role: 'viewer' }, { actor: 'test' });
  const url = `http://127.0.0.1:${hub.httpPort}/api/v1/stream`;
  const a = await openSse(url, { token: wall.token });
  const b = await openSse(`${url}?types=events`, { token: wall.token });
  const c = await openSse(url, { token: other.token });
  t.teardown(() => [a, b, c].forEach((s) => s.close()));
  t.equal(hub.live.clientCount, 3);

  t.match(await api(hub, 'POST', `/api/v1/tokens/${wall.id}/revoke`, { token: admin.token }), { status: 200 });
  await Promise.all([a.ended, b.ended]);
  t.match(a.messages.at(-1), { event: 'closed', data: { reason: 'token revoked' } }, 'the stream says why it ends');
  t.match(b.messages.at(-1), { event: 'closed' });
  t.equal(hub.live.clientCount, 1, 'the other token keeps its stream');
  t.notOk(c.messages.some((m) => m.event === 'closed'));
  t.equal((await get(hub.httpPort, '/api/v1/stream', { authorization: `Bearer ${wall.token}` })), 401, 'and cannot open a new one');
});
