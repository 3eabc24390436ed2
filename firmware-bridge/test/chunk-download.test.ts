/**
 * The windowed, resumable chunk download against an in-process chunk server:
 * complete download, lost answers asked again, a restart that resumes with
 * exactly the missing chunks, offline periods, and the refusals — a
 * truncated or altered image at the hub, an unknown image, a stall.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { encodeChunkFrame, decodeChunkFrame, type FirmwareChunkRequest, type FirmwareManifest } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import { ChunkDownload, DownloadStore, JobMachine, buildManifest, canTransition, resultForError, sliceChunk, type ChunkRequester } from '../index.js';
import { IocError } from '../../contract/index.js';

const image = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 31 + 7) & 0xff));
const manifest = buildManifest(image, { model: 'm', version: '2', chunkSize: 4096 }); // 25 chunks

/** Answers requests from `served` (default the image), asynchronously; `drop` decides which answers get lost. */
function server(dl: () => ChunkDownload, o: { served?: Buffer; drop?: (i: number, n: number) => boolean; offline?: () => boolean; error?: string } = {}) {
  const seen = new Map<number, number>();
  const requester: ChunkRequester & { asked: number[] } = {
    asked: [],
    async request(req: FirmwareChunkRequest) {
      if (o.offline?.()) throw new IocError('GW_ERR_UPLINK_OFFLINE', 'offline');
      for (const i of req.indices) {
        requester.asked.push(i);
        const n = (seen.get(i) ?? 0) + 1;
        seen.set(i, n);
        if (o.drop?.(i, n)) continue;
        const frame = o.error
          ? encodeChunkFrame({ kind: 'error', index: i, image: req.image, error: { code: o.error, message: 'no such image' } })
          : encodeChunkFrame({ kind: 'data', index: i, image: req.image, data: sliceChunk(o.served ?? image, i, manifest.chunkSize) });
        setImmediate(() => dl().accept(decodeChunkFrame(frame)));
      }
    },
  };
  return requester;
}

async function store(t: Test, dir: string): Promise<DownloadStore> {
  const s = new DownloadStore({ file: path.join(dir, 'firmware.sqlite') });
  await s.start();
  t.teardown(() => s.stop());
  return s;
}

function download(s: DownloadStore, requester: ChunkRequester, extra: Partial<ConstructorParameters<typeof ChunkDownload>[0]> = {}, m: FirmwareManifest = manifest): ChunkDownload {
  return new ChunkDownload({ store: s, requester, job: 'j1', manifest: m, logger: silentLogger(), requestTimeoutMs: 100, ...extra });
}

t.test('downloads every chunk, windowed, and verifies the image', async (t) => {
  const s = await store(t, t.testdir());
  let dl!: ChunkDownload;
  const req = server(() => dl);
  const progress: number[] = [];
  dl = download(s, req, { window: 6, perRequest: 3, onProgress: (b) => progress.push(b) });
  const got = await dl.run();
  t.same(got, image);
  t.equal(dl.stats.received, 25);
  t.same([...req.asked].sort((a, b) => a - b), Array.from({ length: 25 }, (_, i) => i), 'each chunk asked once');
  t.equal(progress.at(-1), 100_000);
  t.equal((await s.chunkIndices(manifest.sha256)).size, 25, 'every chunk persisted');
});

t.test('lost answers are asked again after the request timeout', async (t) => {
  const s = await store(t, t.testdir());
  let dl!: ChunkDownload;
  const req = server(() => dl, { drop: (i, n) => n === 1 && i % 5 === 2 });
  dl = download(s, req);
  t.same(await dl.run(), image);
  t.equal(dl.stats.reasked, 5);
  t.equal(req.asked.length, 30);
});

t.test('a restart resumes with exactly the chunks that have no row', async (t) => {
  const dir = t.testdir();
  const s1 = new DownloadStore({ file: path.join(dir, 'firmware.sqlite') });
  await s1.start();
  let dl1!: ChunkDownload;
  // The first run loses every answer for chunks 10.. and the process "dies".
  const req1 = server(() => dl1, { drop: (i) => i >= 10 });
  const kill = new AbortController();
  dl1 = download(s1, req1, { window: 4, requestTimeoutMs: 60_000, signal: kill.signal });
  const first = dl1.run().catch((e: Error) => e);
  for (let i = 0; i < 400 && (await s1.chunkIndices(manifest.sha256)).size < 10; i++) await new Promise((r) => setTimeout(r, 5));
  kill.abort();
  t.match(await first, { code: 'FW_ERR_CANCELLED' });
  await s1.stop();
  const s2 = await store(t, dir);
  const kept = await s2.chunkIndices(manifest.sha256);
  t.same([...kept].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  let dl2!: ChunkDownload;
  const req2 = server(() => dl2);
  dl2 = download(s2, req2);
  t.same(await dl2.run(), image);
  t.equal(dl2.stats.fromStore, 10);
  t.same([...req2.asked].sort((a, b) => a - b), Array.from({ length: 15 }, (_, i) => i + 10), 'only the missing chunks were asked for');
});

t.test('offline: requests wait for resume()', async (t) => {
  const s = await store(t, t.testdir());
  let online = false;
  let dl!: ChunkDownload;
  const req = server(() => dl, { offline: () => !online });
  dl = download(s, req);
  const p = dl.run();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(dl.stats.received, 0);
  online = true;
  dl.resume();
  t.same(await p, image);
});

t.test('a truncated image at the hub fails with FW_ERR_INTEGRITY', async (t) => {
  const s = await store(t, t.testdir());
  let dl!: ChunkDownload;
  dl = download(s, server(() => dl, { served: image.subarray(0, 90_000) }));
  await t.rejects(dl.run(), { code: 'FW_ERR_INTEGRITY', message: /chunk 21 .* truncated or altered/ });
});

t.test('an altered image (same size) fails the SHA-256 check; its chunks are dropped', async (t) => {
  const s = await store(t, t.testdir());
  const altered = Buffer.from(image);
  altered[50_000]! ^= 0xff;
  let dl!: ChunkDownload;
  dl = download(s, server(() => dl, { served: altered }));
  await t.rejects(dl.run(), { code: 'FW_ERR_INTEGRITY', message: /SHA-256/ });
  t.equal((await s.chunkIndices(manifest.sha256)).size, 0, 'a new attempt starts clean');
});

t.test('the hub does not have the image: FW_ERR_IMAGE_NOT_FOUND (invalid URI)', async (t) => {
  const s = await store(t, t.testdir());
  let dl!: ChunkDownload;
  dl = download(s, server(() => dl, { error: 'FW_ERR_IMAGE_NOT_FOUND' }));
  const err = await dl.run().catch((e: IocError) => e);
  t.equal((err as IocError).code, 'FW_ERR_IMAGE_NOT_FOUND');
  t.equal(resultForError(err), 7);
});

t.test('no chunk for the stall time: FW_ERR_TRANSFER (connection lost)', async (t) => {
  const s = await store(t, t.testdir());
  let dl!: ChunkDownload;
  dl = download(s, server(() => dl, { drop: () => true }), { stallTimeoutMs: 150 });
  const err = await dl.run().catch((e: IocError) => e);
  t.equal((err as IocError).code, 'FW_ERR_TRANSFER');
  t.equal(resultForError(err), 4);
});

t.test('the job machine follows LwM2M object 5 and refuses illegal transitions', async (t) => {
  const m = new JobMachine({ job: 'j', device: 'd', state: 'idle', result: 0, seq: 0 }, () => 5);
  t.match(m.to('downloading', { bytes: 0, total: 10 }), { state: 'downloading', seq: 1, result: 0, total: 10, ts: 5 });
  t.match(m.to('downloading', { bytes: 5 }), { seq: 2, bytes: 5 });
  t.match(m.to('downloaded'), { state: 'downloaded', seq: 3 });
  t.throws(() => m.to('updated'), { code: 'FW_ERR_ROLLOUT_STATE', message: /from downloaded to updated/ });
  m.to('updating');
  const r = m.to('failed', { error: new IocError('FW_ERR_FLASH_CANCELLED', 'CAN CAN') });
  t.match(r, { state: 'failed', result: 8, error: { code: 'FW_ERR_FLASH_CANCELLED' } });
  t.throws(() => m.to('updating'), { code: 'FW_ERR_ROLLOUT_STATE' }, 'failed is final: no retry');
  t.equal(canTransition('downloading', 'idle'), true, 'cancel resets to idle');
  t.equal(canTransition('updating', 'idle'), false, 'a flash in progress cannot be cancelled');
  for (const [code, result] of [['FW_ERR_SIGNATURE', 5], ['FW_ERR_UNSIGNED', 5], ['FW_ERR_UNTRUSTED_KEY', 5], ['FW_ERR_INTEGRITY', 5], ['FW_ERR_WRONG_MODEL', 6], ['FW_ERR_UNSUPPORTED', 6], ['FW_ERR_STORE_IO', 2], ['FW_ERR_VERSION_MISMATCH', 8], ['FW_ERR_FLASH_TIMEOUT', 8]] as const) {
    t.equal(resultForError(new IocError(code)), result, `${code} → ${result}`);
  }
});
