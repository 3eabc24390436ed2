/**
 * The abstract conformance suite of the configuration and firmware ports
 * (hub/config/config-port.ts `ConfigPort`, hub/firmware/firmware-port.ts
 * `FirmwarePort`, firmware-bridge `ImageBytes`), in the manner of
 * store-conformance.ts: every backend runs it through
 * `configFirmwareConformance(t, name, fixture)` — SQLite in
 * state-config-sqlite.test.ts, PostgreSQL in state-config-pg.test.ts.
 *
 * `fixture.location(t)` gives a fresh place (a folder, a PostgreSQL schema)
 * cleaned up with `t`; `fixture.open(loc)` unstarted stores over it. Opening
 * the same location twice gives two independent instances on one state —
 * two hub processes, or two cluster nodes — which the suite uses for
 * durability across a restart and for concurrent pushes and uploads.
 */
import type { Test } from 'tap';
import type { ConfigDesired, ConfigReported, SignedManifest } from '../../../contract/index.js';
import { sha256Hex, sliceChunk, type ImageBytes } from '../../../firmware-bridge/index.js';
import type { ConfigPort } from '../../config/config-port.js';
import type { FirmwarePort, JobRecord, RolloutRecord } from '../../firmware/firmware-port.js';

/** Settings the suite varies. */
export interface StateOpenOptions {
  clock?: () => number;
  eventsPerGateway?: number;
}

/** One backend's configuration and firmware stores over one location. */
export interface ConfigFirmwareStores {
  config: ConfigPort;
  firmware: FirmwarePort;
  images: ImageBytes;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** How a backend is built for the suite. */
export interface ConfigFirmwareFixture {
  location(t: Test): Promise<string>;
  /** Unstarted stores; throws on bad settings. */
  open(loc: string, opts?: StateOpenOptions): ConfigFirmwareStores;
  /** Largest image piece the backend stores in one row, when it cuts images (the suite uploads images across several). */
  pieceBytes?: number;
}

const T0 = 1_760_000_000_000;

function desired(gateway: string, version: number, extra: Partial<ConfigDesired> = {}): ConfigDesired {
  return { v: 1, gateway, version, hash: `h${gateway}-${version}`, pushedAt: T0 + version, pushedBy: 'admin', confirmWindowS: 60, config: { gatewayId: gateway, n: version }, ...extra };
}

function report(version: number, running: number, status: ConfigReported['status'], ts: number, error?: string): ConfigReported {
  return { v: 1, ts, running: { version: running, since: ts }, status, version, ...(error ? { error: { code: 'CONFIG_ERR_INVALID', message: error } } : {}) };
}

function signed(model: string, version: string, image: Buffer): SignedManifest {
  return { manifest: { v: 1, model, version, size: image.length, sha256: sha256Hex(image), chunkSize: 1024, createdAt: T0 }, signature: { alg: 'Ed25519', keyId: 'k1', value: 'AA' } };
}

function rollout(id: string, manifestId: string, more: Partial<RolloutRecord> = {}): Omit<RolloutRecord, 'createdAt' | 'updatedAt' | 'ackFailures'> {
  return { id, manifestId, state: 'running', target: { profile: 'acme-x' }, canary: 1, waveSize: 2, maxFailurePercent: 10, stage: 0, stages: 2, reason: null, seed: 'abcd', canaryDevices: null, createdBy: 'admin', ...more };
}

/** Runs the suite against one backend. */
export function configFirmwareConformance(t: Test, name: string, fx: ConfigFirmwareFixture): void {
  t.test(`${name}: configuration and firmware port conformance`, async (t) => {
    let now = T0;
    const clock = (): number => now;
    const open = async (t: Test, loc?: string, opts: StateOpenOptions = {}): Promise<{ s: ConfigFirmwareStores; loc: string }> => {
      const where = loc ?? (await fx.location(t));
      const s = fx.open(where, { clock, ...opts });
      await s.start();
      t.teardown(() => s.stop().catch(() => undefined));
      return { s, loc: where };
    };

    t.test('configuration versions: every query the API makes, and a restart keeps them', async (t) => {
      const { s, loc } = await open(t);
      const c = s.config;
      t.same(await c.versions('g1'), [], 'no versions yet');
      t.equal(await c.document('g1'), null);
      let seen: Array<number | null> = [];
      for (const gw of ['g1', 'g1', 'g1', 'g2']) {
        await c.addVersion(gw, (latest) => {
          seen.push(latest?.version ?? null);
          return desired(gw, (latest?.version ?? 0) + 1, gw === 'g1' ? { note: `v${(latest?.version ?? 0) + 1}` } : {});
        });
      }
      t.same(seen, [null, 1, 2, null], 'build sees the newest stored version of its gateway');
      t.same((await c.versions('g1')).map((v) => v.version), [3, 2, 1], 'newest first');
      t.same((await c.versions('g1', 2)).map((v) => v.version), [3, 2], 'limit');
      t.same((await c.versions('g1', 1))[0], { gateway: 'g1', version: 3, hash: 'hg1-3', pushedAt: T0 + 3, pushedBy: 'admin', note: 'v3' });
      t.equal((await c.versions('g2'))[0]!.note, null, 'no note is null');
      t.same(await c.document('g1'), desired('g1', 3, { note: 'v3' }), 'newest document, whole');
      t.same(await c.document('g1', 2), desired('g1', 2, { note: 'v2' }));
      t.equal(await c.document('g1', 9), null, 'unknown version');
      t.equal(await c.hashOf('g1', 2), 'hg1-2');
      t.equal(await c.hashOf('g1', 9), null);
      t.same((await c.gateways()).sort(), ['g1', 'g2']);
      t.same((await c.latestDocuments()).map((d) => `${d.gateway}:${d.version}`).sort(), ['g1:3', 'g2:1'], 'newest of every gateway');

      seen = [];
      await t.rejects(c.addVersion('g1', (latest) => {
        seen.push(latest?.version ?? null);
        throw new Error('refused by build');
      }), /refused by build/);
      t.same((await c.versions('g1')).map((v) => v.version), [3, 2, 1], 'a throwing build stores nothing');
      await t.rejects(c.addVersion('g1', () => desired('g1', 2)), 'the same version twice is refused by the store itself');
      t.same((await c.versions('g1')).map((v) => v.hash), ['hg1-3', 'hg1-2', 'hg1-1'], 'and the stored one is unchanged');

      // The start-up sealing of secrets: find, replace, scrub.
      await c.addVersion('g2', () => desired('g2', 2, { config: { gatewayId: 'g2', password: 'clear' } }));
      t.same((await c.documentsContaining('"password"')).map((d) => `${d.gateway}:${d.version}`), ['g2:2'], 'documents by their text');
      await c.replaceDocument(desired('g2', 2, { hash: 'sealed', config: { gatewayId: 'g2', password: 'enc:xyz' } }));
      t.equal(await c.hashOf('g2', 2), 'sealed');
      t.same((await c.document('g2', 2))!.config, { gatewayId: 'g2', password: 'enc:xyz' });
      t.same(await c.documentsContaining('clear'), [], 'the clear text is gone');
      await c.scrub();
      t.equal(await c.hashOf('g2', 2), 'sealed', 'scrub keeps the rows');

      await s.stop();
      const { s: again } = await open(t, loc);
      t.same((await again.config.versions('g1')).map((v) => v.version), [3, 2, 1], 'versions survive a restart');
      t.same(await again.config.document('g1'), desired('g1', 3, { note: 'v3' }));
    });

    t.test('concurrent pushes from two instances (two hubs, two pools) get distinct consecutive versions', async (t) => {
      const { s: a, loc } = await open(t);
      const { s: b } = await open(t, loc);
      const push = (s: ConfigFirmwareStores, who: string) => s.config.addVersion('g1', async (latest) => {
        const v = (latest?.version ?? 0) + 1;
        await new Promise((r) => setImmediate(r)); // give the other instance a chance to read the same newest version
        return desired('g1', v, { pushedBy: who });
      });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => push(i % 2 === 0 ? a : b, i % 2 === 0 ? 'a' : 'b')));
      t.same(results.map((d) => d.version).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1), 'each push got its own version, 1..20');
      const stored = await a.config.versions('g1', 100);
      t.same(stored.map((v) => v.version), Array.from({ length: 20 }, (_, i) => 20 - i), 'all 20 stored, no gap');
      t.same(new Set(stored.map((v) => v.pushedBy)), new Set(['a', 'b']), 'both instances pushed');
      t.same((await b.config.versions('g1', 1))[0]!.version, 20, 'the other instance sees the same newest');
    });

    t.test('reports and configuration events: a row per change, newest first', async (t) => {
      const { s } = await open(t);
      const c = s.config;
      t.same(await c.reports(), []);
      await c.saveReport('g1', report(1, 0, 'applying', T0 + 1), T0 + 10);
      await c.saveReport('g1', report(1, 0, 'applying', T0 + 2), T0 + 20); // nothing an operator reads changed
      await c.saveReport('g1', report(1, 1, 'applied', T0 + 3), T0 + 30);
      await c.saveReport('g1', report(2, 1, 'rejected', T0 + 4, 'bad register'), T0 + 40);
      await c.saveReport('g1', report(2, 1, 'rejected', T0 + 5, 'other problem'), T0 + 50); // error text changed
      await c.saveReport('g2', report(1, 1, 'applied', T0 + 6), T0 + 60);
      const reps = await c.reports();
      t.same(reps.map((r) => r.gateway).sort(), ['g1', 'g2'], 'last report of every gateway');
      const g1 = await c.reports('g1');
      t.equal(g1.length, 1);
      t.same(g1[0], { gateway: 'g1', report: report(2, 1, 'rejected', T0 + 5, 'other problem'), receivedAt: T0 + 50 }, 'the last report, whole, with when it arrived');
      const ev = await c.events('g1');
      t.same(ev.map((e) => [e.status, e.version, e.running, e.message]), [
        ['rejected', 2, 1, 'other problem'], ['rejected', 2, 1, 'bad register'], ['applied', 1, 1, null], ['applying', 1, 0, null],
      ], 'one event per change, newest first');
      t.same({ ...ev[0]!, n: 0 }, { n: 0, gateway: 'g1', ts: T0 + 5, version: 2, status: 'rejected', running: 1, code: 'CONFIG_ERR_INVALID', message: 'other problem' });
      t.ok(ev[0]!.n > ev[1]!.n, 'n grows');
      t.same((await c.events('g1', 2)).map((e) => e.message), ['other problem', 'bad register'], 'limit');
      t.same((await c.events('g2')).length, 1);
      t.same(await c.events('nobody'), []);
    });

    t.test('configuration events are bounded per gateway (issue 13): the newest N stay, other gateways untouched', async (t) => {
      const { s } = await open(t, undefined, { eventsPerGateway: 5 });
      for (let i = 1; i <= 12; i++) await s.config.saveReport('g1', report(i, i - 1, i % 2 ? 'applying' : 'applied', T0 + i), T0 + i);
      for (let i = 1; i <= 3; i++) await s.config.saveReport('g2', report(i, i, 'applied', T0 + i), T0 + i);
      const g1 = await s.config.events('g1', 100);
      t.same(g1.map((e) => e.version), [12, 11, 10, 9, 8], 'the 5 newest of g1');
      t.same((await s.config.events('g2', 100)).map((e) => e.version), [3, 2, 1], 'g2 keeps its 3');
      const loc = await fx.location(t);
      t.throws(() => fx.open(loc, { eventsPerGateway: 0 }), { code: 'CONFIG_ERR_INVALID' }, 'a bound below 1 is refused');
      t.throws(() => fx.open(loc, { eventsPerGateway: 2.5 }), { code: 'CONFIG_ERR_INVALID' }, 'a fractional bound is refused');
    });

    t.test('firmware: images, manifests, rollouts and jobs through their state changes', async (t) => {
      const { s, loc } = await open(t);
      const f = s.firmware;
      const image = Buffer.from('firmware image A');
      const sha = sha256Hex(image);
      await f.putImage(sha, image.length, 'alice');
      now += 1000;
      await f.putImage(sha, image.length, 'bob');
      t.same(await f.listImages(), [{ sha256: sha, size: image.length, uploadedAt: T0, uploadedBy: 'alice' }], 'the first upload\'s record is kept');

      t.equal(await f.getManifest('m-none'), null);
      const m1 = await f.putManifest({ id: 'm-1', sha256: sha, model: 'acme-x', version: '1.0.0', size: image.length, keyId: 'k1', signed: signed('acme-x', '1.0.0', image), createdBy: 'alice' });
      t.same(m1, { id: 'm-1', sha256: sha, model: 'acme-x', version: '1.0.0', size: image.length, keyId: 'k1', signed: signed('acme-x', '1.0.0', image), createdAt: now, createdBy: 'alice' });
      const created = now;
      now += 1000;
      t.equal((await f.putManifest({ ...m1, createdBy: 'bob' })).createdBy, 'alice', 'the same manifest again is kept as it was');
      const m2 = await f.putManifest({ id: 'm-2', sha256: sha, model: 'acme-x', version: '1.1.0', size: image.length, keyId: null, signed: signed('acme-x', '1.1.0', image), createdBy: 'alice' });
      t.equal(m2.keyId, null);
      t.same((await f.listManifests()).map((m) => [m.id, m.createdAt]), [['m-2', now], ['m-1', created]], 'newest first');

      const jobs: Array<Pick<JobRecord, 'id' | 'gateway' | 'device' | 'stage'>> = [
        { id: 'j-1', gateway: 'g1', device: 'd1', stage: 0 }, { id: 'j-2', gateway: 'g2', device: 'd1', stage: 1 },
        { id: 'j-3', gateway: 'g1', device: 'd2', stage: 1 }, { id: 'j-4', gateway: 'g3', device: 'd1', stage: 1 },
      ];
      await f.createRollout(rollout('r-1', 'm-1', { canaryDevices: ['g1/d1'] }), jobs);
      now += 1000;
      await f.createRollout(rollout('r-2', 'm-2', { state: 'paused', target: { devices: ['g9/d9'] }, seed: null }), [{ id: 'j-9', gateway: 'g9', device: 'd9', stage: 0 }]);
      const r1 = (await f.getRollout('r-1'))!;
      t.same(r1, { ...rollout('r-1', 'm-1', { canaryDevices: ['g1/d1'] }), ackFailures: 0, createdAt: created + 1000, updatedAt: created + 1000 }, 'a rollout, whole');
      t.equal(await f.getRollout('r-none'), null);
      t.same((await f.listRollouts()).map((r) => r.id), ['r-2', 'r-1'], 'newest first');
      t.same((await f.listRollouts({ states: ['running'] })).map((r) => r.id), ['r-1'], 'by state');
      t.same((await f.listRollouts({ states: ['running', 'paused'] })).map((r) => r.id), ['r-2', 'r-1']);
      t.same(await f.listRollouts({ states: ['completed'] }), []);

      t.same((await f.listJobs({ rollout: 'r-1' })).map((j) => j.id), ['j-1', 'j-3', 'j-2', 'j-4'], 'by stage, gateway, device');
      t.same((await f.listJobs({ gateway: 'g1' })).map((j) => j.id), ['j-1', 'j-3']);
      t.same((await f.listJobs({ statuses: ['pending'] })).length, 5, 'all pending at first');
      t.same((await f.listJobs({ rollout: 'r-1', gateway: 'g1', statuses: ['pending'] })).map((j) => j.id), ['j-1', 'j-3'], 'criteria combine');
      const j1 = (await f.getJob('j-1'))!;
      t.same(j1, { id: 'j-1', rollout: 'r-1', gateway: 'g1', device: 'd1', stage: 0, status: 'pending', state: null, result: 0, seq: 0, bytes: null, total: null, version: null, error: null, offers: 0, offeredAt: null, updatedAt: created + 1000 });
      t.equal(await f.getJob('j-none'), null);

      now += 1000;
      await f.updateRollout('r-1', { stage: 1 });
      t.same(((await f.getRollout('r-1'))!), { ...r1, stage: 1, updatedAt: now }, 'only the given field changes');
      // Compare-and-set (the rollout engine's steps): only while state and stage are as expected.
      t.equal(await f.updateRollout('r-1', { stage: 2 }, { state: 'running', stage: 0 }), false, 'a step from a stale stage is refused');
      t.equal(await f.updateRollout('r-1', { stage: 2 }, { state: 'paused', stage: 1 }), false, 'a step from a stale state is refused');
      t.equal(((await f.getRollout('r-1'))!).stage, 1, 'and changed nothing');
      t.equal(await f.updateRollout('r-1', { stage: 1 }, { state: 'running', stage: 1 }), true, 'the same stage again (offers within a stage) passes');
      t.equal(await f.updateRollout('r-none', { stage: 1 }, { state: 'running', stage: 0 }), false, 'unknown rollout');
      await f.updateRollout('r-1', { state: 'stopped', reason: 'too many failures', ackFailures: 2 });
      const stopped = (await f.getRollout('r-1'))!;
      t.same([stopped.state, stopped.stage, stopped.reason, stopped.ackFailures], ['stopped', 1, 'too many failures', 2]);

      await f.markOffered([]);
      await f.markOffered(['j-1', 'j-2', 'j-3']);
      now += 1000;
      await f.markOffered(['j-1']);
      const offered = await f.listJobs({ statuses: ['offered'] });
      t.same(offered.map((j) => [j.id, j.offers, j.offeredAt]), [['j-1', 2, now], ['j-3', 1, now - 1000], ['j-2', 1, now - 1000]], 'offered, counted, timed');

      t.equal(await f.applyReport('j-1', { status: 'active', state: 'downloading', result: 0, seq: 2, bytes: 10, total: 16 }), true);
      t.equal(await f.applyReport('j-1', { status: 'active', state: 'downloading', result: 0, seq: 1, bytes: 5 }), false, 'an older seq is stale');
      t.equal(await f.applyReport('j-1', { status: 'active', state: 'downloaded', result: 0, seq: 3 }), true);
      let j = (await f.getJob('j-1'))!;
      t.same([j.status, j.state, j.seq, j.bytes, j.total], ['active', 'downloaded', 3, 10, 16], 'omitted progress fields are kept');
      t.equal(await f.applyReport('j-1', { status: 'failed', state: 'failed', result: 5, seq: 4, error: { code: 'FW_ERR_FLASH', message: 'no answer' } }), true);
      t.equal(await f.applyReport('j-1', { status: 'updated', state: 'updated', result: 1, seq: 5 }), false, 'a final job takes no more reports');
      j = (await f.getJob('j-1'))!;
      t.same([j.status, j.result, j.error], ['failed', 5, { code: 'FW_ERR_FLASH', message: 'no answer' }]);
      t.equal(await f.applyReport('j-none', { status: 'active', state: 'downloading', result: 0, seq: 1 }), false, 'unknown job');

      // Cancel: pending and offered jobs, and active ones not flashing; a flashing one runs to its end.
      t.equal(await f.applyReport('j-3', { status: 'active', state: 'updating', result: 0, seq: 1 }), true);
      const told = await f.cancelJobs('r-1');
      t.same(told.map((x) => [x.id, x.status]), [['j-2', 'offered']], 'returns the offered ones, as they were (j-4 was pending, j-3 is flashing, j-1 failed)');
      t.same((await f.listJobs({ rollout: 'r-1' })).map((x) => [x.id, x.status]), [['j-1', 'failed'], ['j-3', 'active'], ['j-2', 'cancelled'], ['j-4', 'cancelled']]);
      t.equal(await f.applyReport('j-2', { status: 'active', state: 'downloading', result: 0, seq: 1 }), false, 'a cancelled job refuses a download report');
      t.equal(await f.applyReport('j-2', { status: 'updated', state: 'updated', result: 1, seq: 2, version: '1.0.0' }), true, 'but takes the end of a flash that had started');
      t.same([(await f.getJob('j-2'))!.status, (await f.getJob('j-2'))!.version], ['updated', '1.0.0']);
      t.same(await f.cancelJobs('r-none'), []);

      await s.stop();
      const { s: again } = await open(t, loc);
      t.equal((await again.firmware.getRollout('r-1'))!.state, 'stopped', 'rollouts survive a restart');
      t.equal((await again.firmware.listJobs({ rollout: 'r-1' })).length, 4);
      t.equal((await again.firmware.listManifests()).length, 2);
    });

    t.test('image bytes: put, has, size, read, chunks; any instance serves any image', async (t) => {
      const { s: a, loc } = await open(t);
      const { s: b } = await open(t, loc);
      const piece = fx.pieceBytes ?? 4096;
      const image = Buffer.alloc(piece * 3 + 123);
      for (let i = 0; i < image.length; i++) image[i] = (i * 31 + (i >> 8)) & 0xff;
      const sha = sha256Hex(image);
      t.equal(await a.images.has(sha), false);
      await t.rejects(a.images.size(sha), { code: 'FW_ERR_IMAGE_NOT_FOUND' });
      await t.rejects(a.images.read(sha), { code: 'FW_ERR_IMAGE_NOT_FOUND' });
      t.same(await a.images.put(image), { sha256: sha, size: image.length, created: true });
      t.same(await a.images.put(image), { sha256: sha, size: image.length, created: false }, 'the same bytes again are not stored twice');
      t.equal(await b.images.has(sha), true, 'the other instance has it');
      t.equal(await b.images.size(sha), image.length);
      const back = await b.images.read(sha);
      t.ok(back.equals(image), 'bytes back as stored, across pieces');
      const chunk = 1000;
      for (const i of [0, 1, Math.floor(piece / chunk), Math.ceil(image.length / chunk) - 1]) {
        t.ok(sliceChunk(back, i, chunk).equals(image.subarray(i * chunk, Math.min(image.length, (i + 1) * chunk))), `chunk ${i}`);
      }
      const empty = Buffer.alloc(0);
      t.same(await a.images.put(empty), { sha256: sha256Hex(empty), size: 0, created: true }, 'an empty image is bytes too (the service refuses it, not the store)');
      t.equal((await a.images.read(sha256Hex(empty))).length, 0);

      const other = Buffer.from('uploaded on two nodes at once');
      const both = await Promise.all([a.images.put(other), b.images.put(other)]);
      t.same(both.map((r) => r.created).sort(), [false, true], 'two concurrent uploads of one image: one stores it');
      t.ok((await a.images.read(sha256Hex(other))).equals(other));
    });
  });
}
