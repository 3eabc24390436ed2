/**
 * Issue 13 item 2: one gateway's event must never break the alarms API, hide
 * another gateway's alarm or stop acknowledgement — across a restart — and a
 * damaged row already in the SQLite file (data of an older version) must not
 * either. Real hub (Aedes, SQLite, fastify) with authentication, real
 * mqtt.js gateways provisioned with claims.
 */
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { topics } from '../../contract/index.js';
import { provisionGateway } from '../../gateway/identity/provision.js';
import { silentLogger, SqliteDb } from '../../lib/index.js';
import { startHub, type Hub } from '../index.js';
import { api, connectOk, mqttUrl, tempDir, TEST_SCRYPT } from './support.js';

async function hubAt(t: Test, dataDir: string): Promise<Hub> {
  const hub = await startHub({ dataDir, logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'required', scrypt: TEST_SCRYPT } });
  t.teardown(() => hub.stop());
  return hub;
}

async function gateway(t: Test, hub: Hub, id: string) {
  const { token } = await hub.identity.createClaim({ site: 'river', gatewayId: id }, { actor: 'test' });
  const { credential } = await provisionGateway({ hubUrl: mqttUrl(hub), claim: token, gatewayId: id, dataDir: tempDir(t), timeoutMs: 5000 });
  const client = await connectOk(t, mqttUrl(hub), { clientId: id, username: credential.username, password: credential.password, reconnectPeriod: 0 });
  return (e: Record<string, unknown>) => client.publishAsync(topics.events(id), JSON.stringify({ v: 1, message: 'm', ts: Date.now(), ...e }), { qos: 1 });
}

t.test('a hostile gateway cannot poison the alarms API; a real alarm from another gateway shows and is acknowledged, across a restart', async (t) => {
  const dataDir = path.join(tempDir(t, 'ioc-edge-poison-'), 'hub');
  const hub = await hubAt(t, dataDir);
  const admin = (await hub.identity.createApiToken({ name: 'root', role: 'admin' }, { actor: 'test' })).token;
  const evil = await gateway(t, hub, 'gw-evil');
  const river = await gateway(t, hub, 'gw-river');

  // The exact attack of the issue, and its variants: object/array values, huge strings, nested data, no point.
  const attacks: Array<Record<string, unknown>> = [
    { id: 'a1', type: 'alarm.raised', severity: 'critical', device: 'd1', point: 'p1', data: { limit: 'high', value: { x: 1 }, threshold: 2 } },
    { id: 'a2', type: 'alarm.raised', severity: 'critical', device: 'd1', point: 'p2', data: { limit: 'high', value: 3, threshold: { nested: [1, 2] } } },
    { id: 'a3', type: 'alarm.raised', severity: 'warning', device: 'd1', point: 'p3', data: { value: [1, 2, 3] } },
    { id: 'a4', type: 'alarm.raised', severity: 'warning', device: 'd1', point: 'p4', data: { value: 'x'.repeat(5000) } },
    { id: 'a5', type: 'alarm.cleared', severity: 'warning', device: 'd1', point: 'p1', data: { value: { x: 1 } } },
    { id: 'a6', type: 'alarm.raised', severity: 'warning', data: { value: 1 } },
    { id: 'a7', type: 'alarm.raised', severity: 'warning', device: 'd1', point: 'p5', data: { limit: 'sideways', value: 1 } },
    { id: 'a8', type: 'device.down', severity: 'warning', device: 'd1', data: { detail: { deep: { deeper: true } } } },
    { id: 'a9', type: 'driver.fault', severity: 'warning', device: 'd1', data: { frame: 'y'.repeat(2000) } },
  ];
  for (const a of attacks) await evil(a);
  await river({ id: 'r1', type: 'alarm.raised', severity: 'critical', device: 'flood-1', point: 'level', message: 'Water level above the 2.0 m flood limit', data: { limit: 'high', threshold: 2, value: 2.4, hysteresis: 0.05, unit: 'm' } });

  const check = async (h: Hub, label: string) => {
    const res = await api(h, 'GET', '/api/v1/alarms', { token: admin });
    t.equal(res.status, 200, `${label}: GET /api/v1/alarms answers 200`);
    t.match(res.body.items, [{ gateway: 'gw-river', device: 'flood-1', point: 'level', severity: 'critical', value: 2.4, threshold: 2, state: 'active' }], `${label}: the real alarm shows`);
    t.equal(res.body.items.length, 1, `${label}: no alarm from the malformed events`);
    const fleet = await api(h, 'GET', '/api/v1/gateways', { token: admin });
    t.equal(fleet.status, 200, `${label}: the fleet answers`);
    const events = await api(h, 'GET', '/api/v1/events?limit=100', { token: admin });
    t.equal(events.status, 200, `${label}: events answer`);
    t.notOk(events.body.items.some((e: { id: string }) => /^a\d$/.test(e.id)), `${label}: no malformed event stored`);
    return res.body.items[0];
  };
  const alarm = await check(hub, 'before restart');

  // Each attack is quarantined with the reason naming the field.
  const q = (await api(hub, 'GET', '/api/v1/quarantine?limit=100', { token: admin })).body.items.filter((r: { gateway: string }) => r.gateway === 'gw-evil');
  t.equal(q.length, attacks.length, 'every malformed event quarantined');
  const errors = q.map((r: { error: string }) => r.error).join('\n');
  for (const field of ['/data/value', '/data/threshold', "required property 'device'", '/data/limit', '/data/detail', '/data/frame']) t.match(errors, field, `quarantine reason names ${field}`);
  // At most one ingest.quarantined event per gateway per minute (the rest counted in the next).
  const notes = (await api(hub, 'GET', '/api/v1/events?type=ingest.quarantined&gateway=gw-evil', { token: admin })).body.items;
  t.equal(notes.length, 1, 'one ingest.quarantined event for the burst');

  const operator = (await hub.identity.createApiToken({ name: 'olga', role: 'operator' }, { actor: 'test' })).token;
  const acked = await api(hub, 'POST', `/api/v1/alarms/${alarm.id}/ack`, { token: operator });
  t.match(acked, { status: 200, body: { id: alarm.id, ackedBy: /olga/ } }, 'acknowledging works');

  await hub.stop();
  const again = await hubAt(t, dataDir);
  const after = await check(again, 'after restart');
  t.match(after, { id: alarm.id, ackedBy: /olga/ }, 'the acknowledgement survived');
});

t.test('damaged rows already in the SQLite file (older versions, by hand) never fail an answer nor hide other rows', async (t) => {
  const dataDir = path.join(tempDir(t, 'ioc-edge-poison-'), 'hub');
  let hub = await hubAt(t, dataDir);
  const admin = (await hub.identity.createApiToken({ name: 'root', role: 'admin' }, { actor: 'test' })).token;
  const river = await gateway(t, hub, 'gw-river');
  await river({ id: 'r1', type: 'alarm.raised', severity: 'critical', device: 'flood-1', point: 'level', data: { limit: 'high', threshold: 2, value: 2.4 } });
  await river({ id: 'r2', type: 'device.down', severity: 'warning', device: 'flood-1', message: 'no answer' });
  await hub.store.commitBatch({ gateway: 'gw-river', epoch: 'e', seq: 1, historical: false, readings: [{ device: 'flood-1', point: 'level', ts: Date.now(), value: 1.5, quality: 'good' }] });
  await hub.stop();

  // Plant what an older version (or a hand) could have left, straight into the file.
  const db = await SqliteDb.open(path.join(dataDir, 'hub.sqlite'));
  const now = Date.now();
  await db.run(`INSERT INTO alarms(gateway, device, point, severity, alarm_limit, threshold, value, message, raised_at, raised_event, received_at) VALUES
    ('gw-old', 'd', 'p1', 'critical', 'high', '{"x":1}', '[1,2]', 'object value', ?, 'o1', ?),
    ('gw-old', 'd', 'p2', 'bogus', NULL, 'not json', '"${'z'.repeat(400)}"', 'bad severity, unparsable threshold, long string', ?, 'o2', ?),
    ('gw-old', 'd', 'p3', 'warning', NULL, NULL, '1e999', 'text time', 'yesterday', 'o3', ?)`, [now - 1, now, now - 2, now, now]);
  await db.run(`INSERT INTO events(gateway, id, ts, received_at, type, severity, device, point, code, message, data) VALUES
    ('gw-old', 'x1', ?, ?, 'alarm.raised', 'critical', 'd', 'p1', NULL, 'm', '{"value":{"x":1}}'),
    ('gw-old', 'x2', ?, ?, 'device.down', 'fatal', NULL, NULL, NULL, 'm', 'not json'),
    ('gw-old', 'x3', ?, ?, 'device.down', 'warning', NULL, NULL, NULL, 'm', '[1,2]')`, [now, now, now, now, now, now]);
  await db.run("INSERT INTO series(gateway, device, point) VALUES ('gw-old', 'd', 'v1'), ('gw-old', 'd', 'v2')");
  await db.run("INSERT INTO latest(series, ts, value, flags) SELECT id, ?, X'00ff', 0 FROM series WHERE point = 'v1'", [now]);
  await db.run("INSERT INTO latest(series, ts, value, flags) SELECT id, ?, 'text where a number belongs', 0 FROM series WHERE point = 'v2'", [now]);
  await db.run("INSERT INTO readings(series, ts, value, flags) SELECT id, ?, 'text', 0 FROM series WHERE point = 'v1'", [now]);
  await db.run("INSERT INTO gateways(id, online, first_seen, last_seen, status) VALUES ('gw-old', 0, 1, 2, '{not json'), ('gw-arr', 0, 1, 2, '[1]')");
  await db.close();

  hub = await hubAt(t, dataDir);
  const alarms = await api(hub, 'GET', '/api/v1/alarms?state=all', { token: admin });
  t.equal(alarms.status, 200, 'alarms answer 200');
  const byPoint = new Map(alarms.body.items.map((a: { point: string }) => [a.point, a]));
  t.match(byPoint.get('level'), { gateway: 'gw-river', value: 2.4, threshold: 2 }, 'the sound alarm is there');
  t.notOk((byPoint.get('level') as { malformed?: unknown }).malformed, 'a sound row has no malformed marker');
  t.match(byPoint.get('p1'), { value: null, threshold: null, malformed: ['threshold', 'value'] }, 'object and array values shown as null and named');
  t.match(byPoint.get('p2'), { severity: 'critical', threshold: null, value: null, malformed: ['severity', 'threshold', 'value'] });
  t.match(byPoint.get('p3'), { raisedAt: 0, value: null, malformed: ['value', 'raisedAt'] });
  const ack = await api(hub, 'POST', `/api/v1/alarms/${(byPoint.get('p1') as { id: number }).id}/ack`, { token: admin });
  t.equal(ack.status, 200, 'a damaged alarm can still be acknowledged');

  const events = await api(hub, 'GET', '/api/v1/events?gateway=gw-old', { token: admin });
  t.equal(events.status, 200, 'events answer 200');
  t.same(events.body.items.map((e: { id: string; data?: unknown }) => [e.id, e.data]).sort(), [['x1', { malformed: true }], ['x2', { malformed: true }], ['x3', { malformed: true }]]);
  t.equal((await api(hub, 'GET', '/api/v1/events?gateway=gw-river', { token: admin })).body.items.length, 2, 'other events still listed');

  const latest = await api(hub, 'GET', '/api/v1/readings/latest', { token: admin });
  t.equal(latest.status, 200, 'latest answers 200');
  t.match(latest.body.items.find((r: { point: string }) => r.point === 'level'), { value: 1.5, quality: 'good' }, 'the sound reading is there');
  t.match(latest.body.items.find((r: { point: string }) => r.point === 'v2'), { value: null, quality: 'bad' }, 'a value that is not its type reads as null, quality bad');
  const hist = await api(hub, 'GET', '/api/v1/readings?gateway=gw-old&device=d&point=v1&from=0', { token: admin });
  t.equal(hist.status, 200, 'history answers 200');
  const gws = await api(hub, 'GET', '/api/v1/gateways', { token: admin });
  t.equal(gws.status, 200, 'gateways answer 200');
  t.ok(gws.body.items.some((g: { id: string }) => g.id === 'gw-old'), 'a gateway with an unreadable status is still listed');
});

t.test('a well-behaved gateway keeps committing while another floods garbage, future stamps and poisoned events, and retention runs', async (t) => {
  const dataDir = path.join(tempDir(t, 'ioc-edge-poison-'), 'hub');
  const hub = await startHub({ dataDir, logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'required', scrypt: TEST_SCRYPT }, data: { retention: { chunkRows: 100 } } });
  t.teardown(() => hub.stop());
  const admin = (await hub.identity.createApiToken({ name: 'root', role: 'admin' }, { actor: 'test' })).token;
  const evilEvent = await gateway(t, hub, 'gw-evil');
  const { token } = await hub.identity.createClaim({ site: 'river', gatewayId: 'gw-good' }, { actor: 'test' });
  const { credential } = await provisionGateway({ hubUrl: mqttUrl(hub), claim: token, gatewayId: 'gw-good', dataDir: tempDir(t), timeoutMs: 5000 });
  const good = await connectOk(t, mqttUrl(hub), { clientId: 'gw-good', username: credential.username, password: credential.password, reconnectPeriod: 0 });
  const { token: evilClaim } = await hub.identity.createClaim({ site: 'river', gatewayId: 'gw-evil2' }, { actor: 'test' });
  const evilCred = (await provisionGateway({ hubUrl: mqttUrl(hub), claim: evilClaim, gatewayId: 'gw-evil2', dataDir: tempDir(t), timeoutMs: 5000 })).credential;
  const evil = await connectOk(t, mqttUrl(hub), { clientId: 'gw-evil2', username: evilCred.username, password: evilCred.password, reconnectPeriod: 0 });
  // Old readings for the retention pass to chew on meanwhile.
  await hub.store.commitBatch({ gateway: 'gw-old', epoch: 'e', seq: 1, historical: true, readings: Array.from({ length: 3000 }, (_, i) => ({ device: 'd', point: 'p', ts: Date.now() - 60 * 86_400_000 + i * 1000, value: i, quality: 'good' as const })) });

  const attack = (async () => {
    const retention = hub.store.runRetention();
    for (let i = 0; i < 150; i++) {
      await evil.publishAsync(topics.telemetry('gw-evil2'), i % 3 === 0 ? `garbage ${i} ${'g'.repeat(20_000)}` : JSON.stringify({ v: 1, epoch: 'x', seq: i + 1, readings: [{ device: 'd', point: `p${i}`, ts: Date.now() + 86_400_000 * 365, value: 1, quality: 'good' }] }), { qos: 1 });
      if (i % 10 === 0) await evilEvent({ id: `x${i}`, type: 'alarm.raised', severity: 'critical', device: 'd', point: 'p', data: { value: { poisoned: i } } });
    }
    return retention;
  })();
  const now = Date.now();
  for (let seq = 1; seq <= 100; seq++) {
    await good.publishAsync(topics.telemetry('gw-good'), JSON.stringify({ v: 1, epoch: 'g', seq, readings: [{ device: 'flood-1', point: 'level', ts: now + seq, value: seq / 10, quality: 'good' }] }), { qos: 1 });
  }
  t.ok((await attack)!.age >= 2900, 'retention ran meanwhile');
  t.same(await hub.store.readingCounts('gw-good'), { total: 100, distinct: 100 }, 'every batch of the good gateway acknowledged and stored once');
  t.match((await api(hub, 'GET', '/api/v1/readings/latest?gateway=gw-good', { token: admin })).body.items, [{ value: 10 }]);
  t.equal((await hub.store.readingCounts('gw-evil2')).total, 0, 'nothing of the hostile gateway stored');
  t.equal((await api(hub, 'GET', '/api/v1/alarms', { token: admin })).status, 200);
  t.ok(hub.store.quarantineUsage().rows <= 1000, 'quarantine within its per-gateway quota');
});
