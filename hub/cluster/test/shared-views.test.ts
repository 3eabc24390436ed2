/**
 * Shared limits and views between two real hub nodes (issue 16 item 3): one
 * PostgreSQL schema, one Redis prefix, authentication required. An API token
 * made on node A works on node B and its revocation on A holds on B; a
 * guesser alternating wrong tokens (or MQTT secrets) between the nodes is
 * locked out at the count one node would lock it out at, on both nodes,
 * while the right token still works; the live stream of node B carries readings a gateway
 * committed on node A; /metrics of B carries its node label and the
 * cluster's two live nodes. Real PostgreSQL and Redis; skipped with one
 * line where either is absent.
 */
import mqtt from 'mqtt';
import t from 'tap';
import { pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { openSse } from '../../../test/support/sse.js';
import type { Hub } from '../../index.js';
import { clusterNode, telemetry } from './cluster-support.js';
import { redisPrefix, skipUnlessRedis } from './redis-support.js';

const skip = (await skipUnlessPostgres()) || (await skipUnlessRedis());

/** GET with a bearer token; the status. */
async function get(hub: Hub, path: string, token: string): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${hub.httpPort}${path}`, { headers: { authorization: `Bearer ${token}` } });
  await r.arrayBuffer();
  return r.status;
}

t.test('tokens, failed-login lockouts, live stream and metrics across two nodes', { skip }, async (t) => {
  const schema = pgSchema(t, 'views');
  const prefix = redisPrefix(t);
  const opts = { auth: { mode: 'required' as const, rateLimit: { maxFailures: 4 } } };
  const a = await clusterNode(t, schema, prefix, { ...opts, nodeId: 'node-a' });
  const b = await clusterNode(t, schema, prefix, { ...opts, nodeId: 'node-b' });

  // 1. A token made on A works on B; revoked on A, it is refused on B.
  const admin = await a.identity.createApiToken({ name: 'ops', role: 'admin' }, { actor: 'test' });
  t.equal(await get(b, '/api/v1/gateways', admin.token), 200, 'token made on node A accepted by node B');
  const short = await a.identity.createApiToken({ name: 'short', role: 'viewer' }, { actor: 'test' });
  t.equal(await get(b, '/api/v1/gateways', short.token), 200);
  await a.identity.revokeApiToken(short.id, { actor: 'test' });
  t.equal(await get(b, '/api/v1/gateways', short.token), 401, 'revoked on A, refused on B');

  // 2. A guesser alternating nodes: 4 wrong tries (2 per node) lock the (address, token id) pair on both.
  const wrong = `iet_${admin.id}.wrongsecretwrongsecret`;
  const seen: number[] = [];
  for (let i = 0; i < 4; i++) seen.push(await get(i % 2 ? b : a, '/api/v1/gateways', wrong));
  t.same(seen, [401, 401, 401, 401], 'four failures, two on each node: each answered 401');
  t.equal(await get(a, '/api/v1/gateways', wrong), 429, 'the fifth try is locked out on node A');
  t.equal(await get(b, '/api/v1/gateways', wrong), 429, 'and on node B');
  t.equal(await get(b, '/api/v1/gateways', admin.token), 200, 'the right token (verified before on B) still works');

  // 2b. The same for MQTT logins: wrong secrets for one gateway, alternating nodes, locked out at the fifth on both.
  await a.identity.issueGatewayCredential('gw-guessed');
  const guess = (hub: Hub): Promise<unknown> => mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: 'gw-guessed', username: 'gw-guessed', password: 'not-the-secret', reconnectPeriod: 0 }).then((c) => c.endAsync(true), (err: unknown) => err);
  for (let i = 0; i < 4; i++) await guess(i % 2 ? b : a);
  t.equal(a.mqttAuth.counters.lockedOut + b.mqttAuth.counters.lockedOut, 0, 'four wrong secrets (two per node) are each checked');
  await guess(b);
  await guess(a);
  t.equal(b.mqttAuth.counters.lockedOut, 1, 'the fifth, on node B, is refused unchecked (locked out)');
  t.equal(a.mqttAuth.counters.lockedOut, 1, 'and so is the next on node A');

  // 3. The live stream of node B carries what a gateway committed on node A.
  const gw = 'gw-live-1';
  const cred = await a.identity.issueGatewayCredential(gw);
  const stream = await openSse(`http://127.0.0.1:${b.httpPort}/api/v1/stream?gateway=${gw}&types=readings`, { token: admin.token });
  t.teardown(() => stream.close());
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: gw, username: cred.username, password: cred.password, reconnectPeriod: 0 });
  t.teardown(() => c.endAsync(true).catch(() => undefined));
  // The relay subscribes when the stream opens; publish until a batch comes through (the first may precede the subscription).
  let seq = 0;
  let got: { data: { seq: number; readings: unknown[] } } | null = null;
  while (!got && seq < 50) {
    await c.publishAsync(`ioc/v1/gw/${gw}/telemetry`, telemetry(++seq, 3), { qos: 1 });
    got = await stream.next((m) => m.event === 'readings', 500).catch(() => null);
  }
  t.ok(got, `node B streamed a batch committed on node A (after ${seq} batch(es))`);
  t.equal(got!.data.readings.length, 3);
  const more = ++seq;
  await c.publishAsync(`ioc/v1/gw/${gw}/telemetry`, telemetry(more, 3), { qos: 1 });
  const m = await stream.next((x) => x.event === 'readings' && x.data.seq === more);
  t.equal(m.data.seq, more, 'and the next one');
  t.equal(stream.messages.filter((x) => x.event === 'readings' && x.data.seq === more).length, 1, 'once');

  // 4. Metrics of node B: its node label, the cluster's two live nodes (node table), Redis and PostgreSQL up.
  const r = await fetch(`http://127.0.0.1:${b.httpPort}/metrics`, { headers: { authorization: `Bearer ${admin.token}` } });
  const text = await r.text();
  t.match(text, /ioc_edge_hub_mqtt_clients_connected\{node="node-b"\} \d/);
  t.match(text, /ioc_edge_cluster_nodes\{state="alive",node="node-b"\} 2/, 'two live nodes seen from node B');
  t.match(text, /ioc_edge_cluster_member_connections\{member="[^"]+",node="node-b"\}/);
  t.match(text, /ioc_edge_hub_dependency_up\{dependency="redis",node="node-b"\} 1/);
  t.match(text, /ioc_edge_hub_dependency_up\{dependency="postgres",node="node-b"\} 1/);
  t.match(text, /ioc_edge_hub_live_relay_received_total\{node="node-b"\} [1-9]/, 'node B received node A\'s updates');
});
