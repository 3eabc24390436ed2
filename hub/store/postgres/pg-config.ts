/**
 * Remote configuration on PostgreSQL: the {@link ConfigPort} of
 * hub/config/config-port.ts over the tables of schema version 3
 * (schema-v3-config-firmware.ts). The SQLite twin is hub/store/sqlite/config-store.ts;
 * both run hub/store/test/state-conformance-config.ts.
 *
 * Cluster-safe: a push or a report of one gateway holds a transaction-level
 * advisory lock keyed by the gateway, so concurrent pushes from two hub
 * nodes see each other's version (never one number twice: the primary key
 * (gateway, version) would refuse it anyway), and two reports never both
 * believe they are the first of a status.
 */
import type pg from 'pg';
import { type ConfigDesired, type ConfigReported } from '../../../contract/index.js';
import { DEFAULT_CONFIG_EVENTS_PER_GATEWAY, eventOf, type ConfigEvent, type ConfigPort, type ConfigVersionInfo, type StoredReport } from '../../config/config-port.js';
import { checkKeep } from '../../config/config-port.js';
import type { PgPool } from './pg-pool.js';

/** Dependencies of {@link PgConfigStore}. */
export interface PgConfigDeps {
  /** The state pool (migrated to version 3 or later). */
  db: PgPool;
  /** Configuration events kept per gateway (default {@link DEFAULT_CONFIG_EVENTS_PER_GATEWAY}). */
  eventsPerGateway?: number;
}

type Raw = Record<string, unknown>;
const INFO = 'gateway, version, hash, pushed_at, pushed_by, note';
const info = (r: Raw): ConfigVersionInfo => ({
  gateway: String(r.gateway), version: Number(r.version), hash: String(r.hash), pushedAt: Number(r.pushed_at), pushedBy: String(r.pushed_by), note: r.note === null ? null : String(r.note),
});
const docOf = (r: Raw): ConfigDesired => JSON.parse(String(r.doc)) as ConfigDesired;

/** Serialises the writes of one gateway's configuration across every hub on this database; released at COMMIT. */
async function lockGateway(c: pg.PoolClient, what: 'push' | 'report', gateway: string): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [`ioc-edge config ${what}`, gateway]);
}

/** Configuration versions, reports and events in PostgreSQL. */
export class PgConfigStore implements ConfigPort {
  private readonly keepEvents: number;

  constructor(private readonly deps: PgConfigDeps) {
    this.keepEvents = checkKeep(deps.eventsPerGateway ?? DEFAULT_CONFIG_EVENTS_PER_GATEWAY);
  }

  private get db(): PgPool {
    return this.deps.db;
  }

  /** Nothing to open: the pool's owner migrated the schema. */
  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  async addVersion(gateway: string, build: (latest: ConfigVersionInfo | null) => ConfigDesired | Promise<ConfigDesired>): Promise<ConfigDesired> {
    return this.db.transaction(async (c) => {
      await lockGateway(c, 'push', gateway);
      const row = (await c.query<Raw>(`SELECT ${INFO} FROM config_versions WHERE gateway = $1 ORDER BY version DESC LIMIT 1`, [gateway])).rows[0];
      const doc = await build(row ? info(row) : null);
      await c.query('INSERT INTO config_versions(gateway, version, hash, doc, pushed_at, pushed_by, note) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        gateway, doc.version, doc.hash, JSON.stringify(doc), doc.pushedAt, doc.pushedBy, doc.note ?? null,
      ]);
      return doc;
    });
  }

  async versions(gateway: string, limit = 100): Promise<ConfigVersionInfo[]> {
    const r = await this.db.query<Raw>(`SELECT ${INFO} FROM config_versions WHERE gateway = $1 ORDER BY version DESC LIMIT $2`, [gateway, limit]);
    return r.rows.map(info);
  }

  async document(gateway: string, version?: number): Promise<ConfigDesired | null> {
    const r = version === undefined
      ? await this.db.query<Raw>('SELECT doc FROM config_versions WHERE gateway = $1 ORDER BY version DESC LIMIT 1', [gateway])
      : await this.db.query<Raw>('SELECT doc FROM config_versions WHERE gateway = $1 AND version = $2', [gateway, version]);
    return r.rows[0] ? docOf(r.rows[0]) : null;
  }

  async hashOf(gateway: string, version: number): Promise<string | null> {
    const r = await this.db.query<Raw>('SELECT hash FROM config_versions WHERE gateway = $1 AND version = $2', [gateway, version]);
    return r.rows[0] ? String(r.rows[0].hash) : null;
  }

  async documentsContaining(text: string): Promise<ConfigDesired[]> {
    const r = await this.db.query<Raw>('SELECT doc FROM config_versions WHERE strpos(doc, $1) > 0 ORDER BY gateway, version', [text]);
    return r.rows.map(docOf);
  }

  async replaceDocument(doc: ConfigDesired): Promise<void> {
    await this.db.query('UPDATE config_versions SET doc = $1, hash = $2 WHERE gateway = $3 AND version = $4', [JSON.stringify(doc), doc.hash, doc.gateway, doc.version]);
  }

  /**
   * Rewrites the versions table (VACUUM FULL) so replaced rows leave no copy
   * in its pages. Copies in the write-ahead log and its archive age out as
   * the server recycles them; that is the operator's retention, not ours.
   */
  async scrub(): Promise<void> {
    await this.db.query('VACUUM FULL config_versions');
  }

  async latestDocuments(): Promise<ConfigDesired[]> {
    const r = await this.db.query<Raw>('SELECT DISTINCT ON (gateway) doc FROM config_versions ORDER BY gateway, version DESC');
    return r.rows.map(docOf);
  }

  async saveReport(gateway: string, report: ConfigReported, receivedAt: number): Promise<void> {
    await this.db.transaction(async (c) => {
      await lockGateway(c, 'report', gateway);
      const prev = (await c.query<Raw>('SELECT doc FROM config_reported WHERE gateway = $1', [gateway])).rows[0];
      const old = prev ? (JSON.parse(String(prev.doc)) as ConfigReported) : null;
      await c.query('INSERT INTO config_reported(gateway, doc, received_at) VALUES ($1, $2, $3) ON CONFLICT (gateway) DO UPDATE SET doc = excluded.doc, received_at = excluded.received_at', [gateway, JSON.stringify(report), receivedAt]);
      const e = eventOf(old, report);
      if (!e) return;
      await c.query('INSERT INTO config_events(gateway, ts, version, status, running, code, message) VALUES ($1, $2, $3, $4, $5, $6, $7)', [gateway, e.ts, e.version, e.status, e.running, e.code, e.message]);
      // Bounded history (issue 13): the newest N of this gateway stay.
      await c.query('DELETE FROM config_events WHERE gateway = $1 AND n <= (SELECT n FROM config_events WHERE gateway = $1 ORDER BY n DESC OFFSET $2 LIMIT 1)', [gateway, this.keepEvents]);
    });
  }

  async reports(gateway?: string): Promise<StoredReport[]> {
    const r = gateway === undefined
      ? await this.db.query<Raw>('SELECT gateway, doc, received_at FROM config_reported ORDER BY gateway')
      : await this.db.query<Raw>('SELECT gateway, doc, received_at FROM config_reported WHERE gateway = $1', [gateway]);
    return r.rows.map((x) => ({ gateway: String(x.gateway), report: JSON.parse(String(x.doc)) as ConfigReported, receivedAt: Number(x.received_at) }));
  }

  async events(gateway: string, limit = 100): Promise<ConfigEvent[]> {
    const r = await this.db.query<Raw>('SELECT n, gateway, ts, version, status, running, code, message FROM config_events WHERE gateway = $1 ORDER BY n DESC LIMIT $2', [gateway, limit]);
    return r.rows.map((x) => ({
      n: Number(x.n), gateway: String(x.gateway), ts: Number(x.ts), version: Number(x.version), status: String(x.status), running: Number(x.running),
      code: x.code === null ? null : String(x.code), message: x.message === null ? null : String(x.message),
    }));
  }

  async gateways(): Promise<string[]> {
    const r = await this.db.query<Raw>('SELECT DISTINCT gateway FROM config_versions ORDER BY gateway');
    return r.rows.map((x) => String(x.gateway));
  }
}
