/**
 * Leases in PostgreSQL (hub/cluster/lease.ts), two holders = two pools:
 * acquire/renew/release by the database clock, epochs as fencing tokens, a
 * stale holder's write refused, the runner running work on one node only,
 * a failed renewal stopping the work, a stopped holder handing over, the
 * single-node runner, and bad settings refused. The SIGKILL/SIGSTOP
 * takeovers of another process are in lease-takeover.test.ts.
 */
import { once } from 'node:events';
import t, { type Test } from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, pgClient, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { migrate } from '../../store/postgres/migrations.js';
import { PgPool } from '../../store/postgres/pg-pool.js';
import { checkLeaseArgs, every, LeaseRunner, LocalSingletons, PgLeases, type SingletonContext } from '../lease.js';

const skip = await skipUnlessPostgres();

/** Two pools on one fresh, migrated schema: node A and node B. */
async function twoNodes(t: Test): Promise<{ a: PgPool; b: PgPool; schema: string }> {
  const schema = pgSchema(t, 'lease');
  const a = new PgPool({ url: PG_URL, schema, max: 3 }, silentLogger());
  const b = new PgPool({ url: PG_URL, schema, max: 3 }, silentLogger());
  t.teardown(async () => {
    await a.end();
    await b.end();
  });
  await migrate(a);
  return { a, b, schema };
}

/** Polls `fn` until it is truthy (every 20 ms, up to `ms`). */
async function until<T>(fn: () => Promise<T> | T, ms = 10_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('acquire, renew, release by the database clock; every acquisition a new epoch', { skip }, async (t) => {
  const { a, b } = await twoNodes(t);
  const la = new PgLeases(a);
  const lb = new PgLeases(b);
  const first = (await la.acquire('retention', 'node-a', 60_000))!;
  t.match(first, { name: 'retention', holder: 'node-a', epoch: 1 });
  t.equal(await lb.acquire('retention', 'node-b', 60_000), null, 'held by A: B does not get it');
  const renewed = await la.renew(first, 60_000);
  t.ok(renewed && renewed.expiresAt >= first.expiresAt, 'the holder renews');
  t.equal(await lb.renew({ ...first, holder: 'node-b' }, 60_000), null, 'another holder cannot renew it');
  t.equal(await la.release(first), true);
  t.equal(await la.release(first), false, 'released once');
  const second = await lb.acquire('retention', 'node-b', 60_000);
  t.match(second, { holder: 'node-b', epoch: 2 }, 'a release keeps the row: the epoch goes on');
  t.equal(await la.renew(first, 60_000), null, 'the old holder cannot renew a lease it released');
  const rows = await la.list();
  t.match(rows, [{ name: 'retention', holder: 'node-b', epoch: 2, live: true }]);

  // Expiry: a short ttl runs out and another holder takes over (by the database's clock).
  const short = (await la.acquire('waves', 'node-a', 300))!;
  t.equal(short.epoch, 1);
  const taken = await until(() => lb.acquire('waves', 'node-b', 60_000));
  t.match(taken, { holder: 'node-b', epoch: 2 }, 'taken over after the ttl');
  t.equal(await la.renew(short, 60_000), null, 'the expired holder cannot renew');
});

t.test('two nodes asking at once: one winner', { skip }, async (t) => {
  const { a, b } = await twoNodes(t);
  const la = new PgLeases(a);
  const lb = new PgLeases(b);
  const got = await Promise.all([la.acquire('x', 'node-a', 60_000), lb.acquire('x', 'node-b', 60_000), la.acquire('y', 'node-a', 60_000), lb.acquire('y', 'node-b', 60_000)]);
  t.equal(got.slice(0, 2).filter(Boolean).length, 1, 'one holder of x');
  t.equal(got.slice(2).filter(Boolean).length, 1, 'one holder of y');
});

t.test('fencing: a stale holder\'s write is refused, the current holder\'s goes through', { skip }, async (t) => {
  const { a, b, schema } = await twoNodes(t);
  const sql = await pgClient(t, schema);
  await sql.query('CREATE TABLE fenced_writes (who text NOT NULL)');
  const la = new PgLeases(a);
  const lb = new PgLeases(b);
  const stale = (await la.acquire('waves', 'node-a', 300))!;
  const current = (await until(() => lb.acquire('waves', 'node-b', 60_000)))!;
  const write = (db: PgPool, leases: PgLeases, lease: typeof stale, who: string) => db.transaction(async (c) => {
    await leases.fence(c, lease);
    await c.query('INSERT INTO fenced_writes(who) VALUES ($1)', [who]);
  });
  await t.rejects(write(a, la, stale, 'a'), { code: 'HUB_ERR_LEASE_LOST', message: /held by node-b under epoch 2/ }, 'the paused ex-holder (epoch 1) is refused');
  await write(b, lb, current, 'b');
  t.same((await sql.query('SELECT who FROM fenced_writes')).rows, [{ who: 'b' }], 'only the holder\'s write is stored');
  await lb.release(current);
  await t.rejects(write(b, lb, current, 'b2'), { code: 'HUB_ERR_LEASE_LOST', message: /released/ }, 'a released lease fences too');
  await t.rejects(write(b, lb, { ...current, name: 'never' }, 'b3'), { code: 'HUB_ERR_LEASE_LOST', message: /unknown/ });
});

t.test('runner: the work runs on one node only; a stopped holder hands over; a lost lease stops the work', { skip }, async (t) => {
  const { a, b, schema } = await twoNodes(t);
  const sql = await pgClient(t, schema);
  let running = 0;
  let most = 0;
  const ran: string[] = [];
  const aborted: string[] = [];
  const work = (node: string) => async (ctx: SingletonContext): Promise<void> => {
    running++;
    most = Math.max(most, running);
    ran.push(`${node}:${ctx.lease!.epoch}`);
    await once(ctx.signal, 'abort');
    aborted.push(node);
    running--;
  };
  // A ttl of 2 s: renewals every 667 ms leave A 1.3 s of slack, so a loaded CI machine (3 test files at once)
  // does not stall A past its deadline (with 600 ms, a 400 ms stall once made A lose and re-take the lease).
  const ra = new LeaseRunner({ leases: new PgLeases(a), holder: 'node-a', logger: silentLogger(), ttlMs: 2000, retryMs: 50 });
  const rb = new LeaseRunner({ leases: new PgLeases(b), holder: 'node-b', logger: silentLogger(), ttlMs: 2000, retryMs: 50 });
  t.teardown(async () => {
    await ra.stop();
    await rb.stop();
  });
  ra.singleton('job', work('node-a'));
  rb.singleton('job', work('node-b'));
  await ra.start();
  await until(() => ran.length === 1);
  await rb.start();
  // More than a ttl passes: A keeps renewing (three times at least), B keeps asking and never runs it.
  await until(async () => (await sql.query("SELECT renewed_at > acquired_at + interval '2.5 second' AS long FROM leases WHERE name = 'job'")).rows[0]?.long, 15_000);
  t.same(ran, ['node-a:1'], 'only A ran the work while it held the lease');
  t.equal(most, 1);
  t.match(ra.states(), [{ name: 'job', held: true, epoch: 1 }]);
  t.match(rb.states(), [{ name: 'job', held: false, epoch: null }]);

  await ra.stop(); // releases: B need not wait for the ttl
  await until(() => ran.length === 2);
  t.same(ran, ['node-a:1', 'node-b:2'], 'B took over under the next epoch');
  t.same(aborted, ['node-a'], 'A\'s work was stopped before B\'s started');
  t.equal(most, 1, 'never two at once');

  // The lease is taken from B behind its back (as if B had been paused past its ttl): its next renewal fails and its work stops.
  await sql.query("UPDATE leases SET holder = 'node-x', epoch = epoch + 1, expires_at = now() + interval '1 hour' WHERE name = 'job'");
  await until(() => aborted.length === 2);
  t.same(aborted, ['node-a', 'node-b'], 'B\'s work stopped once its renewal failed');
  t.match(rb.states(), [{ held: false }]);
});

t.test('a holder whose event loop stalled past the ttl reads as not holding before any of its timers ran', { skip }, async (t) => {
  const { a } = await twoNodes(t);
  const r = new LeaseRunner({ leases: new PgLeases(a), holder: 'node-a', logger: silentLogger(), ttlMs: 400, retryMs: 50 });
  t.teardown(() => r.stop());
  r.singleton('job', async (ctx) => {
    await once(ctx.signal, 'abort');
  });
  await r.start();
  await until(() => r.states()[0]!.held);
  // A stall (GC pause, CPU starvation): nothing else runs for longer than the ttl.
  const end = performance.now() + 450;
  while (performance.now() < end);
  t.equal(r.states()[0]!.held, false, 'not held by the local deadline, though no renewal has failed yet');
});

t.test('every(): a periodic task that stops with the lease; a failing run is retried', async (t) => {
  const ac = new AbortController();
  let n = 0;
  const work = every(5, async () => {
    n++;
    if (n === 2) throw new Error('transient');
    if (n === 4) ac.abort();
  }, silentLogger(), 'test task');
  await work({ signal: ac.signal, lease: null, fence: async () => undefined });
  t.equal(n, 4, 'ran on after the failing run, stopped at the abort');
});

t.test('single-node hub: LocalSingletons always holds and stops the work at stop()', async (t) => {
  const local = new LocalSingletons(silentLogger());
  let started = 0;
  let stopped = 0;
  local.singleton('retention', async (ctx) => {
    started++;
    t.equal(ctx.lease, null);
    await ctx.fence({} as never); // a no-op without a database
    await once(ctx.signal, 'abort');
    stopped++;
  });
  t.match(local.states(), [{ name: 'retention', held: false }], 'not before start');
  await local.start();
  t.equal(started, 1);
  t.match(local.states(), [{ name: 'retention', held: true }]);
  await local.stop();
  t.equal(stopped, 1);
  t.throws(() => local.singleton('retention', async () => undefined), { code: 'HUB_ERR_CLUSTER_CONFIG', message: /registered twice/ });
});

t.test('bad lease settings are refused with HUB_ERR_CLUSTER_CONFIG', async (t) => {
  t.throws(() => checkLeaseArgs({ name: 'Has Space' }), { code: 'HUB_ERR_CLUSTER_CONFIG', message: /lease name 'Has Space'/ });
  t.throws(() => checkLeaseArgs({ name: '' }), { code: 'HUB_ERR_CLUSTER_CONFIG' });
  t.throws(() => checkLeaseArgs({ holder: 'a b' }), { code: 'HUB_ERR_CLUSTER_CONFIG', message: /node id 'a b'/ });
  t.throws(() => checkLeaseArgs({ holder: 'x'.repeat(101) }), { code: 'HUB_ERR_CLUSTER_CONFIG' });
  t.throws(() => checkLeaseArgs({ ttlMs: 10 }), { code: 'HUB_ERR_CLUSTER_CONFIG', message: /ttl 10 ms/ });
  t.throws(() => checkLeaseArgs({ ttlMs: 1.5e3 + 0.5 }), { code: 'HUB_ERR_CLUSTER_CONFIG' });
  t.throws(() => new LeaseRunner({ leases: {} as PgLeases, holder: 'ok', logger: silentLogger(), ttlMs: 100 }), { code: 'HUB_ERR_CLUSTER_CONFIG' });
  t.doesNotThrow(() => checkLeaseArgs({ name: 'firmware-rollouts', holder: 'hub-1.example-42', ttlMs: 15_000 }));
});
