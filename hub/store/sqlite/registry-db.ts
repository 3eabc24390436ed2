/**
 * The hub's registry database (`registry.sqlite` in the hub's data folder):
 * principals and their hashed secrets, claims, API tokens, the audit log,
 * and the device registry (gateways' site, location and versions; field
 * devices). Kept apart from the telemetry store so registry writes never
 * wait behind a telemetry group commit, and vice versa.
 */
import { IocError } from '../../../contract/index.js';
import { SqliteDb, type Logger } from '../../../lib/index.js';
import { sealAuditRows } from './audit-log.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS principals (
  username TEXT PRIMARY KEY, kind TEXT NOT NULL, secret_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL, created_by TEXT NOT NULL, revoked_at INTEGER, revoked_by TEXT, rules TEXT);
CREATE TABLE IF NOT EXISTS claims (
  id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, site TEXT NOT NULL, gateway_id TEXT, note TEXT,
  created_at INTEGER NOT NULL, created_by TEXT NOT NULL, expires_at INTEGER NOT NULL,
  used_at INTEGER, used_by TEXT, revoked_at INTEGER, revoked_by TEXT, used_transaction TEXT);
CREATE TABLE IF NOT EXISTS api_tokens (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, secret_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL, created_by TEXT NOT NULL, revoked_at INTEGER, revoked_by TEXT);
CREATE TABLE IF NOT EXISTS audit (
  n INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  target TEXT, outcome TEXT NOT NULL, source TEXT, detail TEXT, hash TEXT);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
CREATE TABLE IF NOT EXISTS registry_gateways (
  id TEXT PRIMARY KEY, site TEXT, location TEXT, version TEXT, firmware TEXT, hostname TEXT,
  registered_at INTEGER NOT NULL, registered_by TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS registry_devices (
  gateway TEXT NOT NULL, id TEXT NOT NULL, profile TEXT NOT NULL, bus TEXT NOT NULL, bus_type TEXT, address TEXT,
  unit_id INTEGER, enabled INTEGER NOT NULL DEFAULT 1, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, removed_at INTEGER,
  PRIMARY KEY (gateway, id)) WITHOUT ROWID;
`;

/** [table, column] of TEXT columns added to SCHEMA after files were in use. */
const ADDED_COLUMNS: ReadonlyArray<readonly [string, string]> = [['claims', 'used_transaction'], ['audit', 'hash'], ['principals', 'rules']];

/** Dependencies of {@link RegistryDb}. */
export interface RegistryDbDeps {
  file: string;
  logger: Logger;
  clock?: () => number;
}

/** Owns the registry's SQLite connection; the stores on top of it borrow it. */
export class RegistryDb {
  private handle: SqliteDb | null = null;
  readonly clock: () => number;

  constructor(private readonly deps: RegistryDbDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  /** Opens the file (creating tables). Also usable by CLI commands on the hub machine. */
  async start(): Promise<void> {
    const db = await SqliteDb.open(this.deps.file);
    await db.exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;${SCHEMA}`);
    // Columns added after the first release (SCHEMA has them for new files).
    for (const [table, column] of ADDED_COLUMNS) {
      if (!(await db.get(`SELECT 1 AS x FROM pragma_table_info('${table}') WHERE name = ?`, [column]))) await db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} TEXT`);
    }
    const sealed = await sealAuditRows(db);
    if (sealed > 0) this.deps.logger.info({ entries: sealed }, 'audit entries written before the hash chain existed are now chained (they were not protected before)');
    this.handle = db;
  }

  async stop(): Promise<void> {
    const db = this.handle;
    this.handle = null;
    await db?.close();
  }

  /** The open connection. */
  get db(): SqliteDb {
    if (!this.handle) throw new IocError('HUB_ERR_STORE_IO', 'registry database is not open');
    return this.handle;
  }
}
