/**
 * A store an import has not finished holds part of an archive and no
 * verified audit chain (hub/cli/hub-import.ts). Its checkpoint table,
 * `import_progress`, exists from the import's first write until it is
 * verified. Nothing but `hub import` may use such a store: the hub does not
 * start on it, `hub export` does not copy it, other commands do not open it.
 * The PostgreSQL backend's check is pgHasCheckpoint (postgres/pg-export.ts):
 * this file stays backend-neutral (test/layering.test.ts).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { IocError } from '../../contract/index.js';
import { SqliteDb } from '../../lib/index.js';

/** The refusal, naming the store and what to do. */
export function importUnfinished(where: string): IocError {
  return new IocError('HUB_ERR_IMPORT_UNFINISHED', `an import into this store (${where}) did not finish: run 'ioc-edge hub import' with the same archive again to finish it (or with --force to start over); the hub does not run on part of an archive`);
}

/** Whether this SQLite file holds the checkpoint table. */
export async function hasCheckpoint(db: SqliteDb): Promise<boolean> {
  return Boolean(await db.get("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'import_progress'"));
}

/** Whether an import into the SQLite hub in `dataDir` did not finish (its checkpoint table is in registry.sqlite). Opens nothing that is not there. */
export async function sqliteImportUnderWay(dataDir: string): Promise<boolean> {
  const file = path.join(dataDir, 'registry.sqlite');
  if (!existsSync(file)) return false;
  const db = await SqliteDb.open(file);
  try {
    return await hasCheckpoint(db);
  } finally {
    await db.close();
  }
}
