/**
 * Firmware rollout waves as a cluster singleton (issue 16 item 2): two
 * FirmwareService instances (node A, node B) on one PostgreSQL schema, each
 * with its own pool and lease runner. Only the holder of `firmware-rollouts`
 * advances stages and re-offers; a rollout created and a report received on
 * the other node is driven by the holder from database state. The holder
 * loses its database mid-rollout (renewals fail): the other node takes over
 * after the ttl and finishes the rollout; every job is offered exactly once.
 */
import t, { type Test } from 'tap';
import { fwTopics, type FirmwareOffer } from '../../../contract/index.js';
import { buildManifest, generateSigningKey, parsePrivateKey, signManifest } from '../../../firmware-bridge/index.js';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import type { BrokerLink } from '../../config/config-service.js';
import { FirmwareService } from '../../firmware/firmware-service.js';
import type { AuditPort } from '../../store/state-ports.js';
import { migrate } from '../../store/postgres/migrations.js';
import { PgFirmwareDb, PgImageStore } from '../../store/postgres/pg-firmware.js';
import { PgPool } from '../../store/postgres/pg-pool.js';
import { every, LeaseRunner, PgLeases } from '../lease.js';

const skip = await skipUnlessPostgres();
const MODEL = 'sim-fc21-device';
const GATEWAYS = ['gw-1', 'gw-2', 'gw-3', 'gw-4'];
const key = generateSigningKey();
const priv = parsePrivateKey(key.privateKeyPem);
const image = Buffer.alloc(4096, 0x22);
const signed = signManifest(buildManifest(image, { model: MODEL, version: '2.0.0', chunkSize: 1024 }), priv.key, priv.keyId);
const who = { actor: 'test' };

/** A broker link that records what the service publishes and lets the test deliver messages to its subscriptions. */
function fakeLink(): BrokerLink & { offers: FirmwareOffer[]; deliver: (topic: string, payload: unknown) => void } {
  const handlers: Array<{ filter: string; fn: (topic: string, payload: Buffer) => void }> = [];
  const offers: FirmwareOffer[] = [];
  const matches = (filter: string, topic: string): boolean => {
    const f = filter.split('/');
    const p = topic.split('/');
    return f.length === p.length && f.every((x, i) => x === '+' || x === p[i]);
  };
  return {
    offers,
    async publish(topic, payload) {
      if (topic.endsWith('/fw/offer')) offers.push(JSON.parse(payload.toString()) as FirmwareOffer);
    },
    async subscribe(filter, fn) {
      handlers.push({ filter, fn });
      return async () => undefined;
    },
    deliver(topic, payload) {
      for (const h of handlers) if (matches(h.filter, topic)) h.fn(topic, Buffer.from(JSON.stringify(payload)));
    },
  };
}

const noAudit = { record: async () => undefined, list: async () => [], verify: async () => ({ ok: true, entries: 0, head: null }) } as unknown as AuditPort;

/** One hub node's firmware service and its lease runner. */
function node(t: Test, schema: string, holder: string): { pool: PgPool; svc: FirmwareService; runner: LeaseRunner; link: ReturnType<typeof fakeLink> } {
  const pool = new PgPool({ url: PG_URL, schema, max: 3 }, silentLogger());
  const link = fakeLink();
  const runner = new LeaseRunner({ leases: new PgLeases(pool), holder, logger: silentLogger(), ttlMs: 1500 });
  const svc = new FirmwareService({
    logger: silentLogger(), db: new PgFirmwareDb({ db: pool }), images: new PgImageStore({ db: pool }), audit: noAudit, broker: link,
    devices: async () => GATEWAYS.map((g) => ({ gateway: g, id: 'dev-1', profile: MODEL })),
    sites: async () => new Map(GATEWAYS.map((g) => [g, null])),
    reofferMs: 60_000,
    drivesRollouts: () => runner.states().some((s) => s.name === 'firmware-rollouts' && s.held),
  });
  runner.singleton('firmware-rollouts', every(100, () => svc.sweep(), silentLogger(), 'firmware rollouts'));
  t.teardown(async () => {
    await runner.stop().catch(() => undefined);
    await svc.stop();
    await pool.end().catch(() => undefined);
  });
  return { pool, svc, runner, link };
}

async function until<T>(fn: () => Promise<T> | T, what: string, ms = 15_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A gateway's report that a job finished, as node `to` receives it over MQTT. */
const updated = (to: { link: ReturnType<typeof fakeLink> }, o: FirmwareOffer, gateway: string): void =>
  to.link.deliver(fwTopics.state(gateway), { v: 1, job: o.job, device: o.device, seq: 99, ts: Date.now(), state: 'updated', result: 0, version: '2.0.0' });

t.test('rollout stages advance on the lease holder only, exactly once, and go on after the holder dies', { skip }, async (t) => {
  const schema = pgSchema(t, 'fwlease');
  const a = node(t, schema, 'node-a');
  const b = node(t, schema, 'node-b');
  await migrate(a.pool);
  await a.svc.start();
  await b.svc.start();
  await a.runner.start();
  await until(() => a.runner.states()[0]!.held, 'node A holding');
  await b.runner.start();

  await a.svc.uploadImage(image, who);
  const m = await a.svc.addManifest(signed, who);
  // Created through node B's API: B does not drive it, A (the holder) offers the canary.
  const r = await b.svc.createRollout({ manifest: m.id, canary: 1, waveSize: 2, seed: 'fixed' }, who);
  t.equal(r.progress.total, 4);
  await until(() => a.link.offers.length === 1, 'the canary offered by A');
  t.equal(b.link.offers.length, 0, 'B offered nothing');
  const gwOf = async (job: string): Promise<string> => (await b.svc.jobs(r.id)).find((j) => j.id === job)!.gateway;

  // The canary's report arrives at B; A advances to stage 1 (two jobs).
  updated(b, a.link.offers[0]!, await gwOf(a.link.offers[0]!.job));
  await until(() => a.link.offers.length === 3, 'stage 1 offered by A');

  // A loses its database (as if its node died): its renewal fails, its work stops; B takes over after the ttl.
  await a.pool.end();
  await until(() => b.runner.states()[0]!.held, 'node B holding');
  for (const o of a.link.offers.slice(1)) updated(b, o, await gwOf(o.job));
  await until(() => b.link.offers.length === 1, 'the last stage offered by B');
  updated(b, b.link.offers[0]!, await gwOf(b.link.offers[0]!.job));
  const done = await until(async () => {
    const v = await b.svc.view(r.id);
    return v?.state === 'completed' ? v : null;
  }, 'rollout completed');
  t.equal(done.state, 'completed');

  const jobs = await b.svc.jobs(r.id);
  t.same(jobs.map((j) => j.offers), [1, 1, 1, 1], 'every job offered exactly once');
  const offered = [...a.link.offers, ...b.link.offers].map((o) => o.job).sort();
  t.same(offered, jobs.map((j) => j.id).sort(), 'one offer message per job across both nodes');
  t.same(a.link.offers.map((o) => jobs.find((j) => j.id === o.job)!.stage), [0, 1, 1], 'A drove stages 0 and 1');
  t.same(b.link.offers.map((o) => jobs.find((j) => j.id === o.job)!.stage), [2], 'B drove stage 2 after taking over');
});

t.test('a stage decided from a stale read is dropped: a stalled engine cannot start a stage after an operator paused the rollout', { skip }, async (t) => {
  const schema = pgSchema(t, 'fwstale');
  const poolA = new PgPool({ url: PG_URL, schema, max: 3 }, silentLogger());
  const poolB = new PgPool({ url: PG_URL, schema, max: 3 }, silentLogger());
  t.teardown(async () => {
    await poolA.end().catch(() => undefined);
    await poolB.end().catch(() => undefined);
  });
  await migrate(poolA);
  // Node A drives the engine; its reads of a rollout's jobs can be held (a node that stalls between reading and writing).
  let hold: Promise<void> | null = null;
  let held = (): void => undefined;
  const realA = new PgFirmwareDb({ db: poolA });
  const dbA = new Proxy(realA, {
    get(target, prop) {
      if (prop === 'listJobs') {
        return async (q: Parameters<PgFirmwareDb['listJobs']>[0]) => {
          const jobs = await target.listJobs(q);
          if (hold && q.rollout !== undefined) {
            held();
            await hold;
          }
          return jobs;
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const make = (db: PgFirmwareDb, pool: PgPool, drives: boolean): { svc: FirmwareService; link: ReturnType<typeof fakeLink> } => {
    const link = fakeLink();
    const svc = new FirmwareService({
      logger: silentLogger(), db, images: new PgImageStore({ db: pool }), audit: noAudit, broker: link,
      devices: async () => GATEWAYS.map((g) => ({ gateway: g, id: 'dev-1', profile: MODEL })),
      sites: async () => new Map(GATEWAYS.map((g) => [g, null])),
      reofferMs: 60_000, drivesRollouts: () => drives,
    });
    t.teardown(() => svc.stop());
    return { svc, link };
  };
  const a = make(dbA, poolA, true);
  const b = make(new PgFirmwareDb({ db: poolB }), poolB, false);
  await a.svc.start();
  await b.svc.start();
  await a.svc.uploadImage(image, who);
  const m = await a.svc.addManifest(signed, who);
  const r = await b.svc.createRollout({ manifest: m.id, canary: 1, waveSize: 2, seed: 'fixed' }, who);
  await a.svc.sweep();
  t.equal(a.link.offers.length, 1, 'the canary is offered');
  const canary = (await b.svc.jobs(r.id)).find((j) => j.id === a.link.offers[0]!.job)!;

  // The canary succeeds; A reads the rollout and its jobs for the next step, and stalls there.
  let release = (): void => undefined;
  hold = new Promise<void>((resolve) => (release = resolve));
  const stalled = new Promise<void>((resolve) => (held = resolve));
  updated(a, a.link.offers[0]!, canary.gateway);
  await stalled;
  // Meanwhile an operator pauses the rollout through node B.
  const paused = await b.svc.pause(r.id, who);
  t.equal(paused.state, 'paused');
  hold = null;
  release();
  await until(async () => (await b.svc.jobs(r.id)).find((j) => j.id === canary.id)?.status === 'updated', 'the canary report stored');
  await a.svc.sweep(); // whatever A was doing has finished once its serial queue has run this pass
  const after = (await b.svc.view(r.id))!;
  t.equal(after.state, 'paused', 'the rollout stays paused');
  t.equal(a.link.offers.length, 1, 'no stage-1 offer went out from the stale decision');
  t.same((await b.svc.jobs(r.id)).filter((j) => j.stage === 1).map((j) => j.status), ['pending', 'pending'], 'stage 1 was not started');
});
