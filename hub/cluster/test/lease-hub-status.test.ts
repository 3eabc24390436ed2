/**
 * `ioc-edge hub status` and GET /api/v1/cluster (issue 16 item 5) on real
 * hubs: a SQLite hub shows itself holding every singleton; two hubs on one
 * PostgreSQL schema show both nodes, each singleton held by exactly one of
 * them, and when the holder stops the other takes its singletons over; a node
 * that stopped beating without saying so shows as DEAD (exit 3); viewers may
 * not read it; an unreachable hub is exit 1.
 */
import t, { type Test } from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { runCli } from '../../../test/support/cli.js';
import { PG_URL, pgClient, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { startHub, type Hub } from '../../index.js';
import { api, startSecureHub, tempDir } from '../../test/support.js';
import type { PgTelemetryStore } from '../../store/postgres/pg-telemetry-store.js';
import type { ClusterView } from '../nodes.js';

const skip = await skipUnlessPostgres();

async function hubOn(t: Test, store?: string): Promise<Hub> {
  const hub = await startHub({ dataDir: tempDir(t, 'ioc-edge-lease-'), logger: silentLogger(), mqttPort: 0, httpPort: 0, ...(store ? { store } : {}), singletons: { ttlMs: 1500, heartbeatMs: 500 } });
  t.teardown(() => hub.stop());
  return hub;
}

const view = async (hub: Hub): Promise<ClusterView> => (await api(hub, 'GET', '/api/v1/cluster')).body as ClusterView;

async function until<T>(fn: () => Promise<T>, ms = 20_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('single SQLite hub: one node, holding every singleton; CLI prints it', async (t) => {
  const hub = await hubOn(t);
  const v = await view(hub);
  t.equal(v.backend, 'sqlite');
  t.equal(v.nodes.length, 1);
  t.match(v.nodes[0], { id: v.self, alive: true, load: { connections: 0 } });
  t.ok(v.singletons.length > 0 && v.singletons.every((s) => s.live && s.holder === v.self), 'this node holds every singleton');
  const r = await runCli(['hub', 'status', '--api', `http://127.0.0.1:${hub.httpPort}`]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, new RegExp(`${v.self}  alive`));
  t.match(r.out, /SINGLETONS\n {2}\S+ {2}held by /);
});

t.test('viewers may not read the cluster status; operators may; an unreachable hub is exit 1', async (t) => {
  const hub = await startSecureHub(t, { singletons: { ttlMs: 1500 } });
  const op = await hub.identity.createApiToken({ name: 'duty', role: 'operator' }, { actor: 'test' });
  const viewer = await hub.identity.createApiToken({ name: 'wall', role: 'viewer' }, { actor: 'test' });
  t.match(await api(hub, 'GET', '/api/v1/cluster', { token: viewer.token }), { status: 403, body: { error: { code: 'HUB_ERR_FORBIDDEN' } } });
  t.match(await api(hub, 'GET', '/api/v1/cluster', { token: op.token }), { status: 200, body: { backend: 'sqlite' } });
  const json = await runCli(['hub', 'status', '--json', '--api', `http://127.0.0.1:${hub.httpPort}`, '--token', op.token]);
  t.equal(json.code, 0, json.err);
  t.equal((JSON.parse(json.out) as ClusterView).backend, 'sqlite');
  const port = hub.httpPort;
  await hub.stop();
  const down = await runCli(['hub', 'status', '--api', `http://127.0.0.1:${port}`]);
  t.equal(down.code, 1);
  t.match(down.err, /cannot reach the hub API/);
});

t.test('two hubs on one PostgreSQL schema: both listed, each singleton held once, taken over when its holder stops', { skip }, async (t) => {
  const schema = pgSchema(t, 'hubstatus');
  const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const a = await hubOn(t, url);
  const b = await hubOn(t, url);
  const both = await until(async () => {
    const v = await view(b);
    return v.nodes.filter((n) => n.alive).length === 2 && v.singletons.length > 0 && v.singletons.every((s) => s.live) ? v : null;
  });
  t.equal(both.backend, 'postgres');
  const ids = both.nodes.map((n) => n.id);
  t.equal(new Set(ids).size, 2, 'two distinct nodes');
  t.ok(both.singletons.some((s) => s.name === 'retention'), 'retention is a singleton');
  for (const s of both.singletons) t.ok(ids.includes(s.holder!), `${s.name} is held by one of the nodes`);
  const holds = both.nodes.flatMap((n) => n.holds).sort();
  t.same(holds, both.singletons.map((s) => s.name).sort(), 'each singleton held by exactly one node');
  const fromA = await view(a);
  t.same(fromA.singletons.map((s) => s.holder), both.singletons.map((s) => s.holder), 'either node answers the same');
  // Retention (partition drops) ran on the holder only: the store's own timer is off on both.
  const retentionHolder = both.singletons.find((s) => s.name === 'retention')!.holder;
  const [holderHub, otherHub] = fromA.self === retentionHolder ? [a, b] : [b, a];
  await until(async () => (holderHub.store as PgTelemetryStore).retained.runs >= 1);
  t.equal((otherHub.store as PgTelemetryStore).retained.runs, 0, 'the other node never ran retention');

  const cli = await runCli(['hub', 'status', '--api', `http://127.0.0.1:${a.httpPort}`]);
  t.equal(cli.code, 0, cli.err);
  for (const id of ids) t.match(cli.out, new RegExp(`${id}  alive`));

  // The node that answered as A stops (releasing its leases): B holds everything soon after.
  const idA = fromA.self;
  await a.stop();
  const after = await until(async () => {
    const v = await view(b);
    return v.singletons.every((s) => s.live && s.holder === v.self) ? v : null;
  });
  t.match(after.nodes.find((n) => n.id === idA), { alive: false, stoppedAt: Number }, 'A is shown as stopped');
  t.equal((await runCli(['hub', 'status', '--api', `http://127.0.0.1:${b.httpPort}`])).code, 0, 'a cleanly stopped node is no alarm');

  // A node that stops beating without saying so (killed) is DEAD: exit 3.
  const sql = await pgClient(t, schema);
  await sql.query("INSERT INTO cluster_nodes(id, host, pid, version, started_at, last_seen, load) VALUES ('ghost-1', 'h', 1, '0', now() - interval '1 hour', now() - interval '10 minutes', '{}')");
  const dead = await runCli(['hub', 'status', '--api', `http://127.0.0.1:${b.httpPort}`]);
  t.equal(dead.code, 3);
  t.match(dead.out, /ghost-1 {2}DEAD \(last seen 10 min ago\)/);
});
