/**
 * Issue 13 items 4 and 9, data side: timestamps outside the clock-skew
 * window, bad numbers in every numeric query parameter, the quarantine
 * quota, the points-per-gateway cap, and the aggregated audit of refused
 * API calls. Real hub with authentication, real mqtt.js gateways, real
 * SQLite files.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { topics } from '../../contract/index.js';
import { provisionGateway } from '../../gateway/identity/provision.js';
import { silentLogger, SqliteDb } from '../../lib/index.js';
import { startHub, type Hub, type HubOptions } from '../index.js';
import { api, connectOk, mqttUrl, startSecureHub, tempDir, TEST_SCRYPT } from './support.js';

async function gateway(t: Test, hub: Hub, id: string) {
  const { token } = await hub.identity.createClaim({ site: 'river', gatewayId: id }, { actor: 'test' });
  const { credential } = await provisionGateway({ hubUrl: mqttUrl(hub), claim: token, gatewayId: id, dataDir: tempDir(t), timeoutMs: 5000 });
  const client = await connectOk(t, mqttUrl(hub), { clientId: id, username: credential.username, password: credential.password, reconnectPeriod: 0 });
  let seq = 0;
  return {
    client,
    event: (e: Record<string, unknown>) => client.publishAsync(topics.events(id), JSON.stringify({ v: 1, message: 'm', ts: Date.now(), ...e }), { qos: 1 }),
    telemetry: (readings: Array<Record<string, unknown>>) => client.publishAsync(topics.telemetry(id), JSON.stringify({ v: 1, epoch: 'ep', seq: ++seq, readings }), { qos: 1 }),
    raw: (topic: string, payload: string | Buffer) => client.publishAsync(topic, payload, { qos: 1 }),
  };
}

/** The value of one sample of a metric in the /metrics text (0 when absent). */
async function metric(hub: Hub, token: string, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function setup(t: Test, opts: Partial<HubOptions> = {}) {
  const hub = await startSecureHub(t, opts);
  const admin = (await hub.identity.createApiToken({ name: 'root', role: 'admin' }, { actor: 'test' })).token;
  return { hub, admin };
}

t.test('a reading stamped in the future is refused on its own and never pins latest; a future event is quarantined', async (t) => {
  const { hub, admin } = await setup(t);
  const gw = await gateway(t, hub, 'gw-clock');
  const now = Date.now();
  await gw.telemetry([
    { device: 'd', point: 'level', ts: now, value: 1.5, quality: 'good' },
    { device: 'd', point: 'level', ts: now + 3_600_000, value: 99, quality: 'good' }, // an hour ahead: past the 5 min allowance
    { device: 'd', point: 'temp', ts: now - 10 * 86_400_000, value: 20, quality: 'good' }, // ten days old: a backlog, kept
    { device: 'd', point: 'far', ts: 32_000_000_000_000, value: 1, quality: 'good' }, // year 2984
  ]);
  const latest = (await api(hub, 'GET', '/api/v1/readings/latest?gateway=gw-clock', { token: admin })).body.items;
  t.same(latest.map((r: { point: string; value: number }) => [r.point, r.value]), [['level', 1.5], ['temp', 20]], 'only the in-window readings stored');
  await gw.telemetry([{ device: 'd', point: 'level', ts: now + 1000, value: 1.7, quality: 'good' }]);
  t.match((await api(hub, 'GET', '/api/v1/readings/latest?gateway=gw-clock&point=level', { token: admin })).body.items, [{ value: 1.7 }], 'latest follows the next reading');
  t.equal(await metric(hub, admin, 'ioc_edge_hub_readings_dropped_total{reason="future"}'), 2, 'counted by reason');
  const q = (await api(hub, 'GET', '/api/v1/quarantine', { token: admin })).body.items;
  t.match(q, [{ gateway: 'gw-clock', code: 'HUB_ERR_TIMESTAMP_RANGE', error: /2 of 4 readings of batch 1 are stamped outside the hub's clock window .*check the gateway's clock/ }], 'a sample kept in the quarantine with the reason');

  await gw.event({ id: 'f1', type: 'alarm.raised', severity: 'critical', device: 'd', point: 'level', ts: now + 86_400_000, data: { limit: 'high', value: 3, threshold: 2 } });
  t.equal((await api(hub, 'GET', '/api/v1/alarms', { token: admin })).body.items.length, 0, 'no alarm from a future event');
  t.equal((await api(hub, 'GET', '/api/v1/events?type=alarm.', { token: admin })).body.items.length, 0, 'future event not stored');
  t.match((await api(hub, 'GET', '/api/v1/quarantine', { token: admin })).body.items[0], { code: 'HUB_ERR_TIMESTAMP_RANGE', error: /event f1 \(alarm\.raised\) is stamped .* outside the hub's clock window \(300 s ahead\)/ });
  // Within the allowance (a gateway clock a minute fast) is accepted.
  await gw.event({ id: 'f2', type: 'alarm.raised', severity: 'critical', device: 'd', point: 'level', ts: now + 60_000, data: { limit: 'high', value: 3, threshold: 2 } });
  t.equal((await api(hub, 'GET', '/api/v1/alarms', { token: admin })).body.items.length, 1, 'a minute ahead is within the allowance');
});

t.test('every numeric query and path parameter of every GET route answers 400 to Infinity, NaN, huge and non-numeric values', async (t) => {
  const { hub, admin } = await setup(t);
  const doc = (await api(hub, 'GET', '/api/v1/openapi.json', { token: admin })).body;
  type Param = { name: string; in: string; required?: boolean; schema: { type?: string | string[]; enum?: unknown[]; pattern?: string } };
  const valid = (p: Param): string => (p.schema.enum ? String(p.schema.enum[0]) : p.schema.type === 'integer' || p.schema.type === 'number' ? '1' : 'a');
  let checked = 0;
  for (const [route, methods] of Object.entries(doc.paths as Record<string, Record<string, { parameters?: Param[] }>>)) {
    const params = methods.get?.parameters ?? [];
    for (const target of params.filter((p) => ['integer', 'number'].includes(String(p.schema.type)))) {
      for (const bad of ['Infinity', '-Infinity', 'NaN', '1e400', '1e20', 'abc', '0x']) {
        let url = route;
        const query: string[] = [];
        for (const p of params) {
          const v = p === target ? bad : valid(p);
          if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(v));
          else if (p.in === 'query' && (p.required || p === target)) query.push(`${p.name}=${encodeURIComponent(v)}`);
        }
        const res = await api(hub, 'GET', `${url}${query.length ? `?${query.join('&')}` : ''}`, { token: admin });
        if (res.status !== 400 || res.body?.error?.code !== 'HUB_ERR_BAD_REQUEST' || !String(res.body.error.message).includes(target.name)) {
          t.fail(`GET ${route} ${target.name}=${bad}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        }
        checked++;
      }
    }
  }
  t.ok(checked >= 7 * 8, `${checked} bad numbers tried, each answered 400 naming the parameter`);
  t.match(await api(hub, 'GET', '/api/v1/readings/buckets?gateway=g&device=d&point=p&bucketMs=Infinity', { token: admin }), { status: 400, body: { error: { code: 'HUB_ERR_BAD_REQUEST', message: /bucketMs/ } } }, 'the issue’s exact request');
});

t.test('quarantine quota: per message, per gateway and overall, oldest dropped first and counted', async (t) => {
  const { hub, admin } = await setup(t, { data: { quarantine: { maxMessageBytes: 1000, maxRowsPerGateway: 5, maxBytesPerGateway: 4000, maxRows: 6, maxBytes: 1_000_000 } } });
  const a = await gateway(t, hub, 'gw-a');
  const b = await gateway(t, hub, 'gw-b');
  for (let i = 0; i < 20; i++) await a.raw(topics.telemetry('gw-a'), `not json ${i} ${'x'.repeat(3000)}`);
  t.same(hub.store.quarantineUsage(), { rows: 4, bytes: 4000 }, 'gw-a: 4 rows of 1000 bytes (cut from 3000) within its 4000 bytes');
  for (let i = 0; i < 5; i++) await b.raw(topics.telemetry('gw-b'), `not json either ${i} ${'y'.repeat(3000)}`);
  const rows = (await api(hub, 'GET', '/api/v1/quarantine?limit=100', { token: admin })).body.items;
  t.equal(rows.length, 6, 'overall row cap');
  t.same(rows.map((r: { gateway: string }) => r.gateway), ['gw-b', 'gw-b', 'gw-b', 'gw-b', 'gw-a', 'gw-a'], 'the newest kept: gw-b\'s 4, then gw-a\'s newest 2');
  t.equal(await metric(hub, admin, 'ioc_edge_hub_quarantine_dropped_total'), 19, '16 + 1 + 2 dropped, counted');
  t.equal(await metric(hub, admin, 'ioc_edge_hub_quarantine_bytes'), 6000);
  const notes = (await api(hub, 'GET', '/api/v1/events?type=ingest.quarantined', { token: admin })).body.items;
  t.same(notes.map((e: { gateway: string }) => e.gateway).sort(), ['gw-a', 'gw-b'], 'one ingest.quarantined event per gateway per minute, not one per payload');
});

t.test('quarantine rate per gateway: past perSecond (bursts of twice that) payloads are counted as dropped, not written', async (t) => {
  const now = Date.now();
  const { hub, admin } = await setup(t, { dataClock: () => now, data: { quarantine: { perSecond: 5 } } });
  const a = await gateway(t, hub, 'gw-flood');
  for (let i = 0; i < 30; i++) await a.raw(topics.telemetry('gw-flood'), `garbage ${i}`);
  t.equal(hub.store.quarantineUsage().rows, 10, 'a burst of 10 kept (the clock stands still: no refill)');
  t.equal(await metric(hub, admin, 'ioc_edge_hub_quarantine_dropped_total'), 20, 'the other 20 counted');
  t.equal(await metric(hub, admin, 'ioc_edge_hub_quarantined_total'), 30, 'every bad payload still counted as quarantined');
});

t.test('points per gateway: readings of new points past the cap are refused and counted; known points keep flowing', async (t) => {
  const { hub, admin } = await setup(t, { data: { maxSeriesPerGateway: 3 } });
  const gw = await gateway(t, hub, 'gw-many');
  const now = Date.now();
  await gw.telemetry(['p1', 'p2', 'p3', 'p4', 'p5'].map((point, i) => ({ device: 'd', point, ts: now + i, value: i, quality: 'good' })));
  await gw.telemetry([{ device: 'd', point: 'p1', ts: now + 10, value: 10, quality: 'good' }, { device: 'other', point: 'p6', ts: now + 10, value: 6, quality: 'good' }]);
  const latest = (await api(hub, 'GET', '/api/v1/readings/latest?gateway=gw-many', { token: admin })).body.items;
  t.same(latest.map((r: { point: string; value: number }) => [r.point, r.value]), [['p1', 10], ['p2', 1], ['p3', 2]]);
  t.equal(await metric(hub, admin, 'ioc_edge_hub_readings_dropped_total{reason="series_limit"}'), 3);
  const other = await gateway(t, hub, 'gw-other');
  await other.telemetry([{ device: 'd', point: 'p9', ts: now, value: 9, quality: 'good' }]);
  t.equal((await api(hub, 'GET', '/api/v1/readings/latest?gateway=gw-other', { token: admin })).body.items.length, 1, 'the cap is per gateway');
});

t.test('200 refused calls with a 15 KB query grow the registry by a bounded amount: one row per source and reason per window, URL cut', async (t) => {
  const dataDir = path.join(tempDir(t, 'ioc-edge-audit-'), 'hub');
  const hub = await startHub({ dataDir, logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'required', scrypt: TEST_SCRYPT } });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : hub.stop()));
  const file = path.join(dataDir, 'registry.sqlite');
  const size = async () => (await stat(file)).size + (await stat(`${file}-wal`).catch(() => ({ size: 0 }))).size;
  const before = await size();
  const rowsBefore = (await hub.audit.list({ limit: 10_000 })).length;
  const query = `?q=${'z'.repeat(15_000)}`;
  const statuses = new Map<number, number>();
  for (let i = 0; i < 200; i++) {
    // Half without a token, half with a wrong one (those are counted by the limiter and soon answered 429).
    const res = await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/alarms/1/ack${query}`, { method: 'POST', headers: i % 2 ? { authorization: 'Bearer iet_abcdef.wrongsecret' } : {} });
    await res.arrayBuffer();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  }
  t.ok(statuses.get(429), `some were rate-limited (${JSON.stringify([...statuses])})`);
  const rows = await hub.audit.list({ limit: 10_000 });
  const added = rows.length - rowsBefore;
  t.ok(added <= 3, `${added} audit rows written at once for 200 refused calls (one per reason: no token, wrong token, rate-limited)`);
  t.ok(rows.every((r) => (r.target ?? '').length < 400), 'targets cut');
  t.match(rows[0]?.target, /… \(15\d{3} chars\)$/, 'the cut names the original length');
  await hub.stop();
  stopped = true;
  const grown = (await size()) - before;
  t.ok(grown < 128 * 1024, `registry grew ${grown} bytes (200 rows with the whole URL: over 3 MB)`);
  const db = await SqliteDb.open(file);
  t.teardown(() => db.close());
  const all = await db.all<{ outcome: string; detail: string }>('SELECT outcome, detail FROM audit WHERE n > ?', [rowsBefore]);
  t.ok(all.length <= 6, `${all.length} rows after the window's summaries`);
  const repeated = all.reduce((n, r) => n + ((JSON.parse(r.detail) as { repeated?: number }).repeated ?? 0), 0);
  t.equal(repeated + all.filter((r) => !(JSON.parse(r.detail) as { repeated?: number }).repeated).length, 200, 'every refused call is counted: first rows plus the summaries\' counts');
});

t.test('hub run flags for data limits: parsed, checked, refused with the flag named (exit 2)', async (t) => {
  const { dataLimitsFromFlags, resolveDataLimits } = await import('../data-limits.js');
  const { parseDuration } = await import('../cli/parse.js');
  const o = dataLimitsFromFlags({ readingsKeep: '7d', rollups: '5m:30d,1h:365d', readingsMaxBytes: '20G', clockSkew: '2m', other: ['quarantine.maxBytes=64M', 'events.keepMs=90d', 'maxSeriesPerGateway=1000'] }, parseDuration);
  t.match(resolveDataLimits(o), {
    clock: { futureMs: 120_000, pastMs: 0 }, quarantine: { maxBytes: 64 * 1024 * 1024, maxRows: 20_000 },
    retention: { rawMs: 7 * 86_400_000, maxBytes: 20 * 1024 ** 3, rollups: [{ bucketMs: 300_000, keepMs: 30 * 86_400_000 }, { bucketMs: 3_600_000, keepMs: 365 * 86_400_000 }] },
    events: { keepMs: 90 * 86_400_000 }, maxSeriesPerGateway: 1000,
  });
  t.same(resolveDataLimits(dataLimitsFromFlags({ rollups: 'none' }, parseDuration)).retention.rollups, [], "'none': no rollups");
  for (const [flags, msg] of [
    [{ readingsKeep: 'soon' }, /--readings-keep 'soon' is not a duration/],
    [{ other: ['quarantine.bogus=1'] }, /'quarantine.bogus' is not a data limit; known: .*quarantine.maxBytes/],
    [{ other: ['maxSeriesPerGateway=lots'] }, /maxSeriesPerGateway: 'lots' is not a whole number/],
    [{ rollups: '1h:30d,1m:90d' }, /retention.rollups\[1\].bucketMs is 60000: it must be a multiple of the previous level's 3600000 ms/],
    [{ rollups: '1m:1d' }, /keepMs is 86400000: it must be at least retention.rawMs/],
    [{ readingsMaxBytes: '-5' }, /--readings-max-bytes '-5' is not a size/],
  ] as const) t.throws(() => dataLimitsFromFlags(flags as Parameters<typeof dataLimitsFromFlags>[0], parseDuration), { code: 'CONFIG_ERR_INVALID', message: msg });

  const { hubCommands } = await import('../cli/index.js');
  const { Writable } = await import('node:stream');
  let err = '';
  const sink = (f: (s: string) => void) => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
  const code = await hubCommands.find((c) => c.name === 'hub run')!.run(['--data-dir', tempDir(t), '--data-limit', 'retention.rawMs=0'], { out: sink(() => undefined), err: sink((s) => (err += s)) });
  t.equal(code, 2, 'a bad limit stops hub run before it starts');
  t.match(err, /data limit retention.rawMs is 0: it must be a whole number ≥ 60000/);
});
