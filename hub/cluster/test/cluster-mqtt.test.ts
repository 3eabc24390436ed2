/**
 * MQTT across two hub nodes (issue 16 item 1), in one process, on one
 * PostgreSQL schema and one Redis key prefix: cross-node delivery of
 * telemetry, commands and configuration; session takeover; revocation;
 * cluster-wide bounds; the option's bad inputs.
 */
import t from 'tap';
import { once as onceEv, type EventEmitter } from 'node:events';
import mqtt from 'mqtt';
import { silentLogger } from '../../../lib/index.js';
import { pgSchema, skipUnlessPostgres, PG_URL } from '../../../test/support/postgres.js';
import { waitFor } from '../../../test/support/wait.js';
import { runCli } from '../../../test/support/cli.js';
import { startHub } from '../../index.js';
import { TEST_SCRYPT, tempDir } from '../../test/support.js';
import type { PgTelemetryStore } from '../../store/postgres/pg-telemetry-store.js';
import { resolveCluster } from '../cluster-options.js';
import { api, clusterNode, gatewayClient, online, telemetry } from './cluster-support.js';
import { Redis } from 'ioredis';
import { REDIS_URL, redisKeys, redisPrefix, skipUnlessRedis } from './redis-support.js';

/** `once` for mqtt.js clients (their typed events do not match node's overloads). */
const onceOf = (e: unknown, name: string): Promise<unknown[]> => onceEv(e as EventEmitter, name);

const skip = (await skipUnlessPostgres()) || (await skipUnlessRedis());

t.test('bad cluster settings are refused with what to do', async (t) => {
  t.throws(() => resolveCluster({ redis: 'redis://127.0.0.1:6379' }, 'sqlite'), { code: 'HUB_ERR_CLUSTER_CONFIG', message: /needs the store in PostgreSQL/ });
  t.throws(() => resolveCluster({ redis: 'not a url' }, 'postgres'), { code: 'HUB_ERR_CLUSTER_CONFIG', message: /'not a url' is not a URL/ });
  t.throws(() => resolveCluster({ redis: 'http://x:1' }, 'postgres'), { code: 'HUB_ERR_CLUSTER_CONFIG', message: /scheme 'http:'/ });
  t.throws(() => resolveCluster({ redis: 'redis://h:1', nodeId: 'a:b' }, 'postgres'), { code: 'HUB_ERR_CLUSTER_CONFIG', message: /node id 'a:b'/ });
  t.throws(() => resolveCluster({ redis: 'redis://h:1', keyPrefix: 'a b' }, 'postgres'), { code: 'HUB_ERR_CLUSTER_CONFIG', message: /key prefix 'a b'/ });
  t.throws(() => resolveCluster({ redis: 'redis://h:1', heartbeatMs: 5 }, 'postgres'), { code: 'HUB_ERR_CLUSTER_CONFIG', message: /heartbeat of 5 ms/ });
  const ok = resolveCluster({ redis: 'redis://h:1' }, 'postgres');
  t.match(ok.nodeId, /^[A-Za-z0-9._-]+-\d+$/, 'default node id: host name and pid');
  await t.rejects(startHub({ dataDir: tempDir(t), logger: silentLogger(), mqttPort: 0, httpPort: 0, cluster: { redis: 'redis://127.0.0.1:6379' } }), { code: 'HUB_ERR_CLUSTER_CONFIG' }, 'a hub on SQLite refuses --redis');
});

t.test('hub run: --redis without a PostgreSQL store, and --node-id without --redis, are refused', async (t) => {
  const dir = tempDir(t);
  const sqlite = await runCli(['hub', 'run', '--data-dir', dir, '--redis', 'redis://127.0.0.1:6379', '--mqtt-port', '0', '--http-port', '0']);
  t.equal(sqlite.code, 1);
  t.match(sqlite.err, /needs the store in PostgreSQL.*\(HUB_ERR_CLUSTER_CONFIG\)/);
  const lone = await runCli(['hub', 'run', '--data-dir', dir, '--node-id', 'hub-a']);
  t.equal(lone.code, 2);
  t.match(lone.err, /--node-id names a cluster node: give --redis URL/);
});

t.test('a node whose Redis does not answer does not start, and says so', { skip }, async (t) => {
  const schema = pgSchema(t);
  await t.rejects(
    startHub({ dataDir: tempDir(t), logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'open' }, store: `${PG_URL}?schema=${schema}`, cluster: { redis: 'redis://127.0.0.1:1' } }),
    { code: 'HUB_ERR_CLUSTER_UNAVAILABLE', message: /Redis at redis:\/\/127\.0\.0\.1:1 unreachable at start/ },
  );
});

t.test('telemetry committed on node A reaches a consumer on node B; a command and a configuration sent through B reach a gateway on A', { skip }, async (t) => {
  const schema = pgSchema(t);
  const prefix = redisPrefix(t);
  const a = await clusterNode(t, schema, prefix);
  const b = await clusterNode(t, schema, prefix);
  t.not(a.cluster!.brokerId, b.cluster!.brokerId);
  const metrics = await (await fetch(`http://127.0.0.1:${a.httpPort}/metrics`)).text();
  t.match(metrics, new RegExp(`node="${a.cluster!.nodeId}"`), 'metrics carry the node id');

  const consumer = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.mqttPort}`, { clientId: 'ioc-consumer', reconnectPeriod: 0 });
  t.teardown(() => consumer.endAsync(true));
  await consumer.subscribeAsync('ioc/v1/gw/+/telemetry', { qos: 1 });
  const got = onceOf(consumer, 'message');

  const gw = await gatewayClient(t, a.mqttPort, 'gw-a1');
  await gw.subscribeAsync(['ioc/v1/gw/gw-a1/cmd/+', 'ioc/v1/gw/gw-a1/config/desired'], { qos: 1 });
  await gw.publishAsync('ioc/v1/gw/gw-a1/telemetry', telemetry(1), { qos: 1 });
  const [topic, payload] = (await got) as [string, Buffer];
  t.equal(topic, 'ioc/v1/gw/gw-a1/telemetry', 'the consumer on B got the batch published on A');
  t.equal(JSON.parse(payload.toString()).seq, 1);
  t.equal((await b.store.readingCounts('gw-a1')).total, 5, 'committed once, visible from B');

  // The gateway answers commands like a real one.
  gw.on('message', (tp, p) => {
    const m = /^ioc\/v1\/gw\/gw-a1\/cmd\/([^/]+)$/.exec(tp);
    if (!m) return;
    const req = JSON.parse(p.toString()) as { transaction: string };
    void gw.publishAsync(`${tp}/result`, JSON.stringify({ v: 1, transaction: req.transaction, status: 'ok', data: { pong: true } }), { qos: 1 });
  });
  await waitFor(() => b.broker.isConnected('gw-a1', null), 'node B to know gw-a1 is connected on A');
  const cmd = await api(b, 'POST', '/api/v1/gateways/gw-a1/commands/ping', { timeoutMs: 5000 });
  t.equal(cmd.status, 200, JSON.stringify(cmd.body));
  t.same((cmd.body as { data?: unknown }).data, { pong: true }, 'the command sent through B was answered by the gateway on A');

  const desired = new Promise<Record<string, unknown>>((resolve) => gw.on('message', (tp, p) => tp.endsWith('/config/desired') && resolve(JSON.parse(p.toString()))));
  const push = await api(b, 'POST', '/api/v1/gateways/gw-a1/config', {
    config: { gatewayId: 'gw-a1', hub: { url: 'mqtt://127.0.0.1:1883' }, buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 5020 }], devices: [{ id: 'flood-1', bus: 'lan', unitId: 1, profile: 'flood-level-sensor' }] },
  });
  t.ok(push.status === 200 || push.status === 202 || push.status === 201, `config accepted by B (${push.status} ${JSON.stringify(push.body).slice(0, 200)})`);
  const d = await desired;
  t.ok(d.version !== undefined, 'the configuration pushed through B reached the gateway on A');
});

t.test('a gateway connecting to B takes over its session on A: the old connection is closed and the gateway stays online', { skip }, async (t) => {
  const schema = pgSchema(t);
  const prefix = redisPrefix(t);
  const a = await clusterNode(t, schema, prefix);
  const b = await clusterNode(t, schema, prefix);
  const old = await gatewayClient(t, a.mqttPort, 'gw-move');
  await waitFor(async () => (await online(a, 'gw-move')) === true, 'online on A');
  const closed = onceOf(old, 'close');
  const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: 'watcher', reconnectPeriod: 0 });
  t.teardown(() => watcher.endAsync(true));
  const statuses: string[] = [];
  watcher.on('message', (_tp, p) => statuses.push(JSON.parse(p.toString()).state as string));
  await watcher.subscribeAsync('ioc/v1/gw/gw-move/status', { qos: 1 });
  await waitFor(() => statuses.length === 1, 'the retained status');

  await gatewayClient(t, b.mqttPort, 'gw-move');
  await closed;
  t.pass('the old connection on A was closed');
  await waitFor(() => !a.broker.clientIds('gw-move').length, 'A to drop the old client');
  // Let the old connection's will and disconnect run their course, then look.
  await new Promise((r) => setTimeout(r, 500));
  t.equal(await online(b, 'gw-move'), true, 'still online: the old connection did not mark it offline');
  t.notOk(statuses.includes('offline'), `the old connection's will was not published (${statuses.join(',')})`);
  const row = (await b.store.listGateways()).find((g) => g.id === 'gw-move');
  t.equal(row?.status?.state, 'online');
});

t.test('a node just started counts as alive before its first heartbeat: the other nodes neither sweep its gateways offline nor take it for dead', { skip }, async (t) => {
  // Aedes records a node at its first heartbeat, one period after its start; until then the other nodes took it for
  // dead: their connection sweep marked its gateways offline, and Aedes' will sweep would publish their wills (seen
  // in CI as the takeover test's gateway going offline). B's first heartbeat here is a minute away.
  const schema = pgSchema(t);
  const prefix = redisPrefix(t);
  const a = await clusterNode(t, schema, prefix, { cluster: { redis: REDIS_URL, keyPrefix: prefix, heartbeatMs: 1000 } });
  await waitFor(() => a.cluster!.liveBrokers() !== null, 'A old enough to judge other nodes', 10_000);
  const b = await clusterNode(t, schema, prefix, { cluster: { redis: REDIS_URL, keyPrefix: prefix, heartbeatMs: 60_000 } });
  const bId = b.cluster!.brokerId;
  await waitFor(() => a.cluster!.liveBrokers()!.includes(bId), "A counts B as alive from its birth, before any heartbeat of B's", 5000);
  t.ok((a.broker.instance as unknown as { brokers: Record<string, number> }).brokers[bId], "and so does A's Aedes (its will sweep reads that table)");
  await gatewayClient(t, b.mqttPort, 'gw-young');
  await waitFor(async () => (await online(b, 'gw-young')) === true, 'online on B');
  const live = a.cluster!.liveBrokers()!;
  t.ok(live.includes(bId), 'B is alive for A after its gateway connected');
  t.same(await (a.store as PgTelemetryStore).sweepConnections(live), [], "A's sweep marks nothing offline");
  t.equal(await online(a, 'gw-young'), true, 'the gateway stays online');
});

t.test('revoking on node B closes the connection on node A at once', { skip }, async (t) => {
  const schema = pgSchema(t);
  const prefix = redisPrefix(t);
  const a = await clusterNode(t, schema, prefix);
  const b = await clusterNode(t, schema, prefix);
  const gw = await gatewayClient(t, a.mqttPort, 'gw-rev');
  // A client cannot forge the brokers' messages: its PUBLISH to $SYS/… closes its own connection, not the gateway's.
  const forger = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.mqttPort}`, { clientId: 'forger', reconnectPeriod: 0 });
  forger.on('error', () => undefined);
  const forgerClosed = onceOf(forger, 'close');
  forger.publish('$SYS/ioc-edge/close', 'gw-rev', { qos: 1 });
  forger.publish('$SYS/someone/new/clients', 'gw-rev', { qos: 1 });
  await forgerClosed;
  await new Promise((r) => setTimeout(r, 300));
  t.ok(gw.connected, 'the gateway is still connected after the forged requests');
  const closed = onceOf(gw, 'close');
  t.ok(b.broker.closeEverywhere('gw-rev') === false, 'not connected on B itself');
  await closed;
  t.pass('closed on A by a request from B');
});

t.test('bounds hold cluster-wide: retained topics per client, offline queue per session', { skip }, async (t) => {
  const schema = pgSchema(t);
  const prefix = redisPrefix(t);
  const limits = { maxRetainedPerClient: 3, maxQueuedPerSession: 5 };
  const a = await clusterNode(t, schema, prefix, { brokerLimits: limits });
  const b = await clusterNode(t, schema, prefix, { brokerLimits: limits });

  // Retained: two topics through A, then the same client id through B may add only one more.
  const ra = await mqtt.connectAsync(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: 'integ', reconnectPeriod: 0 });
  for (const i of [1, 2]) await ra.publishAsync(`plant/r${i}`, 'x', { qos: 1, retain: true });
  await ra.endAsync();
  const rb = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.mqttPort}`, { clientId: 'integ', reconnectPeriod: 0 });
  t.teardown(() => rb.endAsync(true));
  for (const i of [3, 4, 5]) await rb.publishAsync(`plant/r${i}`, 'x', { qos: 1, retain: true });
  const reader = await mqtt.connectAsync(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: 'reader', reconnectPeriod: 0 });
  t.teardown(() => reader.endAsync(true));
  const seen = new Set<string>();
  reader.on('message', (tp, _p, packet) => packet.retain && seen.add(tp));
  await reader.subscribeAsync('plant/#', { qos: 1 });
  await waitFor(() => seen.size >= 3, 'retained messages');
  await new Promise((r) => setTimeout(r, 200));
  t.same([...seen].sort(), ['plant/r1', 'plant/r2', 'plant/r3'], 'three retained across both nodes, the rest delivered but not retained');
  t.ok(b.broker.limitCounters.retainRefused >= 2, 'B counted the refusals');

  // Offline queue: a persistent session of B, offline; 12 QoS 1 messages published through A keep the newest 5.
  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.mqttPort}`, { clientId: 'queue-sub', clean: false, reconnectPeriod: 0 });
  await sub.subscribeAsync('plant/q', { qos: 1 });
  await sub.endAsync();
  const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: 'queue-pub', reconnectPeriod: 0 });
  t.teardown(() => pub.endAsync(true));
  for (let i = 1; i <= 12; i++) await pub.publishAsync('plant/q', String(i), { qos: 1 });
  // PUBACK precedes the enqueue in Aedes: wait until all 12 went through the queue (5 kept, 7 dropped).
  const r = new Redis(REDIS_URL, { keyPrefix: prefix });
  t.teardown(() => r.disconnect());
  await waitFor(async () => Number(await r.hget('outgoing-drops', 'queue-sub')) === 7 && (await r.llen('outgoing:queue-sub')) === 5, 'the queue trimmed to 5');
  const back = mqtt.connect(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: 'queue-sub', clean: false, reconnectPeriod: 0 });
  t.teardown(() => back.endAsync(true));
  const got: string[] = [];
  back.on('message', (_tp, p) => got.push(p.toString()));
  await waitFor(() => got.length >= 5, 'the queued messages');
  await new Promise((r) => setTimeout(r, 300));
  t.same(got, ['8', '9', '10', '11', '12'], 'the session got the newest 5, on the other node');
  t.ok(a.broker.limitCounters.queueDropped >= 7, 'the node that enqueued counted the drops');
  await back.endAsync();
  // Packets dropped from the queue are deleted, not left behind (aedes-persistence-redis #73).
  const packets = (await redisKeys(prefix)).filter((k) => k.startsWith(`${prefix}packet:`));
  t.equal(packets.length, 0, `no queued packet left in Redis (${packets.slice(0, 3).join(', ')})`);
});

t.test('with authentication: credentials work on every node, and revoking a gateway on A closes its connection on B at once', { skip }, async (t) => {
  const schema = pgSchema(t);
  const prefix = redisPrefix(t);
  const auth = { auth: { mode: 'required' as const, scrypt: TEST_SCRYPT } };
  const a = await clusterNode(t, schema, prefix, auth);
  const b = await clusterNode(t, schema, prefix, auth);
  const cred = await a.identity.issueGatewayCredential('gw-auth', { actor: 'test' });
  const reader = await b.identity.createAccount({ username: 'ioc-reader', kind: 'consumer' }, { actor: 'test' });

  const consumer = await mqtt.connectAsync(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: 'ioc-reader', username: reader.username, password: reader.password, reconnectPeriod: 0 });
  t.teardown(() => consumer.endAsync(true));
  await consumer.subscribeAsync('ioc/v1/gw/gw-auth/telemetry', { qos: 1 });
  const got = onceOf(consumer, 'message');
  const gw = await gatewayClient(t, b.mqttPort, 'gw-auth', { username: cred.username, password: cred.password });
  await gw.publishAsync('ioc/v1/gw/gw-auth/telemetry', telemetry(1), { qos: 1 });
  t.equal((await got)[0], 'ioc/v1/gw/gw-auth/telemetry', 'issued on A, accepted on B; read on A by an account made on B');

  const closed = onceOf(gw, 'close');
  await a.identity.revokeGateway('gw-auth', { actor: 'test' });
  await closed;
  t.pass('revoked on A, closed on B');
  const again = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.mqttPort}`, { clientId: 'gw-auth', username: cred.username, password: cred.password, reconnectPeriod: 0 }).then(
    (c) => (c.end(true), 'accepted'),
    (err: Error) => err.message,
  );
  t.match(again, /Not authorized|Bad username/, 'and refused at its next login on B');
});
