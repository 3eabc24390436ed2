/**
 * Serves firmware chunks to gateways: each `fw/request` names a job and
 * chunk indices; the answer is one binary frame per index on that gateway's
 * `fw/chunk` topic (QoS 0: the gateway asks again for what it missed). The
 * hub keeps no transfer state — a request is answered from the
 * content-addressed store, through a small in-memory cache of whole images
 * (LRU by bytes) so a wave of gateways fetching the same image reads it once.
 *
 * A gateway gets chunks only of the image of a job it holds (its own gateway
 * id, offered or active): the broker's ACL already keeps it to its own
 * topics, this keeps it to its own firmware.
 */
import { chunkCount, encodeChunkFrame, fwTopics, type FirmwareChunkRequest, type FirmwareManifest } from '../../contract/index.js';
import { sliceChunk, type ImageBytes } from '../../firmware-bridge/index.js';
import type { Logger } from '../../lib/index.js';
import type { BrokerLink } from '../config/config-service.js';

/** What the server needs to authorise a request: the job's gateway, status and manifest. */
export type JobLookup = (job: string) => Promise<{ gateway: string; status: string; manifest: FirmwareManifest } | null>;

/** Dependencies of {@link ChunkServer}. */
export interface ChunkServerDeps {
  images: ImageBytes;
  broker: BrokerLink;
  logger: Logger;
  lookup: JobLookup;
  /** Bytes of images kept in memory. Default 128 MiB. */
  cacheBytes?: number;
}

/** Counters. */
export interface ChunkServerStats {
  requests: number;
  chunks: number;
  bytes: number;
  refused: number;
  cacheHits: number;
  cacheMisses: number;
}

/** Answers chunk requests. */
export class ChunkServer {
  readonly stats: ChunkServerStats = { requests: 0, chunks: 0, bytes: 0, refused: 0, cacheHits: 0, cacheMisses: 0 };
  private readonly cache = new Map<string, Promise<Buffer>>();
  private readonly sizes = new Map<string, number>();
  private cached = 0;

  constructor(private readonly deps: ChunkServerDeps) {}

  private image(sha256: string): Promise<Buffer> {
    const hit = this.cache.get(sha256);
    if (hit) {
      this.stats.cacheHits++;
      this.cache.delete(sha256);
      this.cache.set(sha256, hit); // most recently used last
      return hit;
    }
    this.stats.cacheMisses++;
    const p = this.deps.images.read(sha256);
    this.cache.set(sha256, p);
    p.then((buf) => {
      this.sizes.set(sha256, buf.length);
      this.cached += buf.length;
      const max = this.deps.cacheBytes ?? 128 * 1024 * 1024;
      for (const key of this.cache.keys()) {
        if (this.cached <= max || key === sha256) break;
        this.cached -= this.sizes.get(key) ?? 0;
        this.sizes.delete(key);
        this.cache.delete(key);
      }
    }, () => this.cache.delete(sha256));
    return p;
  }

  /** Forgets a cached image (e.g. after it was replaced on disk in a test). */
  evict(sha256: string): void {
    if (!this.cache.delete(sha256)) return;
    this.cached -= this.sizes.get(sha256) ?? 0;
    this.sizes.delete(sha256);
  }

  /** Answers one validated request from gateway `gw`. */
  async serve(gw: string, req: FirmwareChunkRequest): Promise<void> {
    this.stats.requests++;
    const topic = fwTopics.chunk(gw);
    const refuse = async (code: string, message: string): Promise<void> => {
      this.stats.refused++;
      this.deps.logger.warn({ gateway: gw, job: req.job, image: req.image, code }, `chunk request refused: ${message}`);
      await this.deps.broker.publish(topic, encodeChunkFrame({ kind: 'error', index: req.indices[0]!, image: req.image, error: { code, message } }), { qos: 0, retain: false });
    };
    const job = await this.deps.lookup(req.job);
    if (!job || job.gateway !== gw) return refuse('FW_ERR_TRANSFER', `gateway ${gw} holds no job '${req.job}'`);
    if (job.manifest.sha256 !== req.image) return refuse('FW_ERR_TRANSFER', `job '${req.job}' is for image ${job.manifest.sha256}, not ${req.image}`);
    if (job.status === 'cancelled') return refuse('FW_ERR_CANCELLED', `job '${req.job}' was cancelled`);
    if (job.status !== 'offered' && job.status !== 'active') return refuse('FW_ERR_TRANSFER', `job '${req.job}' is ${job.status}`);
    let image: Buffer;
    try {
      image = await this.image(req.image);
    } catch (err) {
      const code = (err as { code?: string }).code === 'FW_ERR_IMAGE_NOT_FOUND' ? 'FW_ERR_IMAGE_NOT_FOUND' : 'FW_ERR_TRANSFER';
      return refuse(code, (err as Error).message);
    }
    const n = chunkCount(job.manifest.size, job.manifest.chunkSize);
    for (const i of req.indices) {
      if (i >= n) {
        await refuse('FW_ERR_TRANSFER', `image ${req.image} has ${n} chunks; there is no chunk ${i}`);
        continue;
      }
      // Served as stored: if the stored bytes no longer match the manifest, the gateway's checks say so.
      const data = sliceChunk(image, i, job.manifest.chunkSize);
      this.stats.chunks++;
      this.stats.bytes += data.length;
      await this.deps.broker.publish(topic, encodeChunkFrame({ kind: 'data', index: i, image: req.image, data }), { qos: 0, retain: false });
    }
  }
}
