/**
 * The hub cluster under load (issue 16, "Tests"): a real gateway uplink
 * (SQLite outbox, a few thousand readings a second, hub.url = both nodes)
 * while
 *   a. the node it is connected to is killed with SIGKILL: it moves to the
 *      other node; after the drain every reading produced is in PostgreSQL
 *      once;
 *   b. Redis is restarted (a private redis-server): acknowledging stops,
 *      resumes, nothing lost or doubled;
 *   c. PostgreSQL is unreachable for a node (a TCP proxy between the node and
 *      the shared server, cut and restored): acknowledging stops, readiness
 *      is false with the reason, it resumes, nothing lost.
 * Nodes run as child processes (load-node-child.ts) with required
 * authentication. Also asserts one node identity: the gateway row's `node`
 * is a `hub status` row's id, and that row's node id is the `node` label of
 * the node's metrics.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import type pg from 'pg';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Reading } from '../../../contract/index.js';
import { silentLogger } from '../../../lib/index.js';
import { SqliteOutbox } from '../../../gateway/outbox/sqlite-outbox.js';
import { Uplink } from '../../../gateway/uplink/uplink.js';
import { pgClient, pgSchema, skipUnlessPostgres, PG_URL } from '../../../test/support/postgres.js';
import { waitFor } from '../../../test/support/wait.js';
import { tempDir } from '../../test/support.js';
import type { ClusterView } from '../nodes.js';
import { HEARTBEAT_MS } from './cluster-support.js';
import { ownRedis, redisPrefix, REDIS_URL, skipUnlessRedis } from './redis-support.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const skip = (await skipUnlessPostgres()) || (await skipUnlessRedis());

/** Readings a second the synthetic source appends (every 25 ms). */
const RATE = 3000;
const TICK_MS = 25;

interface Node {
  mqttPort: number;
  httpPort: number;
  brokerId: string;
  token?: string;
  username?: string;
  password?: string;
  url: string;
  kill: () => Promise<void>;
  /** Whether the process is still running (a node that crashed is not). */
  alive: () => boolean;
}

/** Starts a cluster node in a child process (load-node-child.ts); killed with SIGKILL at teardown. */
async function spawnNode(t: Test, a: { store: string; redis: string; keyPrefix: string; nodeId: string; issue?: string }): Promise<Node> {
  const args = JSON.stringify({ ...a, heartbeatMs: HEARTBEAT_MS, dataDir: tempDir(t, 'ioc-edge-load-') });
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'load-node-child.ts'), args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  t.teardown(kill);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const m = await waitFor(() => (child.exitCode !== null ? Promise.reject(new Error(`node ${a.nodeId} exited: ${child.exitCode}`)) : /READY (\{.*\})\n/.exec(out)), `node ${a.nodeId} to start`, 60_000);
  const info = JSON.parse(m[1]!) as Omit<Node, 'url' | 'kill' | 'alive'>;
  return { ...info, url: `mqtt://127.0.0.1:${info.mqttPort}`, kill, alive: () => child.exitCode === null && child.signalCode === null };
}

/** A JSON API call with a bearer token. */
async function api(node: Node, p: string, token: string): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const r = await fetch(`http://127.0.0.1:${node.httpPort}${p}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await r.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (metrics)
  }
  return { status: r.status, body, text };
}

/** A gateway: real uplink over a SQLite outbox, fed by a synthetic source at {@link RATE}. */
async function loadedGateway(t: Test, id: string, urls: string[], cred: { username: string; password: string }) {
  const outbox = new SqliteOutbox({ file: path.join(tempDir(t, 'ioc-edge-load-gw-'), 'outbox.sqlite'), logger: silentLogger(), limits: { maxRows: 10_000_000, maxBytes: 1 << 30, maxAgeMs: 86_400_000 } });
  await outbox.start();
  const uplink = new Uplink({
    gatewayId: id, url: urls, username: cred.username, password: cred.password, logger: silentLogger(), outbox, version: 'test',
    batchSize: 500, window: 4, statusIntervalMs: 60_000, keepaliveS: 30, reconnect: { minMs: 100, maxMs: 1000 },
  });
  let acks = 0;
  uplink.on('batch-acked', () => acks++);
  await uplink.start();
  const base = Date.now() - 3_600_000;
  let produced = 0;
  const perTick = Math.round((RATE * TICK_MS) / 1000);
  const timer = setInterval(() => {
    const readings: Reading[] = [];
    for (let k = 0; k < perTick; k++, produced++) readings.push({ device: 'dev-1', point: 'p', ts: base + produced, value: produced, quality: 'good' });
    outbox.append(readings);
  }, TICK_MS);
  const stopLoad = (): void => clearInterval(timer);
  t.teardown(async () => {
    stopLoad();
    await uplink.stop().catch(() => undefined);
    await outbox.stop().catch(() => undefined);
  });
  return {
    uplink, outbox, stopLoad,
    get produced() {
      return produced;
    },
    get acks() {
      return acks;
    },
    /** Stops the source and waits until everything appended is acknowledged. */
    async drain(): Promise<void> {
      stopLoad();
      await waitFor(() => outbox.stats().rows === 0 && uplink.stats().inFlight === 0, 'the outbox to drain', 30_000);
    },
  };
}

/** Readings stored for a gateway, and how many distinct (series, ts). */
async function stored(c: pg.Client, gw: string): Promise<{ total: number; distinct: number }> {
  const r = await c.query<{ total: number; d: number }>('SELECT count(*)::int AS total, count(DISTINCT (r.series, r.ts))::int AS d FROM readings r JOIN series s ON s.id = r.series WHERE s.gateway = $1', [gw]);
  return { total: r.rows[0]!.total, distinct: r.rows[0]!.d };
}

/**
 * What the store holds once it stops changing (bounded wait). Seen in runs of
 * the SIGKILL case: right after the outbox "drained" the store lacked one
 * batch that appeared moments later. Cause: the outbox's stats did not count
 * the readings of a flush being written (neither buffered nor counted), so
 * the drain check saw 0 rows while the last readings were still on their way
 * to the outbox file, then to the hub — not an early acknowledgement (fixed in
 * sqlite-outbox.ts, tested there). The wait stays as a guard; a count short
 * at drain time is still noted.
 */
async function settled(t: Test, c: pg.Client, gw: string, produced: number): Promise<{ total: number; distinct: number }> {
  const atDrain = await stored(c, gw);
  if (atDrain.total !== produced) t.comment(`at drain time the store held ${atDrain.total} of ${produced} acknowledged readings`);
  let last = atDrain;
  const deadline = Date.now() + 10_000;
  while (last.total < produced && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    last = await stored(c, gw);
  }
  return last;
}

/** The runs of readings missing from the store (value = index of the reading produced), for the failure message. */
async function missing(c: pg.Client, gw: string, produced: number): Promise<string> {
  const r = await c.query<{ lo: number; hi: number }>(
    `SELECT lo, hi FROM (SELECT v.i AS lo, lead(v.i) OVER (ORDER BY v.i) AS hi FROM (SELECT r.value::int AS i FROM readings r JOIN series s ON s.id = r.series WHERE s.gateway = $1 UNION ALL SELECT -1 UNION ALL SELECT $2::int) v) g WHERE hi > lo + 1`,
    [gw, produced],
  );
  return r.rows.map((x) => `${x.lo + 1}..${x.hi - 1}`).join(', ') || 'none';
}

/** The store URL of a test schema, optionally through another host:port (the proxy). */
function storeUrl(schema: string, hostPort?: string): string {
  const u = new URL(PG_URL);
  if (hostPort) u.host = hostPort;
  u.searchParams.set('schema', schema);
  return u.toString();
}

/** Acknowledgements stop: none for a while once the node has turned not ready (an in-flight commit may finish first). */
async function noAcksFor(t: Test, gw: { acks: number }, ms: number, what: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  const before = gw.acks;
  await new Promise((r) => setTimeout(r, ms));
  t.equal(gw.acks, before, `no batch acknowledged while ${what}`);
}

t.test('a loaded gateway on a node killed with SIGKILL moves to the other node: every reading stored once; one node identity', { skip }, async (t) => {
  const schema = pgSchema(t, 'load');
  const prefix = redisPrefix(t);
  const store = storeUrl(schema);
  // Started together (the schema migration serialises on its advisory lock).
  const [a, b] = await Promise.all([
    spawnNode(t, { store, redis: REDIS_URL, keyPrefix: prefix, nodeId: 'load-a', issue: 'gw-load' }),
    spawnNode(t, { store, redis: REDIS_URL, keyPrefix: prefix, nodeId: 'load-b' }),
  ]);
  const token = a.token!;
  const db = await pgClient(t, schema);
  const gw = await loadedGateway(t, 'gw-load', [a.url, b.url], { username: a.username!, password: a.password! });
  await waitFor(() => gw.uplink.stats().hub === a.url && gw.acks >= 5, 'the gateway connected to A and acknowledged');

  // One identity: gateways.node is a hub status row; that row's node id is the node label of A's metrics.
  const row = await waitFor(async () => (await db.query<{ node: string | null; online: boolean }>('SELECT node, online FROM gateways WHERE id = $1', ['gw-load'])).rows[0]?.node ?? null, 'the gateway row to name its node');
  t.equal(row, a.brokerId, 'gateways.node is the broker id of node A');
  const view = (await api(b, '/api/v1/cluster', token)).body as unknown as ClusterView;
  const statusRow = view.nodes.find((n) => n.id === row);
  t.ok(statusRow, `hub status (asked on B) has a row with the gateway's node ${row}`);
  t.equal(statusRow?.nodeId, 'load-a', 'that row shows the node id of A');
  t.equal(statusRow?.bootId, a.brokerId.split('.').at(-1), 'and its boot id');
  const metrics = await api(a, '/metrics', token);
  t.match(metrics.text, new RegExp(`node="${statusRow?.nodeId}"`), 'A\'s metrics carry that node id as their node label');
  t.notMatch(metrics.text, /node="load-b"/, 'and not another node\'s');

  await a.kill();
  const ackedAtKill = gw.acks;
  await waitFor(() => gw.uplink.stats().hub === b.url && gw.acks > ackedAtKill + 5, 'the gateway to move to B and be acknowledged there', 30_000);
  t.equal(gw.uplink.stats().failovers >= 1, true, 'the uplink failed over');
  await new Promise((r) => setTimeout(r, 1000)); // more load on B
  await gw.drain();
  t.equal(gw.outbox.stats().dropped, 0, 'the outbox dropped nothing');
  const produced = gw.produced;
  t.ok(produced > 3000, `a few thousand readings produced (${produced})`);
  t.same(await settled(t, db, 'gw-load', produced), { total: produced, distinct: produced }, `every reading produced is stored, once (missing: ${await missing(db, 'gw-load', produced)}; appended ${gw.outbox.stats().appended}, acked ${gw.outbox.stats().acked})`);
  t.equal((await db.query<{ node: string }>('SELECT node FROM gateways WHERE id = $1', ['gw-load'])).rows[0]?.node, b.brokerId, 'the gateway row now names node B');
});

// A node died here of an unhandled rejection from commands aedes-persistence-redis does not await
// (putWill/delWill while Redis is away); cluster-persistence.ts now marks those handled.
t.test('Redis restarted under load: acknowledging stops, resumes, nothing lost or doubled', { skip }, async (t) => {
  const schema = pgSchema(t, 'load');
  const redis = await ownRedis(t);
  const prefix = redisPrefix(t, redis.url);
  const store = storeUrl(schema);
  const [a, b] = await Promise.all([
    spawnNode(t, { store, redis: redis.url, keyPrefix: prefix, nodeId: 'redis-a', issue: 'gw-redis-load' }),
    spawnNode(t, { store, redis: redis.url, keyPrefix: prefix, nodeId: 'redis-b' }),
  ]);
  const token = a.token!;
  const db = await pgClient(t, schema);
  const gw = await loadedGateway(t, 'gw-redis-load', [a.url, b.url], { username: a.username!, password: a.password! });
  await waitFor(() => gw.acks >= 5, 'acknowledged under load');

  await redis.kill();
  for (const n of [a, b]) {
    const r = await waitFor(async () => {
      const x = await api(n, '/readyz', token);
      return x.status === 503 ? x : null;
    }, 'readiness to turn false');
    t.match(r.body.reason, /Redis at 127\.0\.0\.1:\d+ unreachable/, `readiness says why (${JSON.stringify(r.body)})`);
  }
  await noAcksFor(t, gw, 1000, 'Redis is away');

  await redis.start();
  const acksBack = gw.acks;
  await waitFor(() => gw.acks > acksBack + 5 || !a.alive() || !b.alive(), 'acknowledging to resume', 30_000);
  t.ok(a.alive() && b.alive(), 'both node processes still run after the Redis restart');
  if (!a.alive() || !b.alive()) return;
  for (const n of [a, b]) await waitFor(async () => (await api(n, '/readyz', token)).status === 200, 'ready again', 30_000);
  await gw.drain();
  const produced = gw.produced;
  t.same(await settled(t, db, 'gw-redis-load', produced), { total: produced, distinct: produced }, `all ${produced} readings stored once`);
});

/** A TCP proxy to the shared PostgreSQL that the test cuts (every connection dropped, new ones closed at once) and restores. */
async function pgProxy(t: Test): Promise<{ hostPort: string; cut: () => void; restore: () => void }> {
  const target = new URL(PG_URL);
  const sockets = new Set<net.Socket>();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const [s, o] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(s);
      s.on('error', () => o.destroy());
      s.on('close', () => {
        sockets.delete(s);
        o.destroy();
      });
      s.pipe(o);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    hostPort: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut: () => {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore: () => {
      cut = false;
    },
  };
}

t.test('PostgreSQL unreachable for a node under load: acknowledging stops, readiness false with the reason, resumes, nothing lost', { skip }, async (t) => {
  const schema = pgSchema(t, 'load');
  const prefix = redisPrefix(t);
  const proxy = await pgProxy(t);
  const a = await spawnNode(t, { store: storeUrl(schema, proxy.hostPort), redis: REDIS_URL, keyPrefix: prefix, nodeId: 'pg-a', issue: 'gw-pg-load' });
  const token = a.token!;
  const db = await pgClient(t, schema);
  const gw = await loadedGateway(t, 'gw-pg-load', [a.url], { username: a.username!, password: a.password! });
  await waitFor(() => gw.acks >= 5, 'acknowledged under load');

  proxy.cut();
  const r = await waitFor(async () => {
    const x = await api(a, '/readyz', token);
    return x.status === 503 ? x : null;
  }, 'readiness to turn false', 30_000);
  t.match(r.body.reason, new RegExp(`PostgreSQL at ${proxy.hostPort.replace(/\./g, '\\.')}\\S* unreachable`), `readiness says why (${JSON.stringify(r.body)})`);
  await noAcksFor(t, gw, 1000, 'PostgreSQL is unreachable');

  proxy.restore();
  const acksBack = gw.acks;
  await waitFor(() => gw.acks > acksBack + 5, 'acknowledging to resume', 30_000);
  await waitFor(async () => (await api(a, '/readyz', token)).status === 200, 'ready again', 30_000);
  await gw.drain();
  const produced = gw.produced;
  t.same(await settled(t, db, 'gw-pg-load', produced), { total: produced, distinct: produced }, `all ${produced} readings stored once`);
});
