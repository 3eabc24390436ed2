/**
 * The HTTP API with authentication on: bearer tokens, the role ladder
 * (viewer ⊂ operator ⊂ admin) on existing and new routes, revoked tokens,
 * MQTT accounts made through the API, registry edits, and the audit log of
 * every state-changing call (who, what, when, outcome).
 */
import t from 'tap';
import { topics } from '../../contract/index.js';
import { api, connectOk, mqttUrl, startSecureHub, tryConnect } from './support.js';

t.test('API tokens, roles and audit', async (t) => {
  const hub = await startSecureHub(t);
  const admin = await hub.identity.createApiToken({ name: 'root', role: 'admin' }, { actor: 'test' });
  const op = (await api(hub, 'POST', '/api/v1/tokens', { token: admin.token, body: { name: 'duty-operator', role: 'operator' } })).body as { token: string; id: string };
  const viewer = (await api(hub, 'POST', '/api/v1/tokens', { token: admin.token, body: { name: 'wallboard', role: 'viewer' } })).body as { token: string; id: string };
  t.match(op, { token: /^iet_/ }, 'tokens are created through the API (admin)');

  await t.test('no token, bad token, public health', async (t) => {
    t.match(await api(hub, 'GET', '/api/v1/gateways'), { status: 401, body: { error: { code: 'HUB_ERR_UNAUTHORIZED' } } });
    t.match(await api(hub, 'GET', '/api/v1/readings/latest', { token: 'iet_x.y' }), { status: 401 });
    t.match(await api(hub, 'GET', '/healthz'), { status: 200, body: { status: 'ok' } });
    t.match(await api(hub, 'GET', '/readyz'), { status: 200 });
    t.match(await api(hub, 'GET', '/api/v1/whoami', { token: viewer.token }), { status: 200, body: { actor: `token:${viewer.id}/wallboard`, role: 'viewer' } });
  });

  await t.test('role ladder', async (t) => {
    const cases: Array<[string, string, unknown, { viewer: number; operator: number; admin: number }]> = [
      ['GET', '/api/v1/gateways', undefined, { viewer: 200, operator: 200, admin: 200 }],
      ['GET', '/api/v1/readings/latest', undefined, { viewer: 200, operator: 200, admin: 200 }],
      ['GET', '/api/v1/events', undefined, { viewer: 200, operator: 200, admin: 200 }],
      ['GET', '/api/v1/devices', undefined, { viewer: 200, operator: 200, admin: 200 }],
      ['GET', '/api/v1/claims', undefined, { viewer: 403, operator: 200, admin: 200 }],
      ['POST', '/api/v1/claims', { site: 'north' }, { viewer: 403, operator: 201, admin: 201 }],
      ['GET', '/api/v1/audit', undefined, { viewer: 403, operator: 200, admin: 200 }],
      ['GET', '/api/v1/tokens', undefined, { viewer: 403, operator: 403, admin: 200 }],
      ['POST', '/api/v1/tokens', { name: 'x', role: 'viewer' }, { viewer: 403, operator: 403, admin: 201 }],
      ['GET', '/api/v1/accounts', undefined, { viewer: 403, operator: 403, admin: 200 }],
      ['POST', '/api/v1/gateways/gw-none/revoke', undefined, { viewer: 403, operator: 403, admin: 404 }],
      ['PATCH', '/api/v1/gateways/gw-none', { location: 'x' }, { viewer: 403, operator: 404, admin: 404 }],
    ];
    const tokens = { viewer: viewer.token, operator: op.token, admin: admin.token };
    for (const [method, url, body, want] of cases) {
      for (const role of ['viewer', 'operator', 'admin'] as const) {
        const r = await api(hub, method, url, { token: tokens[role], ...(body !== undefined ? { body } : {}) });
        t.equal(r.status, want[role], `${role} ${method} ${url} → ${want[role]}`);
      }
    }
  });

  await t.test('a revoked token stops working at once', async (t) => {
    const tmp = await hub.identity.createApiToken({ name: 'temp', role: 'admin' }, { actor: 'test' });
    t.equal((await api(hub, 'GET', '/api/v1/tokens', { token: tmp.token })).status, 200);
    t.match(await api(hub, 'POST', `/api/v1/tokens/${tmp.id}/revoke`, { token: admin.token }), { status: 200, body: { revoked: true } });
    t.equal((await api(hub, 'GET', '/api/v1/tokens', { token: tmp.token })).status, 401);
  });

  await t.test('MQTT accounts through the API: a consumer reads telemetry, never publishes; revoking closes it', async (t) => {
    const res = await api(hub, 'POST', '/api/v1/accounts', { token: admin.token, body: { username: 'ioc-core', kind: 'consumer' } });
    t.equal(res.status, 201);
    t.match(await api(hub, 'POST', '/api/v1/accounts', { token: admin.token, body: { username: 'ioc-core', kind: 'consumer' } }), { status: 400 }, 'name taken');
    const url = mqttUrl(hub);
    const consumer = await connectOk(t, url, { clientId: 'ioc-core:1', username: 'ioc-core', password: res.body.password });
    const gwCred = await hub.identity.issueGatewayCredential('gw-1');
    const got = new Promise<string>((resolve) => consumer.on('message', (topic) => resolve(topic)));
    await consumer.subscribeAsync(topics.allTelemetry, { qos: 1 });
    const gw = await connectOk(t, url, { clientId: 'gw-1', ...gwCred });
    await gw.publishAsync(topics.telemetry('gw-1'), JSON.stringify({ v: 1, epoch: 'e', seq: 1, readings: [{ device: 'd', point: 'p', ts: 1, value: 1, quality: 'good' }] }), { qos: 1 });
    t.equal(await got, topics.telemetry('gw-1'));
    const gone = new Promise<void>((resolve) => consumer.once('close', () => resolve()));
    t.equal((await api(hub, 'POST', '/api/v1/accounts/ioc-core/revoke', { token: admin.token })).status, 200);
    await gone;
    t.match(await tryConnect(t, url, { clientId: 'ioc-core:1', username: 'ioc-core', password: res.body.password }), { ok: false, code: 5 });
    t.match(await api(hub, 'POST', '/api/v1/accounts/gw-1/revoke', { token: admin.token }), { status: 404 }, 'gateways are not revoked as accounts');
  });

  await t.test('registry edits by an operator', async (t) => {
    await hub.identity.issueGatewayCredential('gw-2', { site: 'north' });
    const r = await api(hub, 'PATCH', '/api/v1/gateways/gw-2', { token: op.token, body: { location: 'Cabinet 12, Main St' } });
    t.match(r, { status: 200, body: { id: 'gw-2', site: 'north', location: 'Cabinet 12, Main St' } });
    t.match(await api(hub, 'PATCH', '/api/v1/gateways/gw-2', { token: op.token, body: {} }), { status: 400 }, 'empty change refused');
    const list = await api(hub, 'GET', '/api/v1/gateways', { token: viewer.token });
    t.match(list.body.items.find((g: { id: string }) => g.id === 'gw-2'), { id: 'gw-2', online: false, site: 'north', location: 'Cabinet 12, Main St', revoked: false });
  });

  await t.test('audit: every state-changing call, readable by operators', async (t) => {
    const audit = await api(hub, 'GET', '/api/v1/audit?limit=1000', { token: op.token });
    const items = audit.body.items as Array<{ actor: string; action: string; outcome: string; ts: number; target: string | null }>;
    const has = (actor: string, action: string, outcome: string): boolean => items.some((e) => e.actor.startsWith(actor) && e.action === action && e.outcome === outcome);
    t.ok(has(`token:${admin.id}`, 'token.create', 'ok'), 'admin created tokens');
    t.ok(has(`token:${op.id}`, 'claim.create', 'ok'), 'operator created a claim');
    t.ok(has(`token:${viewer.id}`, 'claim.create', 'denied'), 'viewer refused');
    t.ok(has(`token:${admin.id}`, 'token.revoke', 'ok'), 'revocation');
    t.ok(has(`token:${admin.id}`, 'account.create', 'ok') && has(`token:${admin.id}`, 'account.create', 'error'), 'account created, then refused');
    t.ok(has(`token:${op.id}`, 'gateway.update', 'ok'), 'registry edit');
    t.ok(has(`token:${admin.id}`, 'gateway.revoke', 'error'), 'revoke of unknown gateway');
    t.ok(items.every((e) => typeof e.ts === 'number' && e.actor && e.action), 'who, what, when on every row');
    const filtered = await api(hub, 'GET', `/api/v1/audit?actor=${encodeURIComponent(`token:${op.id}/duty-operator`)}&action=claim.`, { token: op.token });
    t.ok(filtered.body.items.length > 0 && filtered.body.items.every((e: { action: string }) => e.action.startsWith('claim.')), 'filter by actor and action prefix');
    t.notOk(JSON.stringify(items).includes(op.token.split('.')[1]!), 'no secret in the audit log');
  });
});
