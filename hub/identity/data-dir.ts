/**
 * The hub's data directory is private (issue 13): the directory and every
 * folder below it 0700, every file 0600 — SQLite databases with their WAL and
 * shared-memory files (which SQLite creates with the database file's mode),
 * the secrets key, firmware images. `ioc-edge hub run` also sets the process
 * umask to 0077 and the systemd unit sets `UMask=0077`, so files made later
 * are private from the start; this pass tightens what an earlier version or
 * another tool left readable, at start and again once the services have
 * created their files. It touches only the directory itself and the hub's
 * own entries in it ({@link isHubEntry}), so a data directory pointed at a
 * folder holding other files does not have them changed.
 */
import { chmod, lstat, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../lib/index.js';

/** The hub's own top-level entries: its SQLite files with their WAL/SHM/journal, the secrets key, the firmware image tree. */
export function isHubEntry(name: string): boolean {
  return /^[a-z]+\.sqlite(-wal|-shm|-journal)?$/.test(name) || name === 'secrets.key' || name === 'firmware';
}

/** Most entries visited below the data directory per pass (a bound on start-up work). */
const MAX_ENTRIES = 100_000;

/**
 * Creates `dir` (0700) if needed and tightens it and the hub's entries in it,
 * recursively: folders to 0700, files to 0600. Symbolic links are not followed. Returns
 * how many entries were tightened, each logged once: a warning, or at debug level
 * when `createdByUs` (the pass after the services started, over files they made).
 */
export async function secureDataDir(dir: string, logger: Logger, createdByUs = false): Promise<number> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let tightened = 0;
  let seen = 0;
  const stack = [dir];
  while (stack.length > 0 && seen < MAX_ENTRIES) {
    const at = stack.pop()!;
    const st = await lstat(at).catch(() => null);
    if (!st || st.isSymbolicLink()) continue;
    seen++;
    const want = st.isDirectory() ? 0o700 : 0o600;
    if ((st.mode & 0o077) !== 0) {
      await chmod(at, want).catch((err: unknown) => logger.warn({ path: at, err: (err as Error).message }, 'cannot make a data directory entry private'));
      tightened++;
      // Entries the services have just created under a loose umask are not news (debug);
      // entries found so at start were readable by others until now (warning).
      if (tightened <= 20) logger[createdByUs ? 'debug' : 'warn']({ path: at, mode: (st.mode & 0o777).toString(8), now: want.toString(8) }, 'data directory entry was readable by others; tightened');
    }
    if (st.isDirectory()) for (const name of await readdir(at).catch(() => [])) if (at !== dir || isHubEntry(name)) stack.push(path.join(at, name));
  }
  if (tightened > 20) logger[createdByUs ? 'debug' : 'warn']({ dir, tightened }, 'data directory entries tightened in all');
  return tightened;
}
