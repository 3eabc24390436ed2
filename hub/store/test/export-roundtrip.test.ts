/**
 * Moving a hub between stores (issue 15 item 5): a SQLite hub with gateways
 * provisioned by claim, tokens, two configuration versions, a firmware
 * image + manifest + rollout, a long audit chain, events and 100,000
 * readings is exported, imported into PostgreSQL, exported from there and
 * imported into a fresh SQLite hub. Both archives hold the same rows
 * (every table, contents compared); the audit chain verifies with the
 * source's head; the gateway's credential and the admin token work on a hub
 * started on the final store, and a replayed batch is dropped there.
 * Skipped with one line where no PostgreSQL answers (a failure under CI=true).
 */
import t from 'tap';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { provisionGateway } from '../../../gateway/identity/provision.js';
import { topics } from '../../../contract/index.js';
import { buildManifest, generateSigningKey, parsePrivateKey, signManifest } from '../../../firmware-bridge/index.js';
import { silentLogger, SqliteDb } from '../../../lib/index.js';
import { runCli } from '../../../test/support/cli.js';
import { PG_URL, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { api, connectOk, mqttUrl, startSecureHub, tempDir, tryConnect } from '../../test/support.js';
import { contents } from './archive-contents.js';
import { openStateStores } from '../state.js';

const skip = await skipUnlessPostgres();
const GW = 'gw-move';
const READINGS = 100_000;
const PER_BATCH = 2000;
const image = Buffer.from(Array.from({ length: 600_000 }, (_, i) => (i * 13 + (i >> 7)) & 0xff));
const key = generateSigningKey();
const priv = parsePrivateKey(key.privateKeyPem);
const signed = signManifest(buildManifest(image, { model: 'sim-fc21-device', version: '3.1.0', chunkSize: 4096 }), priv.key, priv.keyId);

t.test('SQLite -> PostgreSQL -> SQLite: everything arrives, audit verifies, credentials and dedupe hold', { skip }, async (t) => {
  const root = tempDir(t, 'ioc-edge-move-');
  const dirA = path.join(root, 'a');
  const secretsKeyFile = path.join(root, 'secrets.key');
  const hubOpts = { secretsKeyFile, firmware: { trustedKeys: [key.publicKey] } };
  const who = { actor: 'test-admin' };

  // --- the source hub on SQLite
  const a = await startSecureHub(t, { dataDir: dirA, ...hubOpts });
  const admin = await a.identity.createApiToken({ name: 'admin', role: 'admin' }, who);
  await a.identity.createApiToken({ name: 'viewer', role: 'viewer' }, who);
  const claim = await a.identity.createClaim({ site: 'north-depot' }, who);
  const prov = await provisionGateway({ hubUrl: mqttUrl(a), dataDir: tempDir(t, 'ioc-edge-move-gw-'), claim: claim.token, gatewayId: GW, location: 'Cabinet 4', timeoutMs: 10_000 });
  const cred = { clientId: GW, username: prov.credential.username, password: prov.credential.password, reconnectPeriod: 0 };
  for (const note of ['first', 'second']) {
    await a.config.push(GW, { note, config: { gatewayId: GW, hub: { url: 'mqtt://127.0.0.1:1883', username: GW, password: `pw-${note}` }, buses: [], devices: [] } }, who);
  }
  const up = await a.firmware.uploadImage(image, who);
  const manifest = await a.firmware.addManifest(signed, who);
  for (let i = 0; i < 300; i++) await a.audit.record({ actor: 'test', action: 'test.entry', target: `thing:${i}`, outcome: 'ok', detail: { i } });
  const client = await connectOk(t, mqttUrl(a), cred);
  const now = Date.now();
  const batch = (seq: number, n: number, base: number): string =>
    JSON.stringify({ v: 1, epoch: 'ep1', seq, readings: Array.from({ length: n }, (_, i) => ({ device: `d${i % 10}`, point: `p${i % 7}`, ts: now - 3_600_000 + seq * PER_BATCH + i, value: i % 3 === 0 ? `s${base + i}` : base + i, quality: 'good' })) });
  for (let seq = 1; seq <= READINGS / PER_BATCH; seq++) await client.publishAsync(topics.telemetry(GW), batch(seq, PER_BATCH, seq * 10_000), { qos: 1 });
  await client.publishAsync(topics.events(GW), JSON.stringify({ v: 1, id: 'ev1', type: 'device.down', severity: 'warning', device: 'd1', message: 'down' }), { qos: 1 });
  await client.publishAsync(topics.events(GW), JSON.stringify({ v: 1, id: 'ev2', type: 'alarm.raised', severity: 'critical', device: 'd2', point: 'level', ts: now - 1000, message: 'high', data: { limit: 'high', threshold: 2, value: 2.1 } }), { qos: 1 });
  await client.publishAsync(topics.telemetry(GW), '{"v": 1, "not a batch', { qos: 1 }); // quarantined with its payload
  await client.endAsync();
  const headA = (await a.audit.verify()).head;
  await a.stop();
  // A rollout with jobs, written through the firmware port (no device inventory needed).
  const st = openStateStores({ dataDir: dirA, logger: silentLogger() });
  await st.start();
  await st.firmware.createRollout({ id: 'r-1', manifestId: manifest.id, state: 'running', target: { devices: [`${GW}/d1`] }, canary: 1, waveSize: 5, maxFailurePercent: 10, stage: 0, stages: 2, reason: null, seed: 'seed', canaryDevices: null, createdBy: 'test-admin' },
    [{ id: 'j-1', gateway: GW, device: 'd1', stage: 0 }, { id: 'j-2', gateway: GW, device: 'd2', stage: 1 }]);
  await st.stop();
  // Rollups as retention leaves them (per series and level: count, min, max, sum of a bucket whose raw readings went).
  const hubDb = await SqliteDb.open(path.join(dirA, 'hub.sqlite'));
  for (const level of [60_000, 3_600_000]) {
    for (let b = 0; b < 8; b++) { // past one archive line of rows (CHUNK_ROWS): the export pages through them
      await hubDb.run('INSERT INTO rollups (series, bucket_ms, ts, count, min, max, sum) SELECT id, ?, ?, 60, id * 0.5, id * 1.5 + 0.1, id * 60.25 + ? FROM series', [level, (Math.floor((now - 86_400_000) / level) - b) * level, b / 3]);
    }
  }
  await hubDb.close();

  // --- SQLite -> archive -> PostgreSQL -> archive -> SQLite
  const schema = pgSchema(t);
  const pgStore = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const f1 = path.join(root, 'a.ioc.gz');
  const f2 = path.join(root, 'b.ioc.gz');
  const dirC = path.join(root, 'c');
  const ex1 = await runCli(['hub', 'export', '--data-dir', dirA, '--out', f1]);
  t.equal(ex1.code, 0, ex1.err);
  t.match(ex1.out, /exported [\d,]+ rows from sqlite .* rows\/s; readings 100,000, audit entries \d+/, 'summary line with the rate');
  const im1 = await runCli(['hub', 'import', '--store', pgStore, '--in', f1]);
  t.equal(im1.code, 0, im1.err);
  t.match(im1.out, /imported [\d,]+ rows into postgres .*audit chain verified/);
  t.notMatch(`${im1.out}${im1.err}`, /postgres:\/\/[^@\s]*:[^@\s*]+@/, 'no password in the output');
  const ex2 = await runCli(['hub', 'export', '--store', pgStore, '--out', f2]);
  t.equal(ex2.code, 0, ex2.err);
  const im2 = await runCli(['hub', 'import', '--data-dir', dirC, '--in', f2]);
  t.equal(im2.code, 0, im2.err);

  for (const r of [ex1, im1, ex2, im2]) t.comment(r.out.trim());
  // The final SQLite store exported again: the third archive must equal the first as well.
  const f3 = path.join(root, 'c.ioc.gz');
  const ex3 = await runCli(['hub', 'export', '--data-dir', dirC, '--out', f3, '--quiet']);
  t.equal(ex3.code, 0, ex3.err);
  const [c1, c2, c3] = [await contents(f1), await contents(f2), await contents(f3)];
  t.equal(c1.get('readings')?.length, READINGS, 'all readings in the first archive');
  for (const table of ['registry_gateways', 'principals', 'claims', 'api_tokens', 'audit', 'config_versions', 'fw_images', 'image_bytes', 'fw_manifests', 'fw_rollouts', 'fw_jobs', 'gateways', 'series', 'latest', 'events', 'alarms', 'quarantine', 'dedupe', 'readings', 'rollups']) {
    t.ok((c1.get(table)?.length ?? 0) > 0, `${table}: the source has rows`);
  }
  t.same([...c2.keys()].sort(), [...c1.keys()].sort(), 'the same tables');
  for (const [table, rows] of c1) {
    const other = c2.get(table) ?? [];
    t.equal(other.length, rows.length, `${table}: ${rows.length} rows after PostgreSQL`);
    t.ok(rows.every((r, i) => r === other[i]), `${table}: the same contents after PostgreSQL`);
    const back = c3.get(table) ?? [];
    t.ok(back.length === rows.length && rows.every((r, i) => r === back[i]), `${table}: the same rows and contents back in SQLite`);
  }
  t.same(c1.get('dedupe'), [JSON.stringify([GW, 'ep1', JSON.stringify([[1, READINGS / PER_BATCH]]), JSON.parse(c1.get('dedupe')![0]!)[3]])], 'the dedupe record is the seq range of the batches');

  // --- a hub on the final SQLite store
  const c = await startSecureHub(t, { dataDir: dirC, ...hubOpts });
  const v = await c.audit.verify();
  t.ok(v.ok, 'the imported chain verifies');
  t.equal(v.head?.hash, headA?.hash, 'with the source head');
  t.equal((await c.firmware.images()).find((i) => i.sha256 === up.sha256)?.size, image.length, 'the image record is there');
  t.ok(await c.firmware.view('r-1'), 'the rollout is there');
  t.match(await api(c, 'GET', `/api/v1/gateways/${GW}`, { token: admin.token }), { status: 200, body: { id: GW, site: 'north-depot', location: 'Cabinet 4' } }, 'the admin token works; registry row there');
  t.equal((await c.config.versions(GW)).length, 2, 'two configuration versions');
  const again = await connectOk(t, mqttUrl(c), cred);
  t.pass('the gateway credential authenticates on the imported store');
  t.match(await tryConnect(t, mqttUrl(c), { ...cred, password: 'wrong' }), { ok: false }, 'a wrong secret is refused');
  await again.publishAsync(topics.telemetry(GW), batch(1, 5, 99), { qos: 1 }); // replay of a batch committed before the move
  await again.publishAsync(topics.telemetry(GW), batch(READINGS / PER_BATCH + 1, 1, 7), { qos: 1 }); // a new one
  await again.endAsync();
  await c.stop();
  const db = await SqliteDb.open(path.join(dirC, 'hub.sqlite'));
  t.teardown(() => db.close());
  t.equal((await db.get<{ n: number }>('SELECT count(*) AS n FROM readings'))?.n, READINGS + 1, 'the replayed batch was dropped, the new one stored');
});

t.test('a corrupted, truncated or newer archive is refused and nothing is imported; a non-empty target is refused', async (t) => {
  const root = tempDir(t, 'ioc-edge-move-bad-');
  const dirA = path.join(root, 'a');
  const a = await startSecureHub(t, { dataDir: dirA });
  await a.identity.createApiToken({ name: 'admin', role: 'admin' }, { actor: 'test' });
  for (let i = 0; i < 50; i++) await a.audit.record({ actor: 'test', action: 'test.entry', target: `t${i}`, outcome: 'ok', detail: { pad: randomBytes(64).toString('hex') } });
  await a.stop();
  const f = path.join(root, 'a.ioc.gz');
  t.equal((await runCli(['hub', 'export', '--data-dir', dirA, '--out', f, '--quiet'])).code, 0);
  const { readFile, writeFile } = await import('node:fs/promises');
  const whole = await readFile(f);
  // The archive is checked whole before the target is opened: a refused one leaves no store behind at all.
  const empty = async (dir: string): Promise<void> => {
    t.notOk(existsSync(dir), `nothing created in ${path.basename(dir)}`);
  };

  const cut = path.join(root, 'cut.gz');
  await writeFile(cut, whole.subarray(0, Math.floor(whole.length / 2)));
  const r1 = await runCli(['hub', 'import', '--data-dir', path.join(root, 'b'), '--in', cut, '--quiet']);
  t.match(r1, { code: 1, err: /HUB_ERR_ARCHIVE|truncated/ }, 'a truncated archive is refused');
  t.match(r1.err, /truncated.*\(HUB_ERR_ARCHIVE\)/);
  await empty(path.join(root, 'b'));

  const flipped = Buffer.from(whole);
  flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
  const bad = path.join(root, 'bad.gz');
  await writeFile(bad, flipped);
  const r2 = await runCli(['hub', 'import', '--data-dir', path.join(root, 'c'), '--in', bad, '--quiet']);
  t.match(r2, { code: 1, err: /corrupted|truncated|not JSON|SHA-256/ }, 'a corrupted archive is refused');
  await empty(path.join(root, 'c'));

  const { gzipSync, gunzipSync } = await import('node:zlib');
  const lines = gunzipSync(whole).toString('utf8').split('\n');
  const header = JSON.parse(lines[0]!);
  lines[0] = JSON.stringify({ ...header, version: 99 });
  const newer = path.join(root, 'newer.gz');
  await writeFile(newer, gzipSync(lines.join('\n')));
  const r3 = await runCli(['hub', 'import', '--data-dir', path.join(root, 'd'), '--in', newer, '--quiet']);
  t.match(r3, { code: 1, err: /format version 99 is newer than this hub reads \(2\).*\(HUB_ERR_ARCHIVE\)/ }, 'a newer archive format is refused');
  await empty(path.join(root, 'd'));

  // A version 1 archive (before the rollups table) still imports.
  const v1 = gunzipSync(whole).toString('utf8').split('\n').filter(Boolean);
  const h1 = JSON.parse(v1[0]!);
  t.ok('rollups' in h1.tables, 'this hub writes the rollups table');
  delete h1.tables.rollups;
  h1.version = 1;
  const body1 = [JSON.stringify(h1), ...v1.slice(1, -1)];
  const tr1 = JSON.parse(v1[v1.length - 1]!);
  delete tr1.counts.rollups;
  tr1.sha256 = (await import('node:crypto')).createHash('sha256').update(body1.map((l) => `${l}\n`).join('')).digest('hex');
  const old1 = path.join(root, 'v1.gz');
  await writeFile(old1, gzipSync(`${[...body1, JSON.stringify(tr1)].join('\n')}\n`));
  const rv1 = await runCli(['hub', 'import', '--data-dir', path.join(root, 'v1'), '--in', old1, '--quiet']);
  t.equal(rv1.code, 0, `a version 1 archive imports: ${rv1.err}`);

  // A changed row with the hash left as it was: caught by the SHA-256 before anything is written.
  const tampered = gunzipSync(whole).toString('utf8').replace('"test.entry"', '"test.entrx"');
  const tam = path.join(root, 'tam.gz');
  await writeFile(tam, gzipSync(tampered));
  t.match(await runCli(['hub', 'import', '--data-dir', path.join(root, 'e'), '--in', tam, '--quiet']), { code: 1, err: /does not match its SHA-256/ }, 'a changed row is refused');
  await empty(path.join(root, 'e'));

  // A sound file whose audit chain was rewritten (hash recomputed): written, then found by the chain check, and the store emptied again.
  const rewritten = gunzipSync(whole).toString('utf8').split('\n').filter(Boolean);
  const body = rewritten.slice(0, -1).map((l) => l.replace('"test.entry"', '"test.entrx"'));
  const trailer = JSON.parse(rewritten[rewritten.length - 1]!);
  const { createHash } = await import('node:crypto');
  trailer.sha256 = createHash('sha256').update(body.map((l) => `${l}\n`).join('')).digest('hex');
  const forged = path.join(root, 'forged.gz');
  await writeFile(forged, gzipSync(`${[...body, JSON.stringify(trailer)].join('\n')}\n`));
  const r4 = await runCli(['hub', 'import', '--data-dir', path.join(root, 'f'), '--in', forged, '--quiet']);
  t.match(r4, { code: 1, err: /imported audit chain does not verify at entry \d+/ }, 'a forged chain is refused after the write');
  const st = openStateStores({ dataDir: path.join(root, 'f'), logger: silentLogger() });
  await st.start();
  t.same([(await st.identity.listTokens()).length, (await st.audit.list({ limit: 10 })).length], [0, 0], 'and the store was emptied again: nothing half-imported');
  await st.stop();
  const again = await runCli(['hub', 'import', '--data-dir', path.join(root, 'f'), '--in', f, '--quiet']);
  t.equal(again.code, 0, `a second run into the same store succeeds: ${again.err}`);

  // Into the source itself: not empty.
  t.match(await runCli(['hub', 'import', '--data-dir', dirA, '--in', f, '--quiet']), { code: 1, err: /already holds data \(table '\w+'\).*\(HUB_ERR_IMPORT_TARGET\)/ }, 'a non-empty target is refused');
  const forced = await runCli(['hub', 'import', '--data-dir', dirA, '--in', f, '--force', '--quiet']);
  t.equal(forced.code, 0, forced.err);
  t.match(forced.out, /audit chain verified: \d+ entries/, '--force empties it and imports');
  if (!skip) {
    // PostgreSQL: a second import into the same schema is refused; --force empties it (TRUNCATE) and imports.
    const pgStore = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${pgSchema(t)}`;
    t.equal((await runCli(['hub', 'import', '--store', pgStore, '--in', f, '--quiet'])).code, 0);
    t.match(await runCli(['hub', 'import', '--store', pgStore, '--in', f, '--quiet']), { code: 1, err: /target postgres store already holds data.*\(HUB_ERR_IMPORT_TARGET\)/ }, 'a non-empty PostgreSQL target is refused');
    const pgForced = await runCli(['hub', 'import', '--store', pgStore, '--in', f, '--quiet', '--force']);
    t.match(pgForced, { code: 0, out: /audit chain verified/ }, '--force on PostgreSQL empties and imports');
  }
  t.match(await runCli(['hub', 'export', '--data-dir', path.join(root, 'nothing-here'), '--out', path.join(root, 'x.gz')]), { code: 1, err: /no SQLite hub in .*nothing-here \(registry\.sqlite missing\)/ }, 'exporting a directory that holds no hub');
  t.notOk(existsSync(path.join(root, 'nothing-here')), 'and nothing was created there');
  t.match(await runCli(['hub', 'export', '--store', 'mysql://db/x', '--out', path.join(root, 'x.gz')]), { code: 1, err: /neither postgres:\/\/… nor sqlite:DIR/ }, 'a store that is not one');
  if (!skip) {
    const none = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${pgSchema(t)}`;
    t.match(await runCli(['hub', 'export', '--store', none, '--out', path.join(root, 'x.gz')]), { code: 1, err: /holds no hub \(no schema version\)/ }, 'exporting a PostgreSQL schema with no hub in it');
  }
  t.notOk(existsSync(path.join(root, 'x.gz')) || existsSync(path.join(root, 'x.gz.partial')), 'no archive left behind by a failed export');
  t.match(await runCli(['hub', 'import', '--data-dir', dirA]), { code: 2, err: /missing --in/ }, 'usage error');
  t.match(await runCli(['hub', 'export', '--data-dir', dirA]), { code: 2, err: /missing --out/ }, 'usage error');
});
