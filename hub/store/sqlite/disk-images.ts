/**
 * Firmware image bytes on the hub's disk (the SQLite deployment): the
 * content-addressed folder of firmware-bridge ImageStore, made private like
 * the rest of the data directory (issue 13: folders 0700 from the store's
 * root down, the file 0600). The PostgreSQL deployment keeps images in the
 * database instead (hub/store/postgres/pg-firmware.ts `PgImageStore`).
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { IocError } from '../../../contract/index.js';
import { ImageStore, sha256Hex, type ImageBytes } from '../../../firmware-bridge/index.js';

/** Images under `root`, each new one chmodded private. */
export class DiskImages implements ImageBytes {
  private readonly store: ImageStore;

  constructor(readonly root: string) {
    this.store = new ImageStore(root);
  }

  /**
   * Stores `image` private (0600 in 0700 folders). Written to a temporary
   * file, fsynced, then hard-linked into place: the link fails when the name
   * exists, so of two concurrent uploads of the same bytes exactly one
   * reports `created` (a rename would let both believe they stored it).
   */
  async put(image: Buffer): Promise<{ sha256: string; size: number; created: boolean }> {
    const sha256 = sha256Hex(image);
    if (await this.store.has(sha256)) return { sha256, size: image.length, created: false };
    const file = this.store.pathOf(sha256);
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    let created = false;
    try {
      await mkdir(path.dirname(file), { recursive: true });
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(image);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await link(tmp, file).then(() => (created = true), (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    } catch (err) {
      throw new IocError('FW_ERR_STORE_IO', `cannot store firmware image ${sha256} under ${this.root}: ${(err as Error).message}`, { cause: err });
    } finally {
      await rm(tmp, { force: true });
    }
    if (created) await privateImage(this.root, file);
    return { sha256, size: image.length, created };
  }

  has(sha256: string): Promise<boolean> {
    return this.store.has(sha256);
  }

  size(sha256: string): Promise<number> {
    return this.store.size(sha256);
  }

  read(sha256: string): Promise<Buffer> {
    return this.store.read(sha256);
  }
}

async function privateImage(root: string, file: string): Promise<void> {
  for (let dir = path.dirname(file); dir.startsWith(root) && dir.length >= root.length; dir = path.dirname(dir)) {
    await chmod(dir, 0o700);
    if (dir === root) break;
  }
  await chmod(file, 0o600);
}
