/**
 * Firmware image bytes on the hub's disk (the SQLite deployment): the
 * content-addressed folder of firmware-bridge ImageStore, made private like
 * the rest of the data directory (issue 13: folders 0700 from the store's
 * root down, the file 0600). The PostgreSQL deployment keeps images in the
 * database instead (hub/store/postgres/pg-firmware.ts `PgImageStore`).
 */
import { chmod } from 'node:fs/promises';
import path from 'node:path';
import { ImageStore, type ImageBytes } from '../../firmware-bridge/index.js';

/** Images under `root`, each new one chmodded private. */
export class DiskImages implements ImageBytes {
  private readonly store: ImageStore;

  constructor(readonly root: string) {
    this.store = new ImageStore(root);
  }

  async put(image: Buffer): Promise<{ sha256: string; size: number; created: boolean }> {
    const r = await this.store.put(image);
    if (r.created) await privateImage(this.root, this.store.pathOf(r.sha256));
    return r;
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
