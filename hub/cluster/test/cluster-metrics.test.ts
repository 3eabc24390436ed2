/**
 * Metrics of a cluster node (hub/metrics.ts, issue 16 item 3): every series
 * carries the node's id as `node`; the cluster series come from H6's node
 * table (two PgNodes in one PostgreSQL schema = two nodes, one of them
 * stopped): nodes by state, each live member's connections and readings/s,
 * singletons without a live holder; dependency_up follows its source; the
 * limiter's fallbacks and the live relay's counters show. Without the
 * cluster sources none of these series exist (a single hub's /metrics is
 * unchanged). Real PostgreSQL; skipped with one line where none answers.
 */
import t, { type Test } from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { HubEvents } from '../../hub-events.js';
import { HubMetrics, type HubMetricsSources } from '../../metrics.js';
import type { TelemetryPort } from '../../store/port.js';
import { migrate } from '../../store/postgres/migrations.js';
import { PgPool } from '../../store/postgres/pg-pool.js';
import { PgLeases } from '../lease.js';
import { PgNodes } from '../nodes.js';

/** The store parts the metrics read (counters and two queries), empty. */
const store = {
  counters: { commits: 0, batches: 0, readings: 0, duplicates: 0 },
  listGateways: async () => [],
  activeAlarmCounts: async () => [],
} as unknown as TelemetryPort;

function metrics(extra: Partial<HubMetricsSources> = {}): HubMetrics {
  return new HubMetrics({ store, events: new HubEvents(), mqttClients: () => 3, oversized: () => 0, live: () => ({ clients: 0, messages: 0, dropped: 0 }), ...extra });
}

/** The value of one series in the exposition text (labels in the order prom-client writes them), or undefined. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const skip = await skipUnlessPostgres();

async function pool(t: Test, schema: string): Promise<PgPool> {
  const p = new PgPool({ url: PG_URL, schema, max: 2 }, silentLogger());
  t.teardown(() => p.end());
  return p;
}

t.test('node label, cluster members from the node table, dependencies, limiter and relay counters', { skip }, async (t) => {
  const schema = pgSchema(t, 'cm');
  const a = await pool(t, schema);
  await migrate(a);
  const b = await pool(t, schema);
  const c = await pool(t, schema);
  const leases = new PgLeases(a);
  const mk = (db: PgPool, id: string, connections: number) => new PgNodes({ db, leases: new PgLeases(db), id, version: 't', logger: silentLogger(), load: () => ({ connections, readingsTotal: 0 }), heartbeatMs: 60_000 });
  const na = mk(a, 'node-a', 120);
  const nb = mk(b, 'node-b', 80);
  const nc = mk(c, 'node-c', 5);
  await na.start();
  await nb.start();
  await nc.start();
  await nc.stop(); // left cleanly
  t.teardown(async () => {
    await na.stop();
    await nb.stop();
  });
  await leases.acquire('retention', 'node-a', 60_000);
  const gone = await leases.acquire('rollouts', 'node-b', 60_000);
  await leases.release(gone!); // a singleton nobody holds now
  let redisUp = true;
  const m = metrics({
    nodeId: 'node-a', cluster: () => na.view(), dependencies: () => ({ postgres: true, redis: redisUp }),
    limiterFallbacks: () => 7, liveRelay: () => ({ published: 11, received: 13, malformed: 0 }),
  });
  let text = await m.text();
  t.equal(value(text, 'ioc_edge_hub_mqtt_clients_connected{node="node-a"}'), 3, 'every series carries the node label');
  t.equal(value(text, 'ioc_edge_cluster_nodes{state="alive",node="node-a"}'), 2);
  t.equal(value(text, 'ioc_edge_cluster_nodes{state="stopped",node="node-a"}'), 1);
  t.equal(value(text, 'ioc_edge_cluster_nodes{state="dead",node="node-a"}'), 0);
  t.equal(value(text, 'ioc_edge_cluster_member_connections{member="node-a",node="node-a"}'), 120);
  t.equal(value(text, 'ioc_edge_cluster_member_connections{member="node-b",node="node-a"}'), 80, 'the other node\'s load, read on node a');
  t.equal(value(text, 'ioc_edge_cluster_member_connections{member="node-c",node="node-a"}'), undefined, 'a stopped node has no load series');
  t.equal(value(text, 'ioc_edge_cluster_member_readings_per_second{member="node-b",node="node-a"}'), 0);
  t.equal(value(text, 'ioc_edge_cluster_singletons_unheld{node="node-a"}'), 1, 'the released singleton has no holder');
  t.equal(value(text, 'ioc_edge_hub_dependency_up{dependency="redis",node="node-a"}'), 1);
  t.equal(value(text, 'ioc_edge_hub_login_limiter_fallbacks_total{node="node-a"}'), 7);
  t.equal(value(text, 'ioc_edge_hub_live_relay_received_total{node="node-a"}'), 13);
  redisUp = false;
  text = await m.text();
  t.equal(value(text, 'ioc_edge_hub_dependency_up{dependency="redis",node="node-a"}'), 0, 'Redis gone shows at the next scrape');
  t.equal(value(text, 'ioc_edge_hub_dependency_up{dependency="postgres",node="node-a"}'), 1);
});

t.test('a single hub: no node label, no cluster series; a failing cluster view leaves the rest of /metrics intact', async (t) => {
  const text = await metrics().text();
  t.equal(value(text, 'ioc_edge_hub_mqtt_clients_connected'), 3);
  t.notMatch(text, /ioc_edge_cluster_|node="|ioc_edge_hub_dependency_up/);
  const broken = await metrics({ nodeId: 'n1', cluster: async () => Promise.reject(new Error('PostgreSQL away')) }).text();
  t.equal(value(broken, 'ioc_edge_hub_mqtt_clients_connected{node="n1"}'), 3, 'the node\'s own series are still served');
  t.notMatch(broken, /ioc_edge_cluster_member_connections\{/, 'no stale member series');
});
