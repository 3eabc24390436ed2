/**
 * No gateway chooses to be a rollout's canary (issue 13 item 8). A hostile
 * gateway named `000-…` declaring a device of the rolled-out model used to be
 * first of every rollout (targets sorted by id) and, by failing, stopped each
 * for everyone. Now the order is a seeded hash (recorded; reproducible), the
 * operator may name the canaries, and failures count per gateway with a
 * minimum of two: the `000-` gateway failing in a wave does not stop the
 * rollout, and failing as a (randomly drawn) canary holds it for an operator
 * with a reason that names one gateway.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../lib/index.js';
import { buildManifest, generateSigningKey, parsePrivateKey, signManifest } from '../../firmware-bridge/index.js';
import { orderTargets, planStages } from '../firmware/rollout-plan.js';
import { startHub, type Hub } from '../index.js';
import { FakeFwGateway } from './fw-fake-gateway.js';
import { tempDir } from './support.js';

const MODEL = 'sim-fc21-device';
const EVIL = '000-evil';
const HONEST = ['gw-01', 'gw-02', 'gw-03', 'gw-04', 'gw-05'];
const key = generateSigningKey();
const priv = parsePrivateKey(key.privateKeyPem);
const image = Buffer.alloc(8192, 0x11);
const signed = signManifest(buildManifest(image, { model: MODEL, version: '3.0.0', chunkSize: 4096 }), priv.key, priv.keyId);

type View = { id: string; state: string; reason: string | null; seed: string; canary: number; progress: Record<string, number>; jobs?: Array<{ gateway: string; stage: number; status: string }> };

async function until<T>(fn: () => T | Promise<T>, what: string, ms = 10_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function call<T = View>(hub: Hub, method: string, url: string, body?: unknown, type = 'application/json'): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}${url}`, { method, ...(body !== undefined ? { body: Buffer.isBuffer(body) ? body : JSON.stringify(body), headers: { 'content-type': type } } : {}) });
  return { status: res.status, body: (await res.json()) as T };
}

/** The hostile gateway and five honest ones, one device of the model each (the hostile one declares three). */
async function fleet(t: Test): Promise<{ hub: Hub; gws: Map<string, FakeFwGateway>; manifest: string }> {
  const hub = await startHub({ dataDir: path.join(tempDir(t), 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0, firmware: { reofferMs: 60_000 } });
  t.teardown(() => hub.stop());
  const gws = new Map<string, FakeFwGateway>();
  for (const id of [EVIL, ...HONEST]) {
    const gw = new FakeFwGateway(id, Array.from({ length: id === EVIL ? 3 : 1 }, (_, i) => ({ id: `dev-${i + 1}`, profile: MODEL })));
    await gw.connect(t, `mqtt://127.0.0.1:${hub.mqttPort}`);
    gws.set(id, gw);
  }
  await until(async () => (await hub.registry.listDevices()).length === 8, 'registry inventory');
  t.equal((await call(hub, 'PUT', '/api/v1/firmware/images', image, 'application/octet-stream')).status, 201);
  const m = await call<{ id: string }>(hub, 'POST', '/api/v1/firmware/manifests', signed);
  return { hub, gws, manifest: m.body.id };
}

/** Answers every offer: the hostile gateway fails each, the others succeed. Returns a stop function. */
function play(gws: Map<string, FakeFwGateway>): () => void {
  const answered = new Set<string>();
  const timer = setInterval(() => {
    for (const [id, gw] of gws) {
      for (const o of gw.offers) {
        if (answered.has(o.job)) continue;
        answered.add(o.job);
        void (id === EVIL ? gw.report(o, 'failed', 8, { error: { code: 'FW_ERR_FLASH_REJECTED', message: 'refused' } }) : gw.succeed(o));
      }
    }
  }, 20);
  return () => clearInterval(timer);
}

/** The first seed in `s0, s1, …` for which the hostile gateway is (or is not) the canary. */
function seedWhere(evilIsCanary: boolean): string {
  const targets = [EVIL, ...HONEST].flatMap((g) => Array.from({ length: g === EVIL ? 3 : 1 }, (_, i) => ({ gateway: g, device: `dev-${i + 1}` })));
  for (let i = 0; ; i++) {
    const ordered = orderTargets(targets, `s${i}`);
    const { stages } = planStages(ordered, { canary: 1, waveSize: 10 });
    if ((ordered[stages.indexOf(0)]!.gateway === EVIL) === evilIsCanary) return `s${i}`;
  }
}

t.test('the order is the seed’s: a gateway id does not make the canary', async (t) => {
  const targets = [EVIL, ...HONEST].map((g) => ({ gateway: g, device: 'dev-1' }));
  const firsts = new Map<string, number>();
  for (let i = 0; i < 600; i++) {
    const g = orderTargets(targets, `seed-${i}`)[0]!.gateway;
    firsts.set(g, (firsts.get(g) ?? 0) + 1);
  }
  t.equal(firsts.size, 6, 'every gateway is first for some seeds');
  t.ok((firsts.get(EVIL) ?? 0) < 200, `the 000- gateway is first about one time in six (${firsts.get(EVIL)} of 600), not always`);
  t.same(orderTargets(targets, 'x'), orderTargets([...targets].reverse(), 'x'), 'the same seed gives the same order whatever the input order');
  const many = [{ gateway: EVIL, device: 'a' }, { gateway: EVIL, device: 'b' }, { gateway: EVIL, device: 'c' }, { gateway: 'gw-01', device: 'a' }];
  for (let i = 0; i < 50; i++) {
    const ordered = orderTargets(many, `k${i}`);
    const { stages, canaries } = planStages(ordered, { canary: 3, waveSize: 10 });
    t.equal(canaries, 2, 'three canaries asked, two gateways: one canary per gateway');
    t.equal(new Set(ordered.filter((_, j) => stages[j] === 0).map((x) => x.gateway)).size, 2);
  }
});

t.test('the 000- gateway failing in a wave does not stop the rollout', async (t) => {
  const { hub, gws, manifest } = await fleet(t);
  const seed = seedWhere(false);
  const stop = play(gws);
  t.teardown(stop);
  const r = await call(hub, 'POST', '/api/v1/firmware/rollouts', { manifest, seed, waveSize: 10, maxFailurePercent: 10 });
  t.equal(r.status, 201);
  t.equal(r.body.seed, seed, 'the seed is recorded');
  const done = await until(async () => {
    const v = (await call(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body;
    return v.state === 'completed' || v.state === 'stopped' ? v : null;
  }, 'the rollout to end');
  t.equal(done.state, 'completed', done.reason ?? 'completed');
  t.match(done.progress, { updated: 5, failed: 3, failedGateways: 1 }, 'three failed devices are one failed gateway, below the minimum of two');
  t.not(done.jobs!.find((j) => j.stage === 0)!.gateway, EVIL);
});

t.test('the 000- gateway drawn as canary holds the rollout for an operator, naming one gateway', async (t) => {
  const { hub, gws, manifest } = await fleet(t);
  const seed = seedWhere(true);
  const stop = play(gws);
  t.teardown(stop);
  const r = await call(hub, 'POST', '/api/v1/firmware/rollouts', { manifest, seed, waveSize: 10 });
  const held = await until(async () => {
    const v = (await call(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body;
    return v.state === 'stopped' ? v : null;
  }, 'held');
  t.match(held.reason, /^canary failed: 000-evil\/dev-\d \(FW_ERR_FLASH_REJECTED\) — 1 of 1 canary gateway; held for an operator: resume to accept and go on, cancel to end$/);
  t.same(HONEST.map((g) => gws.get(g)!.offers.length), [0, 0, 0, 0, 0], 'nobody else was offered anything yet');
  t.equal((await call(hub, 'POST', `/api/v1/firmware/rollouts/${r.body.id}/resume`)).status, 200, 'the operator resumes');
  const done = await until(async () => {
    const v = (await call(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body;
    return v.state === 'completed' || (v.state === 'stopped' && v.reason !== held.reason) ? v : null;
  }, 'completed after resume');
  t.match(done, { state: 'completed', progress: { updated: 5, failedGateways: 1 } }, 'the rest of the fleet is updated');
});

t.test('operator-chosen canaries; an unknown one is refused', async (t) => {
  const { hub, gws, manifest } = await fleet(t);
  t.match(await call(hub, 'POST', '/api/v1/firmware/rollouts', { manifest, canaryDevices: ['gw-09/dev-1'] }), { status: 400, body: { error: { code: 'FW_ERR_NO_TARGETS', message: /gw-09\/dev-1 are not targets/ } } });
  const r = await call(hub, 'POST', '/api/v1/firmware/rollouts', { manifest, canaryDevices: ['gw-03/dev-1', 'gw-05/dev-1'], waveSize: 10 });
  t.match(r, { status: 201, body: { canary: 2, canaryDevices: ['gw-03/dev-1', 'gw-05/dev-1'] } });
  await until(() => gws.get('gw-03')!.offers.length === 1 && gws.get('gw-05')!.offers.length === 1, 'the two canaries offered');
  t.equal(gws.get(EVIL)!.offers.length, 0, 'the 000- gateway waits for the wave');
});
