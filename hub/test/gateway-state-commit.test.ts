/**
 * Gateway connection state in group commits (issue 14.12 / 13): a burst of
 * connects and disconnects is written in few transactions, not one each;
 * every gateway ends in its last state; a gateway's own changes are never
 * reordered; telemetry committed during the burst is neither lost nor
 * reordered; a read after a change sees it. SQLite (HubStore) and
 * PostgreSQL (PgTelemetryStore, skipped with one line where none answers).
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { silentLogger } from '../../lib/index.js';
import { PG_URL, pgSchema, skipUnlessPostgres } from '../../test/support/postgres.js';
import type { GatewayStatus } from '../../contract/index.js';
import { HubStore } from '../store/sqlite/hub-store.js';
import { PgTelemetryStore } from '../store/postgres/pg-telemetry-store.js';
import type { TelemetryPort } from '../store/port.js';

const GATEWAYS = 2_000;
const gw = (i: number): string => `gw-${String(i).padStart(5, '0')}`;
const status = (version: string): GatewayStatus => ({ v: 1, state: 'online', ts: 1_000, version }) as unknown as GatewayStatus;

type StateStore = TelemetryPort & { gatewayStates: { counters: { commits: number; changes: number; rows: number } } };

function suite(t: Test, name: string, open: (t: Test) => Promise<StateStore>): void {
  t.test(`${name}: a burst of ${GATEWAYS} connects and disconnects`, async (t) => {
    const store = await open(t);
    const before = { ...store.gatewayStates.counters };
    const calls: Array<Promise<unknown>> = [];
    const telemetry: Array<Promise<'stored' | 'duplicate'>> = [];
    // As the broker does: connect events fire without waiting, telemetry arrives in between.
    for (let i = 0; i < GATEWAYS; i++) {
      calls.push(store.setGatewayState(gw(i), { online: true }));
      if (i % 10 === 0) telemetry.push(store.commitBatch({ gateway: gw(i), epoch: 'e', seq: 1, historical: false, readings: [{ device: 'd', point: 'p', ts: 1_000, value: 1, quality: 'good' }] }));
      if (i % 50 === 0) await new Promise((r) => setImmediate(r)); // spread over several turns, as real connects are
    }
    for (let i = 0; i < GATEWAYS; i++) {
      // Every gateway goes offline; odd ones come back (online → offline → online), every third sends a status too.
      calls.push(store.setGatewayState(gw(i), { online: false }));
      if (i % 10 === 0) telemetry.push(store.commitBatch({ gateway: gw(i), epoch: 'e', seq: 2, historical: false, readings: [{ device: 'd', point: 'p', ts: 2_000, value: 2, quality: 'good' }] }));
      if (i % 3 === 0) calls.push(store.setGatewayState(gw(i), { status: status(`v${i}`) }));
      if (i % 2 === 1) calls.push(store.setGatewayState(gw(i), { online: true }));
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(calls);
    const results = await Promise.all(telemetry);
    const c = store.gatewayStates.counters;
    t.equal(c.changes - before.changes, calls.length, 'every change was asked for');
    const commits = c.commits - before.commits;
    t.ok(commits > 0 && commits <= 200, `state written in ${commits} transactions for ${calls.length} changes (far below ${GATEWAYS})`);
    t.ok(c.rows - before.rows < calls.length, 'changes of one gateway in the same turn share a row');

    const rows = await store.listGateways();
    t.equal(rows.length, GATEWAYS, 'every gateway has a row');
    const wrong = rows.filter((r) => {
      const i = Number(r.id.slice(3));
      return r.online !== (i % 2 === 1) || (i % 3 === 0 ? r.status?.version !== `v${i}` : r.status !== null);
    });
    t.same(wrong.map((r) => r.id).slice(0, 5), [], 'each gateway ends in its last state: odd ones online, even ones offline, statuses kept');

    t.ok(results.every((r) => r === 'stored'), 'every telemetry batch committed during the burst is stored');
    for (const i of [0, 10, 1_990]) {
      t.equal((await store.readingCounts(gw(i))).total, 2, `${gw(i)}: both batches stored`);
      t.match(await store.latest({ gateway: gw(i) }), [{ ts: 2_000, value: 2 }], `${gw(i)}: the later batch is the latest (not reordered)`);
    }
  });

  t.test(`${name}: one gateway's changes across commits keep their order; a read sees the last change`, async (t) => {
    const store = await open(t);
    const first = store.setGatewayState('gw-a', { online: true });
    await new Promise((r) => setImmediate(r)); // the first commit has started: the next ones go to later commits
    const rest = [store.setGatewayState('gw-a', { online: false }), store.setGatewayState('gw-a', { online: true })];
    // Not awaited: the read itself must see them.
    t.match(await store.listGateways(), [{ id: 'gw-a', online: true }], 'online → offline → online reads online');
    await Promise.all([first, ...rest]);
    void store.setGatewayState('gw-a', { online: false });
    t.match(await store.listGateways(), [{ id: 'gw-a', online: false }], 'a read right after a disconnect sees it');
  });

  t.test(`${name}: a change to a closed store is refused with a clear error`, async (t) => {
    const store = await open(t);
    await store.stop();
    await t.rejects(store.setGatewayState('gw-a', { online: true }), { code: 'HUB_ERR_STORE_IO' });
  });
}

suite(t, 'SQLite', async (t) => {
  const store = new HubStore({ file: path.join(t.testdir(), 'hub.sqlite'), logger: silentLogger(), retentionTimer: false });
  await store.start();
  let stopped = false;
  const stop = store.stop.bind(store);
  store.stop = async () => {
    if (!stopped) await stop();
    stopped = true;
  };
  t.teardown(() => store.stop());
  return store;
});

const skip = await skipUnlessPostgres();
if (skip) {
  t.pass(skip);
} else {
  const openPg = async (t: Test, schema: string, node?: string): Promise<PgTelemetryStore> => {
    const store = new PgTelemetryStore({ connect: { url: PG_URL, schema }, logger: silentLogger(), retentionTimer: false, ...(node ? { node } : {}) });
    await store.start();
    let stopped = false;
    const stop = store.stop.bind(store);
    store.stop = async () => {
      if (!stopped) await stop();
      stopped = true;
    };
    t.teardown(() => store.stop());
    return store;
  };
  suite(t, 'PostgreSQL', (t) => openPg(t, pgSchema(t)));

  t.test('PostgreSQL cluster nodes: a disconnect only clears the row of the node that holds it, also within one group', async (t) => {
    const schema = pgSchema(t);
    const a = await openPg(t, schema, 'A');
    const b = await openPg(t, schema, 'B');
    await b.setGatewayState('gw-moved', { online: true });
    await b.setGatewayState('gw-held', { online: true });
    // On A in one turn: gw-held only disconnects (a stale connection: B holds it); gw-moved connects and disconnects.
    await Promise.all([a.setGatewayState('gw-held', { online: false }), a.setGatewayState('gw-moved', { online: true }), a.setGatewayState('gw-moved', { online: false })]);
    t.equal(a.gatewayStates.counters.commits, 1, 'one transaction on A');
    const rows = await a.listGateways();
    t.match(rows, [{ id: 'gw-held', online: true }, { id: 'gw-moved', online: false }], 'held by B stays online; taken by A then closed is offline');
  });

  t.test("PostgreSQL cluster nodes: the will of a dead node's gateway, published by a survivor, clears the row the dead node still names", async (t) => {
    const schema = pgSchema(t);
    const dead = await openPg(t, schema, 'A');
    const b = await openPg(t, schema, 'B');
    await dead.setGatewayState('gw-orphan', { online: true, status: { v: 1, state: 'online', ts: 1 } as never });
    await dead.setGatewayState('gw-stale', { online: true, status: { v: 1, state: 'online', ts: 1 } as never });
    const offline = { v: 1, state: 'offline', ts: 2 } as never;
    await b.setGatewayState('gw-orphan', { status: offline, online: false, deadNodeWill: true });
    await b.setGatewayState('gw-stale', { status: offline, online: false }); // a stale connection's: ignored
    const rows = await b.listGateways();
    t.match(rows, [
      { id: 'gw-orphan', online: false, status: { state: 'offline' } },
      { id: 'gw-stale', online: true, status: { state: 'online' } },
    ], "the dead node's will applies; another node's stale disconnect does not");
  });
}
