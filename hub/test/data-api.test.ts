/**
 * IOC data API on a hub with authentication: alarms raised and cleared from
 * gateway events, acknowledgement (role, audit), downsampled history, the
 * OpenAPI document, /metrics, and the console's static files.
 */
import t from 'tap';
import type { Test } from 'tap';
import { topics } from '../../contract/index.js';
import type { Hub } from '../index.js';
import { provisionGateway } from '../../gateway/identity/provision.js';
import { api, connectOk, mqttUrl, startSecureHub, tempDir } from './support.js';

async function setup(t: Test) {
  const hub = await startSecureHub(t);
  const admin = await hub.identity.createApiToken({ name: 'root', role: 'admin' }, { actor: 'test' });
  const operator = await hub.identity.createApiToken({ name: 'olga', role: 'operator' }, { actor: 'test' });
  const viewer = await hub.identity.createApiToken({ name: 'vic', role: 'viewer' }, { actor: 'test' });
  return { hub, admin: admin.token, operator: operator.token, viewer: viewer.token };
}

/** An MQTT client with a gateway's credential (provisioned with a claim), publishing what a gateway would. */
async function gatewayClient(t: Test, hub: Hub, id: string) {
  const { token } = await hub.identity.createClaim({ site: 'river', gatewayId: id }, { actor: 'test' });
  const { credential } = await provisionGateway({ hubUrl: mqttUrl(hub), claim: token, gatewayId: id, dataDir: tempDir(t), timeoutMs: 5000 });
  const client = await connectOk(t, mqttUrl(hub), { clientId: id, username: credential.username, password: credential.password, reconnectPeriod: 0 });
  let n = 0;
  return {
    event: (e: Record<string, unknown>) => client.publishAsync(topics.events(id), JSON.stringify({ v: 1, id: `e${++n}`, message: 'm', ...e }), { qos: 1 }),
    telemetry: (seq: number, readings: Array<Record<string, unknown>>) => client.publishAsync(topics.telemetry(id), JSON.stringify({ v: 1, epoch: 'ep', seq, readings }), { qos: 1 }),
  };
}

t.test('alarms: raised and cleared from gateway events, listed by state, acknowledged by operators', async (t) => {
  const { hub, operator, viewer } = await setup(t);
  const gw = await gatewayClient(t, hub, 'gw-river');
  const raise = { type: 'alarm.raised', severity: 'critical', device: 'flood-1', point: 'level', message: 'Water level above the 2.0 m flood limit (level 2.1 m is above 2 m)', data: { limit: 'high', threshold: 2, value: 2.1, hysteresis: 0.05 } };
  await gw.event({ ...raise, ts: 1000 });
  await gw.event({ type: 'alarm.raised', severity: 'warning', device: 'cab-1', point: 'temp', ts: 1500, message: 'hot', data: { limit: 'high', threshold: 50, value: 55 } });
  await gw.event({ ...raise, id: 'e1', ts: 1000 }); // a replay of the first: stored once

  let active = (await api(hub, 'GET', '/api/v1/alarms', { token: viewer })).body.items;
  t.match(active, [
    { gateway: 'gw-river', device: 'cab-1', point: 'temp', state: 'active', severity: 'warning', value: 55, threshold: 50, raisedAt: 1500 },
    { gateway: 'gw-river', device: 'flood-1', point: 'level', state: 'active', severity: 'critical', limit: 'high', threshold: 2, value: 2.1, raisedAt: 1000, clearedAt: null, ackedBy: null },
  ], 'active alarms, newest first');
  t.equal(active.length, 2);

  // A second raise while active (the gateway lost its state) refreshes the same alarm.
  await gw.event({ ...raise, ts: 1200, data: { ...raise.data, value: 2.3 } });
  await gw.event({ type: 'alarm.cleared', severity: 'critical', device: 'flood-1', point: 'level', ts: 2000, message: 'cleared: level back to 1.9 m (high limit 2 m)', data: { limit: 'high', value: 1.9 } });
  active = (await api(hub, 'GET', '/api/v1/alarms?state=active', { token: viewer })).body.items;
  t.same(active.map((a: { point: string }) => a.point), ['temp']);
  const cleared = (await api(hub, 'GET', '/api/v1/alarms?state=cleared', { token: viewer })).body.items;
  t.match(cleared, [{ point: 'level', state: 'cleared', value: 2.3, raisedAt: 1000, clearedAt: 2000, clearValue: 1.9, clearMessage: /back to 1.9/ }]);
  t.equal(cleared.length, 1, 'one alarm, not two');
  t.equal((await api(hub, 'GET', '/api/v1/alarms?state=all&device=flood-1', { token: viewer })).body.items.length, 1, 'device filter');

  // A clear whose raise never arrived changes nothing; a late raise older than a clear is stored as cleared.
  await gw.event({ type: 'alarm.cleared', severity: 'warning', device: 'ghost', point: 'x', ts: 3000, message: 'c' });
  await gw.event({ ...raise, ts: 1800 });
  t.equal((await api(hub, 'GET', '/api/v1/alarms?state=active&device=flood-1', { token: viewer })).body.items.length, 0);

  const id = active[0].id;
  t.match(await api(hub, 'POST', `/api/v1/alarms/${id}/ack`, { token: viewer }), { status: 403, body: { error: { code: 'HUB_ERR_FORBIDDEN' } } });
  const acked = await api(hub, 'POST', `/api/v1/alarms/${id}/ack`, { token: operator });
  t.match(acked, { status: 200, body: { id, state: 'active', ackedBy: 'token:' } });
  t.match(acked.body.ackedBy, /\/olga$/);
  t.match(await api(hub, 'POST', '/api/v1/alarms/99999/ack', { token: operator }), { status: 404, body: { error: { code: 'HUB_ERR_NOT_FOUND' } } });
  const audit = (await api(hub, 'GET', '/api/v1/audit?action=alarm.ack', { token: operator })).body.items;
  t.match(audit, [{ action: 'alarm.ack', outcome: 'error' }, { action: 'alarm.ack', outcome: 'ok', actor: /olga/ }, { action: 'alarm.ack', outcome: 'denied' }], 'every acknowledgement attempt is audited');

  t.match(await api(hub, 'GET', '/api/v1/alarms?state=bogus', { token: viewer }), { status: 400, body: { error: { code: 'HUB_ERR_BAD_REQUEST' } } });

  // The events behind the alarms, filtered.
  const ev = async (q: string) => (await api(hub, 'GET', `/api/v1/events?${q}`, { token: viewer })).body.items.map((e: { type: string; ts: number }) => `${e.type}@${e.ts}`);
  t.same(await ev('type=alarm.cleared'), ['alarm.cleared@3000', 'alarm.cleared@2000'], 'type prefix');
  t.same(await ev('type=alarm.&device=flood-1&since=1500'), ['alarm.cleared@2000', 'alarm.raised@1800'], 'device and since');
  t.same(await ev('severity=warning&gateway=gw-river'), ['alarm.cleared@3000', 'alarm.raised@1500'], 'severity');
  t.same(await ev('type=alarm_'), [], "LIKE's _ is literal");
  t.equal((await api(hub, 'GET', '/api/v1/events?type=alarm%25', { token: viewer })).status, 400);
  t.match((await api(hub, 'GET', '/api/v1/events?limit=1', { token: viewer })).body.items[0], { v: 1, gateway: 'gw-river', id: /^e\d+$/, receivedAt: Number });
});

t.test('downsampled history: min, max, avg and count per bucket', async (t) => {
  const { hub, viewer } = await setup(t);
  const gw = await gatewayClient(t, hub, 'gw-ds');
  const t0 = 1_700_000_000_000;
  const readings = [];
  for (let i = 0; i < 60; i++) readings.push({ device: 'd', point: 'level', ts: t0 + i * 1000, value: i, quality: 'good' });
  readings.push({ device: 'd', point: 'level', ts: t0 + 5500, value: 1000, quality: 'bad' }); // not counted
  readings.push({ device: 'd', point: 'flag', ts: t0, value: true, quality: 'good' }, { device: 'd', point: 'flag', ts: t0 + 1000, value: false, quality: 'good' });
  await gw.telemetry(1, readings);
  const q = (s: string) => api(hub, 'GET', `/api/v1/readings/buckets?gateway=gw-ds&device=d&${s}`, { token: viewer });
  const res = await q(`point=level&from=${t0}&to=${t0 + 59_999}&bucketMs=20000`);
  t.equal(res.status, 200);
  t.same(res.body.items, [
    { ts: t0, count: 20, min: 0, max: 19, avg: 9.5 },
    { ts: t0 + 20_000, count: 20, min: 20, max: 39, avg: 29.5 },
    { ts: t0 + 40_000, count: 20, min: 40, max: 59, avg: 49.5 },
  ]);
  t.same((await q(`point=level&from=${t0 + 10_000}&to=${t0 + 14_999}&bucketMs=60000`)).body.items, [{ ts: t0 + 10_000, count: 5, min: 10, max: 14, avg: 12 }], 'buckets start at from');
  t.same((await q(`point=flag&from=${t0}&to=${t0 + 5000}&bucketMs=10000`)).body.items, [{ ts: t0, count: 2, min: 0, max: 1, avg: 0.5 }], 'bools as 0/1');
  t.same((await q(`point=level&from=${t0 + 100_000}&to=${t0 + 200_000}&bucketMs=1000`)).body.items, [], 'empty buckets are left out');
  t.match(await q(`point=level&from=0&to=${t0}&bucketMs=1000`), { status: 400, body: { error: { code: 'HUB_ERR_BAD_REQUEST', message: /at most 10000/ } } });
  t.match(await q(`point=level&from=${t0}&to=${t0 - 1}&bucketMs=1000`), { status: 400, body: { error: { message: /after 'to'/ } } });
  t.match(await q('point=level&bucketMs=0'), { status: 400 });
});

t.test('OpenAPI document from the route schemas', async (t) => {
  const { hub, viewer } = await setup(t);
  t.equal((await api(hub, 'GET', '/api/v1/openapi.json')).status, 401, 'needs a token like every API route');
  const doc = (await api(hub, 'GET', '/api/v1/openapi.json', { token: viewer })).body;
  t.equal(doc.openapi, '3.0.3');
  t.match(doc.info, { title: 'ioc-edge hub API', version: /^\d+\.\d+\.\d+/ });
  for (const p of ['/api/v1/gateways', '/api/v1/readings/latest', '/api/v1/readings', '/api/v1/readings/buckets', '/api/v1/events', '/api/v1/alarms', '/api/v1/alarms/{id}/ack', '/api/v1/stream', '/api/v1/audit', '/metrics']) {
    t.ok(doc.paths[p], `documents ${p}`);
  }
  const buckets = doc.paths['/api/v1/readings/buckets'].get;
  t.same(buckets.parameters.filter((x: { required?: boolean }) => x.required).map((x: { name: string }) => x.name).sort(), ['bucketMs', 'device', 'gateway', 'point']);
  t.ok(doc.paths['/api/v1/alarms'].get.responses['200'].content['application/json'].schema.properties.items, 'response schemas are included');
  t.same(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer', description: "API token from 'ioc-edge token create'" });
  t.notOk(doc.paths['/console/{file}'], 'console files are not part of the API');
});

t.test('/metrics: viewer token, Prometheus text with the hub counters', async (t) => {
  const { hub, viewer } = await setup(t);
  t.equal((await fetch(`http://127.0.0.1:${hub.httpPort}/metrics`)).status, 401);
  const gw = await gatewayClient(t, hub, 'gw-m');
  await gw.telemetry(1, [{ device: 'd', point: 'p', ts: 1, value: 1, quality: 'good' }]);
  await gw.event({ type: 'alarm.raised', severity: 'critical', device: 'd', point: 'p', ts: 5, message: 'x' });
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}/metrics`, { headers: { authorization: `Bearer ${viewer}` } });
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/plain; version=0.0.4/);
  const text = await res.text();
  t.match(text, /\nioc_edge_hub_mqtt_clients_connected [1-9]/);
  t.match(text, /\nioc_edge_hub_ingest_readings_total 1\n/);
  t.match(text, /\nioc_edge_hub_ingest_commit_duration_seconds_count 1\n/);
  t.match(text, /\nioc_edge_hub_mqtt_messages_received_total\{kind="telemetry"\} 1\n/);
  t.match(text, /\nioc_edge_hub_events_total\{severity="critical"\} 1\n/);
  t.match(text, /\nioc_edge_hub_alarms_active\{severity="critical"\} 1\n/);
  t.match(text, /\nioc_edge_hub_gateways\{state="online"\} 1\n/);
  t.match(text, /\nioc_edge_process_resident_memory_bytes \d+/);
});

t.test('console files are public, with a strict content security policy', async (t) => {
  const { hub } = await setup(t);
  const base = `http://127.0.0.1:${hub.httpPort}`;
  const root = await fetch(`${base}/`, { redirect: 'manual' });
  t.equal(root.status, 302);
  t.equal(root.headers.get('location'), '/console/');
  const index = await fetch(`${base}/console/`);
  t.equal(index.status, 200);
  t.match(index.headers.get('content-type'), /^text\/html/);
  t.match(index.headers.get('content-security-policy'), /script-src 'self'/);
  t.match(await index.text(), /<script type="module" src="\/console\/app.client.js">/);
  const js = await fetch(`${base}/console/app.client.js`);
  t.match(js.headers.get('content-type'), /^text\/javascript/);
  const etag = js.headers.get('etag')!;
  t.equal((await fetch(`${base}/console/app.client.js`, { headers: { 'if-none-match': etag } })).status, 304);
  t.equal((await fetch(`${base}/console/console-routes.ts`)).status, 404, 'server code is not served');
  t.equal((await fetch(`${base}/console/..%2Fhub.ts`)).status, 404);
  t.equal((await fetch(`${base}/console/x`, { method: 'POST' })).status, 404);
});
