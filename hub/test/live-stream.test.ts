/** The SSE live stream against a real hub: filters, committed data only, auth, slow consumers, shutdown. */
import path from 'node:path';
import mqtt from 'mqtt';
import t from 'tap';
import type { Test } from 'tap';
import { topics } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import { openSse } from '../../test/support/sse.js';
import { startHub, type Hub } from '../index.js';
import { api, startSecureHub, tempDir } from './support.js';

async function openHub(t: Test): Promise<Hub> {
  const hub = await startHub({ dataDir: path.join(tempDir(t), 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  t.teardown(() => hub.stop());
  return hub;
}

/** A publisher playing gateways on an open hub. */
async function publisher(t: Test, hub: Hub) {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: 'tester', reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  let seq = 0;
  let ev = 0;
  return {
    telemetry: (gw: string, readings: Array<{ device: string; point: string; value: number }>, extra: Record<string, unknown> = {}) =>
      client.publishAsync(topics.telemetry(gw), JSON.stringify({ v: 1, epoch: 'e1', seq: ++seq, readings: readings.map((r) => ({ ...r, ts: Date.now(), quality: 'good' })), ...extra }), { qos: 1 }),
    event: (gw: string, e: Record<string, unknown>) =>
      client.publishAsync(topics.events(gw), JSON.stringify({ v: 1, id: `ev${++ev}`, ts: Date.now(), severity: 'info', message: 'test', ...e }), { qos: 1 }),
    raw: (topic: string, payload: string) => client.publishAsync(topic, payload, { qos: 1 }),
  };
}

t.test('readings, events and gateway changes arrive filtered', async (t) => {
  const hub = await openHub(t);
  const base = `http://127.0.0.1:${hub.httpPort}/api/v1/stream`;
  const all = await openSse(base);
  t.teardown(() => all.close());
  const gw1 = await openSse(`${base}?gateway=gw-1`);
  t.teardown(() => gw1.close());
  const levels = await openSse(`${base}?device=flood-1,flood-2&point=level&types=readings`);
  t.teardown(() => levels.close());
  t.match(levels.messages[0], { event: 'hello', data: { filter: { gateway: null, device: 'flood-1,flood-2', point: 'level', types: ['readings'], historical: false } } });

  const pub = await publisher(t, hub);
  await pub.telemetry('gw-2', [{ device: 'flood-2', point: 'level', value: 1.5 }, { device: 'flood-2', point: 'battery', value: 12 }]);
  await pub.telemetry('gw-1', [{ device: 'flood-1', point: 'level', value: 2.5 }, { device: 'tsc-1', point: 'phase', value: 3 }]);
  await pub.event('gw-1', { type: 'device.down', device: 'tsc-1', severity: 'warning' });
  await pub.event('gw-2', { type: 'outbox.overflow' });

  const r1 = await gw1.next((m) => m.event === 'readings');
  t.same(r1.data.readings.map((r: { point: string }) => r.point), ['level', 'phase'], 'gateway filter: the whole gw-1 batch');
  t.equal(r1.data.gateway, 'gw-1');
  const e1 = await gw1.next((m) => m.event === 'event');
  t.match(e1.data, { gateway: 'gw-1', type: 'device.down', device: 'tsc-1' });
  await all.next((m) => m.event === 'event' && m.data.type === 'outbox.overflow');
  t.notOk(gw1.messages.some((m) => m.data.gateway === 'gw-2'), 'nothing of gw-2 on the gw-1 stream');

  const l1 = await levels.next((m) => m.event === 'readings' && m.data.gateway === 'gw-1');
  const l2 = await levels.next((m) => m.event === 'readings' && m.data.gateway === 'gw-2');
  t.same([...l1.data.readings, ...l2.data.readings].map((r: { device: string; point: string }) => `${r.device}.${r.point}`).sort(), ['flood-1.level', 'flood-2.level'], 'device and point filters');
  t.notOk(levels.messages.some((m) => m.event === 'event'), 'types=readings: no events');

  // A replay (same epoch and seq) is committed once and streamed once.
  const before = all.messages.filter((m) => m.event === 'readings').length;
  await pub.raw(topics.telemetry('gw-3'), JSON.stringify({ v: 1, epoch: 'x', seq: 7, readings: [{ device: 'd', point: 'p', ts: 1, value: 1, quality: 'good' }] }));
  await pub.raw(topics.telemetry('gw-3'), JSON.stringify({ v: 1, epoch: 'x', seq: 7, readings: [{ device: 'd', point: 'p', ts: 1, value: 1, quality: 'good' }] }));
  await pub.telemetry('gw-3', [{ device: 'd', point: 'marker', value: 0 }]);
  await all.next((m) => m.event === 'readings' && m.data.readings[0].point === 'marker');
  t.equal(all.messages.filter((m) => m.event === 'readings').length - before, 2, 'the replay was not streamed');

  // Backlog batches only for clients that ask.
  const hist = await openSse(`${base}?gateway=gw-4&historical=true`);
  t.teardown(() => hist.close());
  await pub.telemetry('gw-4', [{ device: 'd', point: 'old', value: 1 }], { historical: true });
  await pub.telemetry('gw-4', [{ device: 'd', point: 'new', value: 1 }]);
  await hist.next((m) => m.event === 'readings' && m.data.readings[0].point === 'old' && m.data.historical === true);
  await hist.next((m) => m.event === 'readings' && m.data.readings[0].point === 'new');
  await all.next((m) => m.event === 'readings' && m.data.readings[0].point === 'new');
  t.notOk(all.messages.some((m) => m.event === 'readings' && m.data.readings[0].point === 'old'), 'historical batches are not live data by default');

  // Gateway status.
  await pub.raw(topics.status('gw-5'), JSON.stringify({ v: 1, state: 'online', ts: Date.now(), version: '9.9.9', backlog: { rows: 12 } }));
  const g = await all.next((m) => m.event === 'gateway' && m.data.gateway === 'gw-5');
  t.match(g.data, { gateway: 'gw-5', online: true, status: { state: 'online', version: '9.9.9', backlog: { rows: 12 } } });
  t.equal(hub.live.clientCount, 4);
});

t.test('bad filters are refused; the stream needs a token on a hub with authentication', async (t) => {
  const hub = await startSecureHub(t);
  const viewer = await hub.identity.createApiToken({ name: 'v', role: 'viewer' }, { actor: 'test' });
  const base = `http://127.0.0.1:${hub.httpPort}/api/v1/stream`;
  t.match(await api(hub, 'GET', '/api/v1/stream'), { status: 401, body: { error: { code: 'HUB_ERR_UNAUTHORIZED' } } });
  t.match(await api(hub, 'GET', '/api/v1/stream?types=readings,bogus', { token: viewer.token }), { status: 400, body: { error: { code: 'HUB_ERR_BAD_REQUEST' } } });
  t.match(await api(hub, 'GET', '/api/v1/stream?gateway=a%20b', { token: viewer.token }), { status: 400 });
  const s = await openSse(base, { token: viewer.token });
  t.teardown(() => s.close());
  t.equal(s.messages[0]!.event, 'hello', 'a viewer may follow the stream');
});

t.test('clients disconnect cleanly; hub stop ends open streams', async (t) => {
  const hub = await startHub({ dataDir: path.join(tempDir(t), 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  const a = await openSse(`http://127.0.0.1:${hub.httpPort}/api/v1/stream`);
  const b = await openSse(`http://127.0.0.1:${hub.httpPort}/api/v1/stream`);
  t.equal(hub.live.clientCount, 2);
  a.close();
  await a.ended;
  for (let i = 0; i < 200 && hub.live.clientCount !== 1; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(hub.live.clientCount, 1, 'a closed client is forgotten');
  await hub.stop();
  await b.ended;
  t.pass('the open stream ended with the hub');
});

t.test('a client that stops reading is disconnected once its buffer passes the limit', async (t) => {
  const { default: Fastify } = await import('fastify');
  const { HubEvents } = await import('../hub-events.js');
  const { LiveStream } = await import('../live/live-stream.js');
  const net = await import('node:net');
  const events = new HubEvents();
  const live = new LiveStream({ events, logger: silentLogger(), maxBufferedBytes: 256 * 1024 });
  const app = Fastify();
  live.register(app);
  await live.start();
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    await live.stop();
    await app.close();
  });
  const port = (app.server.address() as { port: number }).port;
  const reader = await openSse(`http://127.0.0.1:${port}/api/v1/stream`);
  t.teardown(() => reader.close());
  const stuck = net.connect(port, '127.0.0.1');
  t.teardown(() => stuck.destroy());
  await new Promise((r) => stuck.once('connect', r));
  stuck.write('GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  for (let i = 0; i < 200 && live.clientCount < 2; i++) await new Promise((r) => setTimeout(r, 10));
  stuck.pause(); // never reads again: the kernel buffers fill, then the hub's
  const readings = Array.from({ length: 200 }, (_, i) => ({ device: 'd', point: `p${i}`, ts: i, value: 'x'.repeat(200), quality: 'good' as const }));
  for (let seq = 1; seq <= 2000 && live.counters.dropped === 0; seq++) {
    events.emit('batch', { gateway: 'g', epoch: 'e', seq, historical: false, readings, duplicate: false });
    await new Promise((r) => setImmediate(r)); // lets the reading client read
  }
  t.equal(live.counters.dropped, 1, 'the stuck client was dropped');
  t.equal(live.clientCount, 1, 'the reading client stays');
  events.emit('batch', { gateway: 'g', epoch: 'e', seq: 99999, historical: false, readings: [{ device: 'd', point: 'last', ts: 1, value: 1, quality: 'good' }], duplicate: false });
  await reader.next((m) => m.event === 'readings' && m.data.readings[0].point === 'last');
});
