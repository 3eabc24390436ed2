/**
 * Confirming an update: the device's version point, read back after
 * flashing, must name the manifest's version — `versionCode` when the point
 * is a number and the manifest has one, else the version text (a string
 * point is compared without surrounding blanks and NULs).
 */
import { IocError, type FirmwareManifest, type ReadingValue } from '../contract/index.js';

/** True when a version point value names the manifest's version. */
export function versionMatches(value: ReadingValue | undefined, manifest: Pick<FirmwareManifest, 'version' | 'versionCode'>): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === 'number') return manifest.versionCode !== undefined ? value === manifest.versionCode : String(value) === manifest.version;
  return String(value).replace(/\0/g, '').trim() === manifest.version;
}

/** Options of {@link confirmVersion}. */
export interface ConfirmOptions {
  /** Give up after this long (the device may reboot for a while). Default 30 s. */
  timeoutMs?: number;
  /** Pause between reads. Default 500 ms. */
  intervalMs?: number;
  signal?: AbortSignal;
}

/**
 * Reads the version with `read` until it matches the manifest; reads that
 * fail (the device is rebooting) are retried until the deadline. Resolves
 * with the version seen; rejects with FW_ERR_VERSION_MISMATCH naming the last
 * value read (or the last error).
 */
export async function confirmVersion(read: () => Promise<ReadingValue | undefined>, manifest: Pick<FirmwareManifest, 'version' | 'versionCode'>, o: ConfirmOptions = {}): Promise<string> {
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  let last: string = 'nothing';
  for (;;) {
    try {
      const v = await read();
      if (versionMatches(v, manifest)) return String(v).replace(/\0/g, '').trim();
      last = `'${String(v)}'`;
    } catch (err) {
      last = `an error (${(err as Error).message})`;
    }
    if (Date.now() >= deadline || o.signal?.aborted) break;
    await new Promise((r) => setTimeout(r, Math.min(o.intervalMs ?? 500, Math.max(0, deadline - Date.now()))));
  }
  throw new IocError('FW_ERR_VERSION_MISMATCH', `after flashing, the device's version point read ${last}, expected '${manifest.version}'${manifest.versionCode !== undefined ? ` (code ${manifest.versionCode})` : ''}`, { context: { expected: manifest.version } });
}
