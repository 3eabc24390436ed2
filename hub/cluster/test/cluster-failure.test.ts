/**
 * Hub cluster failures (issue 16 item 1): a node killed with SIGKILL (its
 * gateways' last wills published by the survivor, the registry marks them
 * offline after the grace period unless they reconnected elsewhere), and
 * Redis lost under a node (no acknowledgement, readiness false with the
 * reason, all resumes when Redis returns, nothing lost or doubled).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { pgSchema, skipUnlessPostgres, PG_URL } from '../../../test/support/postgres.js';
import { waitFor } from '../../../test/support/wait.js';
import { tempDir } from '../../test/support.js';
import { api, clusterNode, gatewayClient, HEARTBEAT_MS, online, status, telemetry } from './cluster-support.js';
import { ownRedis, redisPrefix, REDIS_URL, skipUnlessRedis } from './redis-support.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const skip = (await skipUnlessPostgres()) || (await skipUnlessRedis());

t.test('a node killed with SIGKILL: the survivor publishes its gateways\' wills, they go offline unless they reconnected elsewhere', { skip }, async (t) => {
  const schema = pgSchema(t);
  const prefix = redisPrefix(t);
  const store = `${PG_URL}?schema=${schema}`;
  const b = await clusterNode(t, schema, prefix);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'node-child.ts'), store, REDIS_URL, prefix, String(HEARTBEAT_MS), tempDir(t, 'ioc-edge-node-a-')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const ready = await waitFor(() => /READY (\d+) (\d+) (\S+)/.exec(out), 'node A to start', 60_000);
  const aPort = Number(ready[1]);

  const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.mqttPort}`, { clientId: 'watcher', reconnectPeriod: 0 });
  t.teardown(() => watcher.endAsync(true));
  const states = new Map<string, string[]>();
  watcher.on('message', (tp, p) => {
    const gw = tp.split('/')[3]!;
    states.set(gw, [...(states.get(gw) ?? []), JSON.parse(p.toString()).state as string]);
  });
  await watcher.subscribeAsync('ioc/v1/gw/+/status', { qos: 1 });

  const stays = await gatewayClient(t, aPort, 'gw-stays');
  const moves = await gatewayClient(t, aPort, 'gw-moves');
  stays.stream.on('error', () => undefined);
  moves.stream.on('error', () => undefined);
  await waitFor(async () => (await online(b, 'gw-stays')) && (await online(b, 'gw-moves')), 'both online (seen from B)');
  await waitFor(() => b.broker.isConnected('gw-stays', null), 'B to know where gw-stays is');

  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  // gw-moves comes back on B before the grace period ends; gw-stays does not come back.
  await gatewayClient(t, b.mqttPort, 'gw-moves');

  await waitFor(() => states.get('gw-stays')?.at(-1) === 'offline', "gw-stays's last will, published by B", 30_000);
  // The will was committed before B forwarded it (ingest runs before the publish), whichever of the sweep and the will
  // came first: a will that came first clears the row the dead node still named (deadNodeWill; it was ignored before).
  await waitFor(async () => (await online(b, 'gw-stays')) === false, 'the registry marks gw-stays offline', 30_000);
  const rowStays = (await b.store.listGateways()).find((g) => g.id === 'gw-stays');
  t.equal(rowStays?.status?.state, 'offline', 'its stored status is the will');
  // Past the grace period (three heartbeats) and a will sweep (four): gw-moves is still online.
  await new Promise((r) => setTimeout(r, 10 * HEARTBEAT_MS));
  t.equal(await online(b, 'gw-moves'), true, 'gw-moves, reconnected on B, stays online');
  t.notOk(states.get('gw-moves')?.slice(1).includes('offline'), `no stale will of gw-moves after it came back (${states.get('gw-moves')?.join(',')})`);
  const gws = await api(b, 'GET', '/api/v1/gateways');
  t.equal(gws.status, 200);
});

t.test('Redis lost under a node: no PUBACK, readiness false with the reason; both resume when it returns, nothing lost or doubled', { skip }, async (t) => {
  const schema = pgSchema(t);
  const redis = await ownRedis(t);
  const prefix = redisPrefix(t, redis.url);
  const a = await clusterNode(t, schema, prefix, { redis: redis.url });
  const gw = mqtt.connect(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: 'gw-redis', reconnectPeriod: 200, clean: false });
  t.teardown(() => gw.endAsync(true));
  gw.on('error', () => undefined);
  await waitFor(() => gw.connected, 'gateway connected');
  await gw.publishAsync('ioc/v1/gw/gw-redis/telemetry', telemetry(1), { qos: 1 });
  t.equal((await api(a, 'GET', '/readyz')).status, 200);

  await redis.kill();
  const notReady = await waitFor(async () => {
    const r = await api(a, 'GET', '/readyz');
    return r.status === 503 ? r : null;
  }, 'readiness to turn false');
  t.match(notReady.body.reason, /Redis at 127\.0\.0\.1:\d+ unreachable/, `readiness says why (${JSON.stringify(notReady.body)})`);
  let acked = false;
  const second = gw.publishAsync('ioc/v1/gw/gw-redis/telemetry', telemetry(2), { qos: 1 }).then(() => (acked = true));
  await new Promise((r) => setTimeout(r, 1000));
  t.notOk(acked, 'no PUBACK while Redis is away');
  t.equal((await a.store.readingCounts('gw-redis')).total, 5, 'the batch was not committed either');

  await redis.start();
  await waitFor(() => acked, 'the PUBACK once Redis is back', 30_000);
  await second;
  await waitFor(async () => (await api(a, 'GET', '/readyz')).status === 200, 'ready again');
  const counts = await a.store.readingCounts('gw-redis');
  t.same(counts, { total: 10, distinct: 10 }, 'both batches stored once');
});

t.test('a node stops while Redis is away: the stop completes and nothing is left unhandled', { skip }, async (t) => {
  // Before the fix the bus's close sent QUIT on connections that were reconnecting: Aedes' close waited
  // for them to end, which never came (the node's stop hung for good), and QUIT's rejection was unhandled
  // (a fatal exit under the process policy).
  // Counted from here to 3 heartbeats after the stop; the listener stays for the rest of the file, and
  // writes a later one to stderr. This test also found an uncaught exception: a SUBSCRIBE's retained
  // messages read from Redis as it went away (about one run in three of this file, every CI run),
  // which ClusterPersistence now ends quietly (cluster-persistence.ts, createRetainedStream*).
  const unhandled: unknown[] = [];
  let counting = true;
  process.on('unhandledRejection', (e: unknown) => {
    if (counting) unhandled.push(e);
    else process.stderr.write(`# unhandled rejection after the stopped node's window: ${(e as Error)?.stack ?? String(e)}\n`);
  });
  const redis = await ownRedis(t);
  const hub = await clusterNode(t, pgSchema(t), redisPrefix(t, redis.url), { redis: redis.url });
  const clients: mqtt.MqttClient[] = [];
  for (let i = 0; i < 5; i++) {
    // Persistent sessions with wills and subscriptions: each leaves work for the bus and the persistence at close.
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, {
      clientId: `gw-stop-${i}`, clean: false, reconnectPeriod: 0,
      will: { topic: `ioc/v1/gw/gw-stop-${i}/status`, payload: status('offline'), qos: 1, retain: false },
    });
    c.on('error', () => undefined);
    await c.subscribeAsync(`ioc/v1/gw/gw-stop-${i}/cmd/#`, { qos: 1 });
    clients.push(c);
  }
  t.teardown(() => Promise.all(clients.map((c) => c.endAsync(true))));
  await redis.kill();
  await waitFor(() => hub.cluster?.health().ok === false || null, 'the node to notice Redis gone', 10_000);
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    hub.stop().then(() => 'stopped'),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still stopping after 60 s'), 60_000))),
  ]);
  clearTimeout(timer);
  t.equal(outcome, 'stopped', 'the node stopped');
  await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS)); // late rejections of the closed connections
  counting = false;
  t.same(unhandled.map((e) => (e as Error)?.message ?? String(e)), [], 'no unhandled rejection while stopping and for 3 heartbeats after');
});
