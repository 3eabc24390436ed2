/**
 * Firmware end to end (issue 7): hub → MQTT → gateway → field device, with a
 * real hub, a real gateway and simulators that speak XMODEM-1K and Modbus
 * FC 21 and really store the image. Bad input: untrusted, mis-signed and
 * unsigned manifests, a wrong model, an altered and a truncated image at the
 * hub, a device failing mid-flash (no retry storm, the rollout stops itself),
 * a download interrupted by a dropped connection and by a gateway restart
 * that resumes with exactly the missing chunks.
 */
import t from 'tap';
import mqtt from 'mqtt';
import path from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { chunkCount, fwTopics, isFinalFwState, type FirmwareOffer } from '../contract/index.js';
import { DownloadStore, generateSigningKey, parsePrivateKey, signManifest } from '../firmware-bridge/index.js';
import { buildSimImage } from '../scripts/sim/sim-firmware.js';
import { GW, hubApi, rollOut, rolloutState, sign, startFwStack } from './support/fw-stack.js';
import { waitFor } from './support/wait.js';

const stopped = (hub: Parameters<typeof rolloutState>[0], id: string, state: string) =>
  waitFor(async () => {
    const r = await rolloutState(hub, id);
    return r.state === state ? r : null;
  }, `rollout ${state}`, 20_000);

t.test('XMODEM-1K and FC 21 devices take signed firmware and report the new version', async (t) => {
  const s = await startFwStack(t, { dir: t.testdir() });
  const xmImage = buildSimImage('2.0.0', 150_000);
  const fcImage = buildSimImage('2.1.0', 90_001);
  const r1 = await rollOut(s.hub, xmImage, sign(s.key, xmImage, 'sim-xmodem-sensor', '2.0.0', 16_384));
  const r2 = await rollOut(s.hub, fcImage, sign(s.key, fcImage, 'sim-fc21-device', '2.1.0'));
  const done1 = await stopped(s.hub, r1, 'completed');
  const done2 = await stopped(s.hub, r2, 'completed');
  t.match(done1.jobs, [{ device: 'xm-1', status: 'updated', state: 'updated', result: 1, version: '2.0.0' }]);
  t.match(done2.jobs, [{ device: 'fc21-1', status: 'updated', state: 'updated', result: 1, version: '2.1.0' }]);
  t.same(s.xm.image, xmImage, 'the bootloader stored exactly the image');
  t.same(s.fc21.image, fcImage, 'the Modbus device stored exactly the image');
  t.equal(s.xm.stats.sessions, 1);
  t.equal(s.fc21.stats.commits, 1);
  // Every state change reached the hub as an event, in order.
  await waitFor(async () => (await s.hub.store.events({ gateway: GW, limit: 100 })).filter((e) => e.type === 'fw.updated').length === 2, 'fw.updated events');
  const types = (await s.hub.store.events({ gateway: GW, limit: 100 })).filter((e) => e.device === 'xm-1' && e.type.startsWith('fw.')).map((e) => e.type).reverse();
  t.same(types, ['fw.downloading', 'fw.downloaded', 'fw.updating', 'fw.updated']);
  // The XMODEM device polls again after its flash: its new version is telemetry too.
  await waitFor(async () => (await hubApi<{ items: Array<{ value: unknown }> }>(s.hub, 'GET', `/api/v1/readings/latest?gateway=${GW}&device=xm-1&point=fw_version`)).body.items[0]?.value === '2.0.0', 'version reading');
  const jobs = await s.gw.firmware.list();
  t.equal(jobs.length, 2);
  t.ok(jobs.every((j) => j.state === 'updated' && j.reportedSeq === j.seq), 'every report acknowledged');
});

t.test('bad signatures and a wrong model are refused before any byte is fetched', async (t) => {
  const s = await startFwStack(t, { dir: t.testdir() });
  const image = buildSimImage('3.0.0', 20_000);
  // Signed by a key the gateway does not trust (the hub has no key list: it stores any signed manifest).
  const stranger = generateSigningKey();
  const r1 = await rollOut(s.hub, image, sign(stranger, image, 'sim-fc21-device', '3.0.0'));
  const f1 = await stopped(s.hub, r1, 'stopped');
  t.match(f1.jobs[0], { status: 'failed', result: 5, error: { code: 'FW_ERR_UNTRUSTED_KEY' } });
  // Mis-signed: the manifest was altered after signing.
  const good = sign(s.key, image, 'sim-fc21-device', '3.0.0');
  const r2 = await rollOut(s.hub, image, { ...good, manifest: { ...good.manifest, version: '3.0.1' } });
  const f2 = await stopped(s.hub, r2, 'stopped');
  t.match(f2.jobs[0], { status: 'failed', result: 5, error: { code: 'FW_ERR_SIGNATURE' } });
  t.equal(s.hub.firmware.chunks.stats.requests, 0, 'no chunk was asked for');

  // Unsigned and wrong-model offers the hub would refuse, sent straight to the gateway's topic.
  const raw = await mqtt.connectAsync(`mqtt://127.0.0.1:${s.hub.mqttPort}`, { clientId: 'hostile', reconnectPeriod: 0 });
  t.teardown(() => raw.endAsync(true));
  const offer = (job: string, device: string, signed: FirmwareOffer['signed']): Promise<unknown> =>
    raw.publishAsync(fwTopics.offer(GW), JSON.stringify({ v: 1, job, rollout: 'r-x', device, signed, issuedAt: Date.now() }), { qos: 1 });
  await offer('x-unsigned', 'fc21-1', { manifest: good.manifest });
  const { key: priv, keyId } = parsePrivateKey(s.key.privateKeyPem);
  await offer('x-model', 'fc21-1', signManifest({ ...good.manifest, model: 'sim-xmodem-sensor' }, priv, keyId));
  await offer('x-nodev', 'nope-9', good);
  // Each job is recorded (idle) before its checks run: wait for all three to be decided, not only recorded
  // (CI once read x-nodev while still idle).
  await waitFor(async () => (await s.gw.firmware.list()).filter((j) => j.job.startsWith('x-') && isFinalFwState(j.state)).length === 3, 'three refused jobs');
  const byId = Object.fromEntries((await s.gw.firmware.list()).map((j) => [j.job, j]));
  t.match(byId['x-unsigned'], { state: 'failed', result: 5, error: { code: 'FW_ERR_UNSIGNED' } });
  t.match(byId['x-model'], { state: 'failed', result: 6, error: { code: 'FW_ERR_WRONG_MODEL' } });
  t.match(byId['x-nodev'], { state: 'failed', result: 6, error: { code: 'FW_ERR_UNSUPPORTED' } });
  t.equal(s.fc21.stats.fc21Requests, 0, 'the device was never touched');
  t.equal(s.hub.firmware.chunks.stats.requests, 0);
});

t.test('an altered or truncated image at the hub fails the integrity check; nothing is flashed', async (t) => {
  const s = await startFwStack(t, { dir: t.testdir() });
  const image = buildSimImage('4.0.0', 40_000);
  const signed = sign(s.key, image, 'sim-fc21-device', '4.0.0');
  await hubApi(s.hub, 'PUT', '/api/v1/firmware/images', image);
  const file = path.join(s.dir, 'hub', 'firmware', 'sha256', signed.manifest.sha256.slice(0, 2), signed.manifest.sha256);
  const m = await hubApi<{ id: string }>(s.hub, 'POST', '/api/v1/firmware/manifests', signed);
  const altered = Buffer.from(await readFile(file));
  altered[30_000]! ^= 0x55;
  await writeFile(file, altered);
  const r1 = await hubApi<{ id: string }>(s.hub, 'POST', '/api/v1/firmware/rollouts', { manifest: m.body.id });
  const f1 = await stopped(s.hub, r1.body.id, 'stopped');
  t.match(f1.jobs[0], { status: 'failed', result: 5, error: { code: 'FW_ERR_INTEGRITY', message: /SHA-256/ } });
  t.equal(s.fc21.stats.fc21Requests, 0, 'the hash is checked before any flashing');

  await writeFile(file, image.subarray(0, 30_000));
  s.hub.firmware.chunks.evict(signed.manifest.sha256);
  const r2 = await hubApi<{ id: string }>(s.hub, 'POST', '/api/v1/firmware/rollouts', { manifest: m.body.id });
  const f2 = await stopped(s.hub, r2.body.id, 'stopped');
  t.match(f2.jobs[0], { status: 'failed', result: 5, error: { code: 'FW_ERR_INTEGRITY' } });
  t.equal(s.fc21.stats.fc21Requests, 0);
});

t.test('a device failing mid-flash: failed with result 8, the canary stops the rollout, no retry', async (t) => {
  const s = await startFwStack(t, { dir: t.testdir(), xm: { failAfterBlocks: 20 }, fc21: { failAtRequest: 30 }, hubReofferMs: 200 });
  const xmImage = buildSimImage('5.0.0', 60_000);
  const fcImage = buildSimImage('5.1.0', 30_000);
  const r1 = await rollOut(s.hub, xmImage, sign(s.key, xmImage, 'sim-xmodem-sensor', '5.0.0'));
  const r2 = await rollOut(s.hub, fcImage, sign(s.key, fcImage, 'sim-fc21-device', '5.1.0'));
  const f1 = await stopped(s.hub, r1, 'stopped');
  const f2 = await stopped(s.hub, r2, 'stopped');
  t.match(f1, { reason: /canary failed: gw-fw-01\/xm-1 \(FW_ERR_FLASH_CANCELLED\)/, jobs: [{ status: 'failed', state: 'failed', result: 8 }] });
  t.match(f2, { reason: /FW_ERR_FLASH_REJECTED/, jobs: [{ status: 'failed', result: 8 }] });
  // Re-offers run every 200 ms and the gateway reconnects; nothing tries again.
  s.hub.broker.closeClient(GW);
  await sleep(1000);
  t.equal(s.xm.stats.sessions, 1, 'one XMODEM session only');
  t.equal(s.fc21.stats.fc21Requests, 30, 'no FC 21 request after the failing one');
  t.equal(s.xm.version, '1.0.0', 'the old firmware still runs');
  t.match(await s.gw.firmware.list(), [{ state: 'failed' }, { state: 'failed' }]);
  // The XMODEM device polls again after the failed flash.
  await waitFor(() => s.gw.devices()['xm-1'] === 'up', 'xm-1 polled again');
});

t.test('a download cut by a dropped connection and by a gateway restart resumes with exactly the missing chunks', async (t) => {
  const s = await startFwStack(t, { dir: t.testdir(), firmware: { window: 2 } });
  const image = buildSimImage('6.0.0', 400_000);
  const signed = sign(s.key, image, 'sim-fc21-device', '6.0.0', 4096);
  const n = chunkCount(image.length, 4096);
  // Count every chunk index the gateway asks for, and slow the hub's answers so the download takes a while.
  const asked: number[] = [];
  s.hub.broker.instance.subscribe(fwTopics.allRequest, (packet, cb) => {
    asked.push(...(JSON.parse(String(packet.payload)) as { indices: number[] }).indices);
    cb();
  }, () => undefined);
  const serve = s.hub.firmware.chunks.serve.bind(s.hub.firmware.chunks);
  s.hub.firmware.chunks.serve = async (gw, req) => {
    await sleep(15);
    return serve(gw, req);
  };
  const id = await rollOut(s.hub, image, signed);
  await waitFor(() => s.hub.firmware.chunks.stats.chunks >= 20, '20 chunks served');
  s.hub.broker.closeClient(GW); // the link drops; the gateway reconnects by itself
  await waitFor(() => s.hub.firmware.chunks.stats.chunks >= 45, 'download going on after the reconnect');
  await s.gw.stop(); // and now the gateway restarts
  const store = new DownloadStore({ file: path.join(s.dir, 'gw', 'firmware.sqlite') });
  await store.start();
  const have = await store.chunkIndices(signed.manifest.sha256);
  const [job] = await store.listJobs();
  await store.stop();
  t.ok(have.size >= 40 && have.size < n, `${have.size} of ${n} chunks were stored before the restart`);
  t.equal(job!.state, 'downloading');
  const before = asked.length;
  await s.restartGateway();
  const done = await stopped(s.hub, id, 'completed');
  t.match(done.jobs[0], { status: 'updated', version: '6.0.0' });
  const afterRestart = asked.slice(before);
  const firstAsks = [...new Set(afterRestart)].sort((a, b) => a - b);
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !have.has(i));
  t.same(firstAsks.filter((i) => have.has(i)), [], 'after the restart the gateway asked for none of the chunks it had');
  // The hub may still answer the old gateway's last requests (window 2, answers delayed 15 ms) after the
  // restart: those chunks reach the new session unasked and are kept (the whole image is verified at the end).
  const unasked = missing.filter((i) => !firstAsks.includes(i));
  t.ok(unasked.length <= 2, `it asked for every missing chunk except at most the window's worth answered to the old session (${unasked.join(', ') || 'none'})`);
  t.same(s.fc21.image, image);
});

t.test('a gateway restart during a flash fails that job (result 8) and does not flash again', async (t) => {
  const s = await startFwStack(t, { dir: t.testdir(), xm: { baudRate: 115_200 } });
  const image = buildSimImage('8.0.0', 100_000);
  const id = await rollOut(s.hub, image, sign(s.key, image, 'sim-xmodem-sensor', '8.0.0'));
  await waitFor(async () => (await s.gw.firmware.list())[0]?.state === 'updating' && s.xm.stats.blocks > 3, 'flashing');
  await s.gw.stop(); // the sender cancels (CAN CAN) as it stops
  await s.restartGateway();
  const r = await stopped(s.hub, id, 'stopped');
  t.match(r.jobs[0], { status: 'failed', result: 8, error: { code: 'FW_ERR_FLASH_TIMEOUT', message: /(stopped|restarted) while this device was being flashed/ } });
  await sleep(300);
  t.equal(s.xm.stats.sessions, 1, 'no second flash');
  t.equal(s.xm.stats.installs, 0);
});
