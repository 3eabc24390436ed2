/**
 * Hub firmware service through its API and MQTT, with stand-in gateways:
 * image and manifest upload checks, targeting, a canary then waves, a
 * rollout that stops itself past its failure threshold, pause / resume /
 * cancel, chunk serving only for a gateway's own jobs, re-offers after a sync.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../lib/index.js';
import { buildManifest, generateSigningKey, parsePrivateKey, signManifest } from '../../firmware-bridge/index.js';
import { startHub, type Hub } from '../index.js';
import { FakeFwGateway } from './fw-fake-gateway.js';
import { tempDir } from './support.js';

const MODEL = 'sim-fc21-device';
const key = generateSigningKey();
const priv = parsePrivateKey(key.privateKeyPem);
const image = Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 13) & 0xff));
const signed = signManifest(buildManifest(image, { model: MODEL, version: '2.0.0', chunkSize: 4096 }), priv.key, priv.keyId);

async function until<T>(fn: () => T | Promise<T>, what: string, ms = 10_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function api<T = Record<string, unknown>>(hub: Hub, method: string, url: string, body?: unknown, type = 'application/json'): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}${url}`, {
    method, ...(body !== undefined ? { body: Buffer.isBuffer(body) ? body : JSON.stringify(body), headers: { 'content-type': type } } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function setup(t: Test, gateways: Array<[string, number]>, hubOpts: { trustedKeys?: string[] } = {}): Promise<{ hub: Hub; gws: FakeFwGateway[]; manifestId: string }> {
  const hub = await startHub({ dataDir: path.join(tempDir(t), 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0, firmware: { reofferMs: 60_000, ...hubOpts } });
  t.teardown(() => hub.stop());
  const gws: FakeFwGateway[] = [];
  for (const [id, n] of gateways) {
    const gw = new FakeFwGateway(id, Array.from({ length: n }, (_, i) => ({ id: `dev-${i + 1}`, profile: MODEL })).concat([{ id: 'other', profile: 'flood-level-sensor' }]));
    await gw.connect(t, `mqtt://127.0.0.1:${hub.mqttPort}`);
    gws.push(gw);
  }
  const expected = gateways.reduce((s, [, n]) => s + n + 1, 0);
  await until(async () => (await hub.registry.listDevices()).length === expected, 'registry inventory');
  t.equal((await api(hub, 'PUT', '/api/v1/firmware/images', image, 'application/octet-stream')).status, 201);
  const m = await api<{ id: string }>(hub, 'POST', '/api/v1/firmware/manifests', signed);
  t.equal(m.status, 201);
  return { hub, gws, manifestId: m.body.id };
}

type View = { id: string; state: string; reason: string | null; stage: number; progress: Record<string, number> };

t.test('uploads: content-addressed image, manifest checks', async (t) => {
  const { hub } = await setup(t, [['gw-a', 1]], { trustedKeys: [key.publicKey] });
  const again = await api<{ created: boolean; sha256: string }>(hub, 'PUT', '/api/v1/firmware/images', image, 'application/octet-stream');
  t.same([again.status, again.body.created, again.body.sha256], [201, false, signed.manifest.sha256], 'same bytes, same address, stored once');
  t.match(await api(hub, 'POST', '/api/v1/firmware/manifests', { manifest: signed.manifest }), { status: 400, body: { error: { code: 'FW_ERR_UNSIGNED' } } });
  const other = generateSigningKey();
  const op = parsePrivateKey(other.privateKeyPem);
  t.match(await api(hub, 'POST', '/api/v1/firmware/manifests', signManifest(signed.manifest, op.key, op.keyId)), { status: 400, body: { error: { code: 'FW_ERR_UNTRUSTED_KEY' } } });
  t.match(await api(hub, 'POST', '/api/v1/firmware/manifests', { ...signed, manifest: { ...signed.manifest, version: '6.6.6' } }), { status: 400, body: { error: { code: 'FW_ERR_SIGNATURE' } } });
  const missing = signManifest(buildManifest(Buffer.from('not uploaded'), { model: MODEL, version: '3' }), priv.key, priv.keyId);
  t.match(await api(hub, 'POST', '/api/v1/firmware/manifests', missing), { status: 404, body: { error: { code: 'FW_ERR_IMAGE_NOT_FOUND' } } });
  t.match(await api(hub, 'PUT', '/api/v1/firmware/images', { x: 1 }), { status: 415 });
  t.match(await api(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: 'm-nope' }), { status: 404 });
  const list = await api<{ items: unknown[] }>(hub, 'GET', '/api/v1/firmware/manifests');
  t.equal(list.body.items.length, 1);
  const audit = await hub.audit.list({ action: 'firmware.' });
  t.ok(audit.some((a) => a.action === 'firmware.image.upload' && a.outcome === 'ok'));
  t.ok(audit.some((a) => a.action === 'firmware.manifest.add' && a.outcome === 'ok'));
  t.ok(audit.some((a) => a.outcome === 'error'), 'refused changes are audited too');
});

t.test('targeting: profile, site, list; wrong model and unknown devices are refused', async (t) => {
  const { hub, manifestId } = await setup(t, [['gw-a', 2], ['gw-b', 1]]);
  await hub.registry.updateGateway('gw-b', { site: 'north' });
  t.match(await api(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId, target: { profile: 'flood-level-sensor' } }), { status: 400, body: { error: { code: 'FW_ERR_WRONG_MODEL' } } });
  t.match(await api(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId, target: { devices: ['gw-a/other'] } }), { status: 400, body: { error: { code: 'FW_ERR_WRONG_MODEL', message: /gw-a\/other is a 'flood-level-sensor'/ } } });
  t.match(await api(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId, target: { devices: ['gw-z/dev-1'] } }), { status: 400, body: { error: { code: 'FW_ERR_NO_TARGETS' } } });
  t.match(await api(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId, target: { site: 'south' } }), { status: 400, body: { error: { code: 'FW_ERR_NO_TARGETS' } } });
  const bySite = await api<View>(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId, target: { site: 'north' } });
  t.equal(bySite.body.progress.total, 1);
  const byList = await api<View>(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId, target: { devices: ['gw-a/dev-1', 'gw-a/dev-2'] } });
  t.equal(byList.body.progress.total, 2);
  t.match(await api(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId }), { status: 409, body: { error: { code: 'FW_ERR_ROLLOUT_STATE', message: /already have an unfinished firmware job/ } } }, 'one unfinished job per device');
  await api(hub, 'POST', `/api/v1/firmware/rollouts/${bySite.body.id}/cancel`);
  await api(hub, 'POST', `/api/v1/firmware/rollouts/${byList.body.id}/cancel`);
  const all = await api<View>(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId });
  t.equal(all.body.progress.total, 3, 'default: every device of the manifest model');
});

t.test('a canary first, then waves, to completion; chunks only for a gateway’s own jobs', async (t) => {
  const { hub, gws, manifestId } = await setup(t, [['gw-a', 3], ['gw-b', 2]]);
  const [a, b] = gws as [FakeFwGateway, FakeFwGateway];
  const r = await api<View>(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId, canaryDevices: ['gw-a/dev-2'], waveSize: 2 });
  t.equal(r.status, 201);
  t.match(r.body, { canary: 1, canaryDevices: ['gw-a/dev-2'], seed: /^[0-9a-f]{16}$/ }, 'the operator chose the canary; the order of the rest is seeded and recorded');
  t.match(r.body, { state: 'running', stage: 0, progress: { total: 5, offered: 1, pending: 4 } });
  await until(() => a.offers.length === 1, 'canary offer');
  t.equal(b.offers.length, 0, 'only the canary is offered');
  const canary = a.offers[0]!;
  t.equal(canary.signed.signature?.keyId, priv.keyId);

  // Chunks: the holder gets data; another gateway asking for that job gets a refusal.
  await a.request(canary.job, canary.signed.manifest.sha256, [0, 9]);
  await until(() => a.frames.length === 2, 'two chunks');
  t.same(a.frames.map((f) => [f.kind, f.index, f.kind === 'data' ? f.data.length : 0]), [['data', 0, 4096], ['data', 9, 40_000 - 9 * 4096]]);
  await b.request(canary.job, canary.signed.manifest.sha256, [0]);
  await until(() => b.frames.length === 1, 'refusal frame');
  t.match(b.frames[0], { kind: 'error', error: { code: 'FW_ERR_TRANSFER', message: /holds no job/ } });

  await a.succeed(canary);
  // Waves follow the seeded order, not gateway ids: succeed whatever each wave offered.
  const succeeded = new Set([canary.job]);
  const finishOffered = async (): Promise<void> => {
    for (const gw of [a, b]) {
      for (const o of gw.offers) {
        if (succeeded.has(o.job)) continue;
        succeeded.add(o.job);
        await gw.succeed(o);
      }
    }
  };
  await until(() => a.offers.length + b.offers.length === 3, 'wave 1 (2 jobs)');
  await finishOffered();
  await until(() => a.offers.length + b.offers.length === 5, 'wave 2');
  await finishOffered();
  const done = await until(async () => {
    const v = (await api<View>(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body;
    return v.state === 'completed' ? v : null;
  }, 'completed');
  t.match(done.progress, { total: 5, updated: 5, failed: 0 });
  t.equal(done.stage, 2);
  const detail = await api<{ jobs: Array<{ version: string; status: string }> }>(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`);
  t.ok(detail.body.jobs.every((j) => j.status === 'updated' && j.version === '2.0.0'));
});

t.test('a failing canary stops the rollout for an operator; resume accepts that failure; the threshold counts gateways', async (t) => {
  const { hub, gws, manifestId } = await setup(t, [['gw-a', 1], ['gw-b', 1], ['gw-c', 1], ['gw-d', 2], ['gw-e', 1]]);
  const [a, b, c, d, e] = gws as [FakeFwGateway, FakeFwGateway, FakeFwGateway, FakeFwGateway, FakeFwGateway];
  const r = await api<View>(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId, canaryDevices: ['gw-a/dev-1'], waveSize: 10, maxFailurePercent: 30 });
  await until(() => a.offers.length === 1, 'canary offer');
  await a.report(a.offers[0]!, 'downloading');
  await a.report(a.offers[0]!, 'failed', 5, { error: { code: 'FW_ERR_INTEGRITY', message: 'sha mismatch' } });
  const stopped = await until(async () => {
    const v = (await api<View>(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body;
    return v.state === 'stopped' ? v : null;
  }, 'stopped');
  t.match(stopped.reason, /canary failed: gw-a\/dev-1 \(FW_ERR_INTEGRITY\) — 1 of 1 canary gateway; held for an operator/);
  await sleep(100);
  t.equal(b.offers.length + c.offers.length + d.offers.length + e.offers.length, 0, 'nothing more was offered');
  t.match(await api(hub, 'POST', `/api/v1/firmware/rollouts/${r.body.id}/pause`), { status: 409, body: { error: { code: 'FW_ERR_ROLLOUT_STATE' } } });
  const resumed = await api<View>(hub, 'POST', `/api/v1/firmware/rollouts/${r.body.id}/resume`);
  t.equal(resumed.body.state, 'running');
  await until(() => d.offers.length === 2 && b.offers.length === 1 && c.offers.length === 1 && e.offers.length === 1, 'the wave after resume');
  // One gateway failing every one of its devices is one failed gateway: below the minimum of two.
  for (const o of d.offers) await d.report(o, 'failed', 8, { error: { code: 'FW_ERR_FLASH_CANCELLED', message: 'CAN CAN' } });
  await b.succeed(b.offers[0]!);
  await until(async () => (await api<View>(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body.progress.failed === 3, 'failures recorded');
  t.match((await api<View>(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body, { state: 'running', progress: { failedGateways: 2 } }, 'one new failed gateway (20%, and only one) does not stop it');
  // A second gateway: 2 of 5 gateways = 40% > 30%.
  await c.report(c.offers[0]!, 'failed', 8, { error: { code: 'FW_ERR_VERSION_MISMATCH', message: 'old version' } });
  const again = await until(async () => {
    const v = (await api<View>(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body;
    return v.state === 'stopped' ? v : null;
  }, 'stopped again');
  t.match(again.reason, /failure threshold passed: 2 of 5 gateways failed \(40.0% > 30%\): gw-a, gw-c, gw-d/);
});

t.test('pause holds the next wave; cancel tells the gateway; late reports of cancelled jobs are ignored', async (t) => {
  const { hub, gws, manifestId } = await setup(t, [['gw-a', 3]]);
  const [a] = gws as [FakeFwGateway];
  const r = await api<View>(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId, canary: 1, waveSize: 1 });
  await until(() => a.offers.length === 1, 'canary');
  t.equal((await api<View>(hub, 'POST', `/api/v1/firmware/rollouts/${r.body.id}/pause`)).body.state, 'paused');
  await a.succeed(a.offers[0]!);
  await until(async () => (await api<View>(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body.progress.updated === 1, 'canary recorded');
  await sleep(100);
  t.equal(a.offers.length, 1, 'paused: no new wave');
  await api(hub, 'POST', `/api/v1/firmware/rollouts/${r.body.id}/resume`);
  await until(() => a.offers.length === 2, 'wave 1 after resume');
  await a.report(a.offers[1]!, 'downloading', 0, { bytes: 4096, total: 40_000 });
  const c = await api<View>(hub, 'POST', `/api/v1/firmware/rollouts/${r.body.id}/cancel`);
  t.match(c.body, { state: 'cancelled', progress: { updated: 1, cancelled: 2 } });
  await until(() => a.cancels.length === 1, 'cancel sent');
  t.equal(a.cancels[0]!.job, a.offers[1]!.job, 'only the offered job is told; the pending one never was offered');
  await a.request(a.offers[1]!.job, signed.manifest.sha256, [1]);
  await until(() => a.frames.length === 1, 'refusal');
  t.match(a.frames[0], { kind: 'error', error: { code: 'FW_ERR_CANCELLED' } });
  await a.report(a.offers[1]!, 'downloaded');
  await sleep(50);
  const jobs = (await api<{ jobs: Array<{ id: string; status: string; state: string }> }>(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body.jobs;
  t.match(jobs.find((j) => j.id === a.offers[1]!.job), { status: 'cancelled', state: 'downloading' });
  t.match(await api(hub, 'POST', `/api/v1/firmware/rollouts/${r.body.id}/resume`), { status: 409 });
});

t.test('a sync that does not list an offered job brings the offer again', async (t) => {
  const { hub, gws, manifestId } = await setup(t, [['gw-a', 1]]);
  const [a] = gws as [FakeFwGateway];
  await api(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: manifestId });
  await until(() => a.offers.length === 1, 'offer');
  await a.sync([]);
  await until(() => a.offers.length === 2, 'offer again');
  t.equal(a.offers[1]!.job, a.offers[0]!.job);
  await a.sync([{ job: a.offers[0]!.job, state: 'downloading' }]);
  await sleep(100);
  t.equal(a.offers.length, 2, 'a held job is not offered again');
});

t.test('a hub restart keeps rollouts and jobs; reports after the restart move the rollout on', async (t) => {
  const dataDir = path.join(tempDir(t), 'hub');
  const { freePort } = await import('../../scripts/sim/free-port.js');
  const mqttPort = await freePort();
  let hub = await startHub({ dataDir, logger: silentLogger(), mqttPort, httpPort: 0 });
  const first = hub;
  t.teardown(() => first.stop()); // idempotent: also when the test fails before the restart
  const a = new FakeFwGateway('gw-a', [{ id: 'dev-1', profile: MODEL }, { id: 'dev-2', profile: MODEL }]);
  await a.connect(t, `mqtt://127.0.0.1:${mqttPort}`);
  await until(async () => (await hub.registry.listDevices()).length === 2, 'registry');
  await api(hub, 'PUT', '/api/v1/firmware/images', image, 'application/octet-stream');
  const m = await api<{ id: string }>(hub, 'POST', '/api/v1/firmware/manifests', signed);
  const r = await api<View>(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: m.body.id, canary: 1, waveSize: 1 });
  await until(() => a.offers.length === 1, 'canary offer');
  await a.client.endAsync(true);
  await hub.stop();
  hub = await startHub({ dataDir, logger: silentLogger(), mqttPort, httpPort: 0 });
  t.teardown(() => hub.stop());
  const again = new FakeFwGateway('gw-a', a.devices);
  await again.connect(t, `mqtt://127.0.0.1:${mqttPort}`);
  t.match((await api<View>(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body, { state: 'running', progress: { offered: 1, pending: 1 } });
  await again.sync([]); // the gateway lost the offer with the hub: it comes again
  await until(() => again.offers.length === 1, 'offer after the restart');
  t.equal(again.offers[0]!.job, a.offers[0]!.job);
  await again.succeed(again.offers[0]!);
  await until(() => again.offers.length === 2, 'the next wave');
  await again.succeed(again.offers[1]!);
  await until(async () => (await api<View>(hub, 'GET', `/api/v1/firmware/rollouts/${r.body.id}`)).body.state === 'completed', 'completed');
});
