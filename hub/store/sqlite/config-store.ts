/**
 * Desired configurations and what the gateways reported, in the hub's
 * registry database (tables created here, next to the registry's):
 *
 * - `config_versions`: every accepted version per gateway (gateway,
 *   version, the whole desired document with its secrets sealed —
 *   secret-box.ts —, hash, who and when); never changed, except once by
 *   {@link ConfigStore.replaceDocument} when rows stored before secrets were
 *   sealed are sealed at start;
 * - `config_reported`: the last report of each gateway;
 * - `config_events`: each change of a gateway's reported status (applied,
 *   rejected, rolled back… with the reason), for the history view; the
 *   newest `eventsPerGateway` per gateway are kept.
 *
 * The SQLite backend of {@link ConfigPort}; the PostgreSQL one is
 * hub/store/postgres/pg-config.ts.
 */
import { IocError, type ConfigDesired, type ConfigReported } from '../../../contract/index.js';
import type { SqliteDb } from '../../../lib/index.js';
import { checkKeep, DEFAULT_CONFIG_EVENTS_PER_GATEWAY, eventOf, type ConfigEvent, type ConfigPort, type ConfigVersionInfo, type StoredReport } from '../../config/config-port.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS config_versions (
  gateway TEXT NOT NULL, version INTEGER NOT NULL, hash TEXT NOT NULL, doc TEXT NOT NULL,
  pushed_at INTEGER NOT NULL, pushed_by TEXT NOT NULL, note TEXT,
  PRIMARY KEY (gateway, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS config_reported (
  gateway TEXT PRIMARY KEY, doc TEXT NOT NULL, received_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS config_events (
  n INTEGER PRIMARY KEY AUTOINCREMENT, gateway TEXT NOT NULL, ts INTEGER NOT NULL, version INTEGER NOT NULL,
  status TEXT NOT NULL, running INTEGER NOT NULL, code TEXT, message TEXT);
CREATE INDEX IF NOT EXISTS config_events_gw ON config_events (gateway, n);
`;

export type { ConfigEvent, ConfigVersionInfo, StoredReport } from '../../config/config-port.js';

type Raw = Record<string, unknown>;
const info = (r: Raw): ConfigVersionInfo => ({
  gateway: String(r.gateway), version: Number(r.version), hash: String(r.hash), pushedAt: Number(r.pushed_at), pushedBy: String(r.pushed_by), note: r.note === null ? null : String(r.note),
});

/** Dependencies of {@link ConfigStore}. */
export interface ConfigStoreDeps {
  /** The registry database (its connection is read when used: it is opened after this store is built). */
  db: { readonly db: SqliteDb };
  /** Configuration events kept per gateway (default {@link DEFAULT_CONFIG_EVENTS_PER_GATEWAY}). */
  eventsPerGateway?: number;
}

/** SQL for configuration versions and reports. */
export class ConfigStore implements ConfigPort {
  private readonly keepEvents: number;

  constructor(private readonly deps: ConfigStoreDeps) {
    this.keepEvents = checkKeep(deps.eventsPerGateway);
  }

  private get db(): SqliteDb {
    return this.deps.db.db;
  }

  /** Creates the tables (the registry database must be open). */
  async start(): Promise<void> {
    await this.db.exec(SCHEMA);
  }

  async stop(): Promise<void> {}

  /**
   * Stores the next version of a gateway's configuration in one transaction:
   * `build(previous)` gets the newest stored version (or null) and returns
   * the document to store, or throws (nothing is stored).
   */
  async addVersion(gateway: string, build: (latest: ConfigVersionInfo | null) => ConfigDesired | Promise<ConfigDesired>): Promise<ConfigDesired> {
    return this.db.transaction(async () => {
      const row = await this.db.get<Raw>('SELECT gateway, version, hash, pushed_at, pushed_by, note FROM config_versions WHERE gateway = ? ORDER BY version DESC LIMIT 1', [gateway]);
      const doc = await build(row ? info(row) : null);
      await this.db.run('INSERT INTO config_versions(gateway, version, hash, doc, pushed_at, pushed_by, note) VALUES (?,?,?,?,?,?,?)', [
        gateway, doc.version, doc.hash, JSON.stringify(doc), doc.pushedAt, doc.pushedBy, doc.note ?? null,
      ]);
      return doc;
    });
  }

  /** A gateway's versions, newest first. */
  async versions(gateway: string, limit = 100): Promise<ConfigVersionInfo[]> {
    const rows = await this.db.all<Raw>('SELECT gateway, version, hash, pushed_at, pushed_by, note FROM config_versions WHERE gateway = ? ORDER BY version DESC LIMIT ?', [gateway, limit]);
    return rows.map(info);
  }

  /** One version's document (the newest when `version` is omitted); null if none. */
  async document(gateway: string, version?: number): Promise<ConfigDesired | null> {
    const row = version === undefined
      ? await this.db.get<Raw>('SELECT doc FROM config_versions WHERE gateway = ? ORDER BY version DESC LIMIT 1', [gateway])
      : await this.db.get<Raw>('SELECT doc FROM config_versions WHERE gateway = ? AND version = ?', [gateway, version]);
    return row ? (JSON.parse(String(row.doc)) as ConfigDesired) : null;
  }

  /** The hash of one version; null when there is no such version. */
  async hashOf(gateway: string, version: number): Promise<string | null> {
    const row = await this.db.get<Raw>('SELECT hash FROM config_versions WHERE gateway = ? AND version = ?', [gateway, version]);
    return row ? String(row.hash) : null;
  }

  /**
   * Every stored document whose text contains `text` (a cheap pre-filter for
   * the start-up sealing of old rows), by gateway and version.
   */
  async documentsContaining(text: string): Promise<ConfigDesired[]> {
    const rows = await this.db.all<Raw>("SELECT doc FROM config_versions WHERE instr(doc, ?) > 0 ORDER BY gateway, version", [text]);
    return rows.map((r) => JSON.parse(String(r.doc)) as ConfigDesired);
  }

  /** Rewrites one stored version's document and hash (sealing rows stored in clear; nothing else). */
  async replaceDocument(doc: ConfigDesired): Promise<void> {
    await this.db.run('UPDATE config_versions SET doc = ?, hash = ? WHERE gateway = ? AND version = ?', [JSON.stringify(doc), doc.hash, doc.gateway, doc.version]);
  }

  /**
   * Rewrites the database file so that rows replaced by {@link replaceDocument}
   * leave no copy in free pages or the write-ahead log (VACUUM, then a
   * truncating checkpoint). Only after sealing old rows.
   */
  async scrub(): Promise<void> {
    await this.db.exec('VACUUM');
    await this.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  }

  /** The newest document of every gateway. */
  async latestDocuments(): Promise<ConfigDesired[]> {
    const rows = await this.db.all<Raw>('SELECT v.doc FROM config_versions v JOIN (SELECT gateway, MAX(version) AS version FROM config_versions GROUP BY gateway) m ON m.gateway = v.gateway AND m.version = v.version');
    return rows.map((r) => JSON.parse(String(r.doc)) as ConfigDesired);
  }

  /** Stores a gateway's report; adds a history row when status, version or running version changed. */
  async saveReport(gateway: string, report: ConfigReported, receivedAt: number): Promise<void> {
    await this.db.transaction(async () => {
      const prev = await this.db.get<Raw>('SELECT doc FROM config_reported WHERE gateway = ?', [gateway]);
      const old = prev ? (JSON.parse(String(prev.doc)) as ConfigReported) : null;
      await this.db.run('INSERT INTO config_reported(gateway, doc, received_at) VALUES (?,?,?) ON CONFLICT(gateway) DO UPDATE SET doc = excluded.doc, received_at = excluded.received_at', [gateway, JSON.stringify(report), receivedAt]);
      const e = eventOf(old, report);
      if (e) {
        await this.db.run('INSERT INTO config_events(gateway, ts, version, status, running, code, message) VALUES (?,?,?,?,?,?,?)', [gateway, e.ts, e.version, e.status, e.running, e.code, e.message]);
        // Bounded history (issue 13): the newest N of this gateway stay. The index (gateway, n) finds the cut.
        await this.db.run('DELETE FROM config_events WHERE gateway = ? AND n <= (SELECT n FROM config_events WHERE gateway = ? ORDER BY n DESC LIMIT 1 OFFSET ?)', [gateway, gateway, this.keepEvents]);
      }
    });
  }

  /** Last reports, of one gateway or all. */
  async reports(gateway?: string): Promise<StoredReport[]> {
    const rows = gateway === undefined
      ? await this.db.all<Raw>('SELECT gateway, doc, received_at FROM config_reported')
      : await this.db.all<Raw>('SELECT gateway, doc, received_at FROM config_reported WHERE gateway = ?', [gateway]);
    return rows.map((r) => ({ gateway: String(r.gateway), report: JSON.parse(String(r.doc)) as ConfigReported, receivedAt: Number(r.received_at) }));
  }

  /** Status changes of a gateway, newest first. */
  async events(gateway: string, limit = 100): Promise<ConfigEvent[]> {
    const rows = await this.db.all<Raw>('SELECT * FROM config_events WHERE gateway = ? ORDER BY n DESC LIMIT ?', [gateway, limit]);
    return rows.map((r) => ({
      n: Number(r.n), gateway: String(r.gateway), ts: Number(r.ts), version: Number(r.version), status: String(r.status), running: Number(r.running),
      code: r.code === null ? null : String(r.code), message: r.message === null ? null : String(r.message),
    }));
  }

  /** Gateways with at least one version. */
  async gateways(): Promise<string[]> {
    const rows = await this.db.all<Raw>('SELECT DISTINCT gateway FROM config_versions');
    return rows.map((r) => String(r.gateway));
  }
}
