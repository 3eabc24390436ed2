/**
 * A content-addressed image store on disk: an image lives at
 * `<root>/sha256/<first two hex digits>/<sha256>`, so the same bytes are
 * stored once however many manifests name them, and a name can never point
 * at other bytes. Writes go to a temporary file in the same folder, are
 * fsynced, and are renamed into place: a crash leaves either the whole image
 * or nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { IocError } from '../contract/index.js';
import { sha256Hex } from './manifest.js';

const SHA = /^[0-9a-f]{64}$/;

/**
 * Image bytes by SHA-256, wherever they are kept: what serving chunks and
 * checking manifests need. {@link ImageStore} keeps them in a folder (one
 * process, one disk); the hub on PostgreSQL keeps them in the database
 * (hub/store/postgres/pg-firmware.ts) so that every hub node can serve every
 * image.
 */
export interface ImageBytes {
  /** Stores `image`; resolves with its SHA-256 (an image already stored is not written again: `created` false). */
  put(image: Buffer): Promise<{ sha256: string; size: number; created: boolean }>;
  /** True when the whole image is stored. */
  has(sha256: string): Promise<boolean>;
  /** Size in bytes; FW_ERR_IMAGE_NOT_FOUND when absent. */
  size(sha256: string): Promise<number>;
  /** The whole image; FW_ERR_IMAGE_NOT_FOUND when absent. Not re-hashed: readers verify against the manifest. */
  read(sha256: string): Promise<Buffer>;
}

/** Images by SHA-256 under one folder. */
export class ImageStore implements ImageBytes {
  constructor(readonly root: string) {}

  /** Where the image with this hash is (or would be). */
  pathOf(sha256: string): string {
    if (!SHA.test(sha256)) throw new IocError('FW_ERR_MANIFEST', `'${sha256}' is not a lower-case hex SHA-256`);
    return path.join(this.root, 'sha256', sha256.slice(0, 2), sha256);
  }

  /** Stores `image`; resolves with its SHA-256 (already stored images are not written again). */
  async put(image: Buffer): Promise<{ sha256: string; size: number; created: boolean }> {
    const sha256 = sha256Hex(image);
    const file = this.pathOf(sha256);
    if (await this.has(sha256)) return { sha256, size: image.length, created: false };
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const fh = await open(tmp, 'w', 0o644);
      try {
        await fh.writeFile(image);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new IocError('FW_ERR_STORE_IO', `cannot store firmware image ${sha256}: ${(err as Error).message}`, { cause: err });
    }
    return { sha256, size: image.length, created: true };
  }

  /** True when the image is stored. */
  async has(sha256: string): Promise<boolean> {
    return (await stat(this.pathOf(sha256)).catch(() => null))?.isFile() ?? false;
  }

  /** Size in bytes of a stored image; FW_ERR_IMAGE_NOT_FOUND when absent. */
  async size(sha256: string): Promise<number> {
    const s = await stat(this.pathOf(sha256)).catch(() => null);
    if (!s) throw new IocError('FW_ERR_IMAGE_NOT_FOUND', `firmware image ${sha256} is not stored`, { context: { image: sha256 } });
    return s.size;
  }

  /** The whole image (FW_ERR_IMAGE_NOT_FOUND when absent). Not re-hashed: readers verify against the manifest. */
  async read(sha256: string): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(sha256));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new IocError('FW_ERR_IMAGE_NOT_FOUND', `firmware image ${sha256} is not stored`, { context: { image: sha256 } });
      throw new IocError('FW_ERR_STORE_IO', `cannot read firmware image ${sha256}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Removes an image (no error when absent). */
  async remove(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
  }
}

/** The bytes of chunk `index` of an image held in memory (the last chunk may be shorter; past the end: empty). */
export function sliceChunk(image: Buffer, index: number, chunkSize: number): Buffer {
  return image.subarray(index * chunkSize, Math.min(image.length, (index + 1) * chunkSize));
}
