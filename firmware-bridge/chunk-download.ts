/**
 * The resumable, windowed chunk download of one image (transport-agnostic:
 * the gateway plugs in MQTT).
 *
 * Protocol choice: **pull with a window**. The gateway asks for chunk
 * indices (`fw/request`, several per message) and keeps up to `window`
 * chunks asked-for and not yet received; each arrival frees a slot and the
 * next request goes out at once, so the link stays full without waiting a
 * round trip per chunk. Compared with a hub-driven push, the receiver — the
 * side that knows what it already has on disk — decides what is sent: resume
 * after a restart is "ask for the indices without a row", a lost chunk is
 * asked again after `requestTimeoutMs`, a slow gateway is never flooded, and
 * the hub keeps no per-transfer state (it answers each request from the
 * content-addressed store). See firmware-bridge/README.md.
 *
 * Every received chunk is stored (DownloadStore) before it counts; when the
 * last one is in, the image is assembled and checked against the manifest's
 * size and SHA-256 (FW_ERR_INTEGRITY on a mismatch, and the chunks are
 * dropped so a new job starts clean). Nothing is handed to a flasher before
 * that check passes.
 */
import { IocError, chunkCount, type ChunkFrame, type FirmwareChunkRequest, type FirmwareManifest } from '../contract/index.js';
import type { Logger } from '../lib/index.js';
import type { DownloadStore } from './download-store.js';
import { verifyImage } from './manifest.js';

/** Sends chunk requests to the hub. */
export interface ChunkRequester {
  /** Publishes a request; rejects when the link is down (the download then waits for {@link ChunkDownload.resume}). */
  request(req: FirmwareChunkRequest): Promise<void>;
}

/** Settings of a {@link ChunkDownload}. */
export interface ChunkDownloadOptions {
  store: DownloadStore;
  requester: ChunkRequester;
  job: string;
  manifest: FirmwareManifest;
  logger: Logger;
  /** Chunks asked for and not yet received, at most. Default 16. */
  window?: number;
  /** Indices per request message, 1..64. Default 8. */
  perRequest?: number;
  /** A chunk not received this long after it was asked for is asked again. Default 3000 ms. */
  requestTimeoutMs?: number;
  /** No chunk at all for this long (offline time included) fails the download with FW_ERR_TRANSFER. Default 24 h. */
  stallTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
}

/** Counters of one download. */
export interface ChunkDownloadStats {
  chunks: number;
  /** Chunks found in the store at start (a resumed download). */
  fromStore: number;
  received: number;
  duplicates: number;
  /** Chunks asked for again after a timeout or an offline period. */
  reasked: number;
  requests: number;
  /** Every index asked for, in order (tests check a resume asks only for what is missing). */
  asked: number[];
}

/** One image being downloaded. */
export class ChunkDownload {
  readonly stats: ChunkDownloadStats;
  private readonly n: number;
  private readonly have = new Set<number>();
  private readonly inflight = new Map<number, number>();
  private queue: number[] = [];
  private bytes = 0;
  private lastProgress = Date.now();
  private online = true;
  private writes: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private settle: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private done = false;

  constructor(private readonly o: ChunkDownloadOptions) {
    this.n = chunkCount(o.manifest.size, o.manifest.chunkSize);
    this.stats = { chunks: this.n, fromStore: 0, received: 0, duplicates: 0, reasked: 0, requests: 0, asked: [] };
  }

  private get image(): string {
    return this.o.manifest.sha256;
  }

  private chunkLength(i: number): number {
    return Math.min(this.o.manifest.chunkSize, this.o.manifest.size - i * this.o.manifest.chunkSize);
  }

  /** Downloads what is missing and resolves with the verified image. */
  async run(): Promise<Buffer> {
    for (const i of await this.o.store.chunkIndices(this.image)) {
      if (i < this.n) {
        this.have.add(i);
        this.bytes += this.chunkLength(i);
      }
    }
    this.stats.fromStore = this.have.size;
    for (let i = 0; i < this.n; i++) if (!this.have.has(i)) this.queue.push(i);
    if (this.stats.fromStore > 0) this.o.logger.info({ image: this.image, have: this.have.size, of: this.n }, 'resuming firmware download');
    this.o.onProgress?.(this.bytes, this.o.manifest.size);
    const result = new Promise<Buffer>((resolve, reject) => (this.settle = { resolve, reject }));
    const onAbort = (): void => this.fail(new IocError('FW_ERR_CANCELLED', `download of ${this.image} cancelled`));
    this.o.signal?.addEventListener('abort', onAbort, { once: true });
    const tick = Math.max(20, Math.min(500, (this.o.requestTimeoutMs ?? 3000) / 4));
    this.timer = setInterval(() => this.check(), tick);
    try {
      if (this.queue.length === 0) void this.finish();
      else this.pump();
      return await result;
    } finally {
      this.o.signal?.removeEventListener('abort', onAbort);
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** The link is back: ask again for everything outstanding. */
  resume(): void {
    this.online = true;
    this.requeueInflight();
    this.pump();
  }

  /** The link went down: stop asking until {@link resume}. */
  pause(): void {
    this.online = false;
  }

  /** Takes a frame for this image (the caller routes by image hash). */
  accept(frame: ChunkFrame): void {
    if (this.done || frame.image !== this.image) return;
    if (frame.kind === 'error') {
      const code = frame.error.code === 'FW_ERR_IMAGE_NOT_FOUND' ? 'FW_ERR_IMAGE_NOT_FOUND' : 'FW_ERR_TRANSFER';
      this.fail(new IocError(code, `the hub refused chunk ${frame.index}: ${frame.error.message}`, { context: { image: this.image, index: frame.index, hubCode: frame.error.code } }));
      return;
    }
    const i = frame.index;
    if (i >= this.n) return;
    if (frame.data.length !== this.chunkLength(i)) {
      this.fail(new IocError('FW_ERR_INTEGRITY', `chunk ${i} of ${this.image} has ${frame.data.length} bytes, the manifest implies ${this.chunkLength(i)} (image at the hub truncated or altered)`, { context: { image: this.image, index: i } }));
      return;
    }
    this.inflight.delete(i);
    if (this.have.has(i)) {
      this.stats.duplicates++;
      return;
    }
    this.have.add(i);
    this.stats.received++;
    this.bytes += frame.data.length;
    this.lastProgress = Date.now();
    const data = Buffer.from(frame.data);
    this.writes = this.writes.then(() => this.o.store.putChunk(this.image, i, data)).catch((err: Error) => this.fail(err));
    this.o.onProgress?.(this.bytes, this.o.manifest.size);
    if (this.have.size === this.n) void this.finish();
    else this.pump();
  }

  private requeueInflight(): void {
    if (this.inflight.size === 0) return;
    const back = [...this.inflight.keys()].filter((i) => !this.have.has(i)).sort((a, b) => a - b);
    this.inflight.clear();
    this.stats.reasked += back.length;
    this.queue = [...back, ...this.queue];
  }

  private check(): void {
    if (this.done) return;
    const now = Date.now();
    if (now - this.lastProgress > (this.o.stallTimeoutMs ?? 86_400_000)) {
      this.fail(new IocError('FW_ERR_TRANSFER', `no firmware chunk arrived for ${Math.round((now - this.lastProgress) / 1000)} s; giving up (connection lost)`, { context: { image: this.image } }));
      return;
    }
    const expired = [...this.inflight].filter(([, t]) => now >= t).map(([i]) => i);
    if (expired.length === 0) return;
    for (const i of expired) this.inflight.delete(i);
    this.stats.reasked += expired.length;
    this.queue = [...expired.sort((a, b) => a - b), ...this.queue];
    this.pump();
  }

  private pump(): void {
    const window = this.o.window ?? 16;
    const per = Math.min(64, this.o.perRequest ?? 8);
    while (!this.done && this.online && this.queue.length > 0 && this.inflight.size < window) {
      const indices: number[] = [];
      while (indices.length < per && this.queue.length > 0 && this.inflight.size + indices.length < window) {
        const i = this.queue.shift()!;
        if (!this.have.has(i) && !this.inflight.has(i)) indices.push(i);
      }
      if (indices.length === 0) break;
      const deadline = Date.now() + (this.o.requestTimeoutMs ?? 3000);
      for (const i of indices) this.inflight.set(i, deadline);
      this.stats.requests++;
      this.stats.asked.push(...indices);
      this.o.requester.request({ v: 1, job: this.o.job, image: this.image, indices }).catch((err: Error) => {
        // Offline: put them back and wait for resume().
        this.o.logger.debug({ err: err.message, image: this.image }, 'chunk request not sent; waiting for the link');
        this.online = false;
        for (const i of indices) this.inflight.delete(i);
        this.queue = [...indices.filter((i) => !this.have.has(i)), ...this.queue];
      });
    }
  }

  private async finish(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      await this.writes;
      if (!this.settle) return;
      const image = await this.o.store.assemble(this.image);
      try {
        verifyImage(this.o.manifest, image);
      } catch (err) {
        await this.o.store.dropChunks(this.image);
        throw err;
      }
      this.settle.resolve(image);
    } catch (err) {
      this.settle?.reject(err as Error);
    }
    this.settle = null;
  }

  private fail(err: Error): void {
    if (!this.settle) return;
    this.done = true;
    const s = this.settle;
    this.settle = null;
    if ((err as IocError).code === 'FW_ERR_INTEGRITY') void this.o.store.dropChunks(this.image).catch(() => undefined);
    s.reject(err);
  }
}
