/**
 * The SQLite hub read and written for export/import (issue 15 item 5):
 * `hub.sqlite` (telemetry, in the store directory or the data directory),
 * `registry.sqlite` and `firmware.sqlite` (data directory) and the image
 * files under `<dataDir>/firmware`. Tables are copied as they are (the
 * PostgreSQL schema has the same columns); the dedupe record is the
 * store's own seq ranges. A separate file from the store classes so that
 * bulk copy never weighs on their code paths.
 */
import path from 'node:path';
import { mkdir, rm } from 'node:fs/promises';
import { IocError } from '../../../contract/index.js';
import { insertMany, SqliteDb, type Logger } from '../../../lib/index.js';
import { DiskImages } from './disk-images.js';
import { HubStore } from './hub-store.js';
import { SCHEMA_VERSION } from './store-schema.js';
import { CHUNK_ROWS, fromB64, ImageAssembler, imagePieces, TABLE, TABLES, toB64, type ArchiveSource, type ArchiveTarget, type ImportCheckpoint, type Row } from '../archive.js';
import { openStateStores } from '../state.js';
import { hasCheckpoint, importUnfinished, sqliteImportUnderWay } from '../import-guard.js';

/** Where a SQLite hub keeps its state. */
export interface SqliteLocation {
  /** The hub's data directory (registry.sqlite, firmware.sqlite, firmware/). */
  dataDir: string;
  /** Where hub.sqlite is (`--store sqlite:DIR`; default the data directory). */
  storeDir?: string | null;
  logger: Logger;
}

type Db = 'hub' | 'registry' | 'firmware';
const DB_OF: Record<string, Db> = {
  registry_gateways: 'registry', registry_devices: 'registry', principals: 'registry', claims: 'registry', api_tokens: 'registry', audit: 'registry',
  config_versions: 'registry', config_reported: 'registry', config_events: 'registry',
  fw_images: 'firmware', fw_manifests: 'firmware', fw_rollouts: 'firmware', fw_jobs: 'firmware',
  gateways: 'hub', series: 'hub', latest: 'hub', events: 'hub', alarms: 'hub', quarantine: 'hub', dedupe: 'hub', readings: 'hub', rollups: 'hub',
};
/** SQLite table of an archive table (the dedupe record is `seq_ranges`). */
const sqlName = (t: string): string => (t === 'dedupe' ? 'seq_ranges' : t);
/** Tables without a rowid: read in primary-key order by offset (all small). */
const NO_ROWID: Record<string, string> = { registry_devices: 'gateway, id', config_versions: 'gateway, version', config_reported: 'gateway', dedupe: 'gateway, epoch' };

/** The three database files open together. */
class Files {
  private readonly dbs = new Map<Db, SqliteDb>();
  constructor(private readonly loc: SqliteLocation) {}

  file(db: Db): string {
    if (db === 'hub') return path.join(this.loc.storeDir ?? this.loc.dataDir, 'hub.sqlite');
    return path.join(this.loc.dataDir, `${db}.sqlite`);
  }

  async open(): Promise<void> {
    for (const db of ['hub', 'registry', 'firmware'] as const) {
      const conn = await SqliteDb.open(this.file(db));
      await conn.exec('PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;');
      this.dbs.set(db, conn);
    }
  }

  of(table: string): SqliteDb {
    const db = this.dbs.get(DB_OF[table]!);
    if (!db) throw new IocError('HUB_ERR_STORE_IO', `SQLite database for '${table}' is not open`);
    return db;
  }

  async close(): Promise<void> {
    for (const db of this.dbs.values()) await db.close();
    this.dbs.clear();
  }
}

/** A stored SQLite row as an archive row. */
function toArchive(table: string, r: Record<string, unknown>): Row {
  const spec = TABLE.get(table)!;
  return spec.columns.map((c) => {
    const v = r[c];
    if (spec.bool?.includes(c)) return v == null ? null : Boolean(v);
    if (spec.bytes?.includes(c)) return toB64(v as Buffer | null);
    return v ?? null;
  });
}

/** An archive row as SQLite column values. */
function fromArchive(table: string, row: Row): unknown[] {
  const spec = TABLE.get(table)!;
  return spec.columns.map((c, i) => {
    const v = row[i];
    if (spec.bool?.includes(c)) return v == null ? null : v ? 1 : 0;
    if (spec.bytes?.includes(c)) return fromB64(v);
    return v;
  });
}

/** Opens a SQLite hub (which must exist: registry.sqlite in the data directory) as an export source. */
export async function openSqliteSource(loc: SqliteLocation): Promise<ArchiveSource> {
  const files = new Files(loc);
  const { access } = await import('node:fs/promises');
  await access(files.file('registry')).catch(() => {
    throw new IocError('HUB_ERR_STORE_IO', `no SQLite hub in ${loc.dataDir} (registry.sqlite missing): give the hub's --data-dir`);
  });
  // Part of an archive is not a hub to copy (checked before the hub's own start below touches anything).
  if (await sqliteImportUnderWay(loc.dataDir)) throw importUnfinished(loc.dataDir);
  // The hub's own start creates any table the file lacks (an older hub); then the files are read raw.
  await prepare(loc);
  await files.open();
  const images = new DiskImages(path.join(loc.dataDir, 'firmware'));
  return {
    kind: 'sqlite',
    async schema() {
      return `sqlite-hub-${SCHEMA_VERSION}`;
    },
    async count(table) {
      if (table === 'image_bytes') {
        let n = 0;
        for (const r of await files.of('fw_images').all<{ sha256: string; size: number }>('SELECT sha256, size FROM fw_images')) if (await images.has(r.sha256)) n += Math.max(1, Math.ceil(r.size / (256 * 1024)));
        return n;
      }
      return (await files.of(table).get<{ n: number }>(`SELECT count(*) AS n FROM ${sqlName(table)}`))?.n ?? 0;
    },
    read: (table) => readTable(files, images, table),
    close: () => files.close(),
  };
}

async function* readTable(files: Files, images: DiskImages, table: string): AsyncGenerator<Row[]> {
  if (table === 'image_bytes') {
    for (const r of await files.of('fw_images').all<{ sha256: string }>('SELECT sha256 FROM fw_images ORDER BY sha256')) {
      if (!(await images.has(r.sha256))) continue;
      yield* imagePieces(r.sha256, await images.read(r.sha256));
    }
    return;
  }
  const db = files.of(table);
  const cols = TABLE.get(table)!.columns.join(', ');
  if (table === 'rollups') {
    // WITHOUT ROWID and possibly large (a bucket per series and level for months): keyset on the primary key.
    const pk = 'series, bucket_ms, ts';
    for (let after: [number, number, number] | null = null; ;) {
      const rows: Array<Record<string, unknown>> = await db.all<Record<string, unknown>>(
        `SELECT ${cols} FROM rollups ${after ? `WHERE (${pk}) > (?, ?, ?)` : ''} ORDER BY ${pk} LIMIT ?`, after ? [...after, CHUNK_ROWS] : [CHUNK_ROWS]);
      if (rows.length > 0) {
        const last = rows[rows.length - 1]!;
        after = [last.series as number, last.bucket_ms as number, last.ts as number];
        yield rows.map((r) => toArchive(table, r));
      }
      if (rows.length < CHUNK_ROWS) return;
    }
  }
  const order = NO_ROWID[table];
  if (order) {
    for (let offset = 0; ; offset += CHUNK_ROWS) {
      const rows = await db.all<Record<string, unknown>>(`SELECT ${cols} FROM ${sqlName(table)} ORDER BY ${order} LIMIT ? OFFSET ?`, [CHUNK_ROWS, offset]);
      if (rows.length > 0) yield rows.map((r) => toArchive(table, r));
      if (rows.length < CHUNK_ROWS) return;
    }
  }
  // Keyset on rowid: each page is one indexed range scan, whatever the table's size.
  for (let after = -Infinity; ;) {
    const rows = await db.all<Record<string, unknown> & { _rid: number }>(`SELECT rowid AS _rid, ${cols} FROM ${sqlName(table)} WHERE rowid > ? ORDER BY rowid LIMIT ?`, [after === -Infinity ? Number.MIN_SAFE_INTEGER : after, CHUNK_ROWS]);
    if (rows.length > 0) {
      after = rows[rows.length - 1]!._rid;
      yield rows.map((r) => toArchive(table, r));
    }
    if (rows.length < CHUNK_ROWS) return;
  }
}

/** Creates (or brings up to date) every table of a SQLite hub by starting and stopping its own stores. */
async function prepare(loc: SqliteLocation): Promise<void> {
  const hub = new HubStore({ file: path.join(loc.storeDir ?? loc.dataDir, 'hub.sqlite'), logger: loc.logger, retentionTimer: false });
  await hub.start();
  await hub.stop();
  const state = openStateStores({ dataDir: loc.dataDir, logger: loc.logger });
  await state.start();
  try {
    await state.config.start();
  } finally {
    await state.stop();
  }
}

/** Opens (creating) a SQLite hub as an import target. */
export async function openSqliteTarget(loc: SqliteLocation): Promise<ArchiveTarget> {
  // Private to the hub's user, as the hub makes its data directory (hub/identity/data-dir.ts).
  await mkdir(loc.dataDir, { recursive: true, mode: 0o700 });
  if (loc.storeDir) await mkdir(loc.storeDir, { recursive: true, mode: 0o700 });
  // An import under way made every table already. Starting the hub's stores over part of an archive
  // would also let the telemetry store's recovery rewrite `latest` from the readings imported so far.
  if (!(await sqliteImportUnderWay(loc.dataDir))) await prepare(loc);
  const files = new Files(loc);
  await files.open();
  const imageDir = path.join(loc.dataDir, 'firmware');
  const images = new DiskImages(imageDir);
  const assembler = new ImageAssembler();
  const tables = TABLES.filter((s) => s.name !== 'image_bytes').map((s) => s.name);
  // The checkpoint lives in each of the three files, beside the rows it counts (written in the same
  // transaction). Writes go one after another, so the furthest of the three is where the import stopped.
  const all = (): SqliteDb[] => (['registry_gateways', 'fw_images', 'readings'] as const).map((t) => files.of(t));
  const forget = async (): Promise<void> => {
    for (const db of all()) await db.run('DROP TABLE IF EXISTS import_progress');
  };
  return {
    kind: 'sqlite',
    async nonEmpty() {
      for (const t of tables) if (await files.of(t).get(`SELECT 1 AS x FROM ${sqlName(t)} LIMIT 1`)) return t;
      return null;
    },
    async progress() {
      let best: ImportCheckpoint | null = null;
      for (const db of all()) {
        if (!(await hasCheckpoint(db))) continue;
        const r = await db.get<{ archive: string; rows: number }>('SELECT archive, rows FROM import_progress WHERE id = 1');
        if (r && (!best || r.rows > best.rows)) best = { archive: r.archive, rows: r.rows };
      }
      return best;
    },
    async begin(archive) {
      for (const db of all()) {
        await db.run('CREATE TABLE IF NOT EXISTS import_progress (id INTEGER PRIMARY KEY CHECK (id = 1), archive TEXT NOT NULL, rows INTEGER NOT NULL)');
        await db.run('INSERT OR REPLACE INTO import_progress (id, archive, rows) VALUES (1, ?, 0)', [archive]);
      }
    },
    async clear() {
      for (const t of tables) await files.of(t).run(`DELETE FROM ${sqlName(t)}`);
      await files.of('readings').run("DELETE FROM store_meta WHERE key = 'latest_rowid'");
      await rm(imageDir, { recursive: true, force: true });
      await forget();
    },
    async write(table, rows, at) {
      if (table === 'image_bytes') {
        await assembler.store(rows, images);
        return;
      }
      const spec = TABLE.get(table)!;
      const db = files.of(table);
      const cols = table === 'dedupe' ? 'gateway, epoch, ranges, updated_at' : spec.columns.join(', ');
      await db.transaction(async () => {
        await insertMany(db, `INSERT INTO ${sqlName(table)} (${cols})`, spec.columns.length, rows.map((r) => fromArchive(table, r)));
        await db.run('UPDATE import_progress SET archive = ?, rows = ? WHERE id = 1', [at.archive, at.rows]);
      });
    },
    async finish() {
      // Latest values came with the archive: the start-up recovery must not recompute them from readings.
      await files.of('readings').run("INSERT OR REPLACE INTO store_meta(key, value) VALUES ('latest_rowid', (SELECT coalesce(max(rowid), 0) FROM readings))");
    },
    done: forget,
    close: () => files.close(),
  };
}
