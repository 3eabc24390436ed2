/**
 * Where the gateway keeps remote configurations (in its data folder):
 *
 * - `desired.json`: the last desired document it received and what became of
 *   it (`applying`, `confirming`, `applied`, `rejected`, `rolled-back`, with
 *   the error). Found in `applying` or `confirming` at start, it means the
 *   gateway stopped before the version was confirmed: it starts with the last
 *   good one and reports why;
 * - `last-good.json`: the last confirmed document, which the gateway starts
 *   with (over its own file) and returns to when a new one fails.
 *
 * Both are written atomically: a temporary file in the same folder, fsync,
 * rename over the old one, fsync of the folder — a power cut leaves the old
 * file or the new one, never half of one (POSIX rename(2) is atomic).
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ConfigDesired, ConfigReported, ConfigStatus } from '../../contract/index.js';

/** `desired.json`. */
export interface StoredDesired {
  doc: ConfigDesired;
  state: ConfigStatus;
  at: number;
  error?: ConfigReported['error'];
}

/** `last-good.json`. */
export interface StoredLastGood {
  doc: ConfigDesired;
  confirmedAt: number;
}

/** Writes `value` as JSON to `file` atomically and durably. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(value));
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  // The rename itself is durable only once the folder is synced.
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Reads a JSON file; null when it does not exist or cannot be parsed (`onCorrupt` says which). */
export async function readJsonFile<T>(file: string, onCorrupt?: (err: Error) => void): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    onCorrupt?.(err as Error);
    return null;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    onCorrupt?.(err as Error);
    return null;
  }
}

/** The two files of one gateway. */
export class ConfigFiles {
  readonly desiredFile: string;
  readonly lastGoodFile: string;

  constructor(dataDir: string) {
    this.desiredFile = path.join(dataDir, 'desired.json');
    this.lastGoodFile = path.join(dataDir, 'last-good.json');
  }

  readDesired(onCorrupt?: (err: Error) => void): Promise<StoredDesired | null> {
    return readJsonFile<StoredDesired>(this.desiredFile, onCorrupt);
  }

  readLastGood(onCorrupt?: (err: Error) => void): Promise<StoredLastGood | null> {
    return readJsonFile<StoredLastGood>(this.lastGoodFile, onCorrupt);
  }

  writeDesired(v: StoredDesired): Promise<void> {
    return writeJsonAtomic(this.desiredFile, v);
  }

  writeLastGood(v: StoredLastGood): Promise<void> {
    return writeJsonAtomic(this.lastGoodFile, v);
  }
}
