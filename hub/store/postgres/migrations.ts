/**
 * Schema versions of the PostgreSQL store. Each migration runs once, in its
 * own transaction, recorded in `schema_migrations`; `migrate()` is idempotent
 * and is run by `ioc-edge hub migrate --store postgres://…` and at every hub
 * start. Two hubs starting at once serialise on a transaction-level advisory
 * lock, so a migration never runs twice. A database whose schema is newer
 * than this code knows is refused (an older hub must not write into a layout
 * it does not understand).
 *
 * Layout (version 1), all text keys `COLLATE "C"` (byte order, as SQLite):
 * - `readings(series, ts, value, svalue, flags)` partitioned by RANGE on `ts`
 *   (ms), one partition per UTC day (`readings_dYYYYMMDD`, created ahead by
 *   the hub, see partitions.ts) plus `readings_default` for readings far
 *   outside the partitioned window. Numbers and booleans (0/1) in `value`
 *   (float8), strings in `svalue`; `flags` = vtype | quality << 2 |
 *   historical << 4 as in the SQLite store (store-schema.ts).
 * - `batches(gateway, epoch, seq)` primary key: the dedupe record. A commit
 *   inserts its batches with ON CONFLICT DO NOTHING in the same statement as
 *   their readings, so the unique index decides which of two concurrent
 *   commits of one batch stores it (the other waits for it, then skips).
 *   Replaced in version 7 by seq ranges per gateway epoch
 *   (schema-v7-seq-ranges.ts), with the same guarantee.
 * - `series`, `latest`, `gateways`, `events`, `alarms`, `quarantine` as in
 *   the SQLite store.
 */
import type pg from 'pg';
import { IocError } from '../../../contract/index.js';
import type { PgPool } from './pg-pool.js';
import { SCHEMA_V4_LEASES } from './schema-v4-leases.js';
import { SCHEMA_V2_STATE } from './schema-v2-state.js';
import { SCHEMA_V3_CONFIG_FIRMWARE } from './schema-v3-config-firmware.js';
import { SCHEMA_V5_GATEWAY_NODE } from './schema-v5-gateway-node.js';
import { SCHEMA_V6_ROLLUPS } from './schema-v6-rollups.js';
import { SCHEMA_V7_SEQ_RANGES } from './schema-v7-seq-ranges.js';
import { SCHEMA_V8_HOT_DEDUPE } from './schema-v8-hot-dedupe.js';

/** One schema change. */
interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'telemetry store: partitioned readings, batch dedupe, latest, gateways, events, alarms, quarantine',
    sql: `
CREATE TABLE gateways (
  id text COLLATE "C" PRIMARY KEY, online boolean NOT NULL DEFAULT false,
  first_seen bigint NOT NULL, last_seen bigint NOT NULL, status text);
CREATE TABLE batches (
  gateway text COLLATE "C" NOT NULL, epoch text COLLATE "C" NOT NULL, seq bigint NOT NULL, committed_at bigint NOT NULL,
  PRIMARY KEY (gateway, epoch, seq));
CREATE INDEX batches_committed_at ON batches (committed_at);
CREATE TABLE series (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  gateway text COLLATE "C" NOT NULL, device text COLLATE "C" NOT NULL, point text COLLATE "C" NOT NULL,
  UNIQUE (gateway, device, point));
CREATE TABLE readings (
  series integer NOT NULL, ts bigint NOT NULL, value double precision, svalue text, flags smallint NOT NULL)
  PARTITION BY RANGE (ts);
CREATE INDEX readings_series_ts ON readings (series, ts);
CREATE TABLE readings_default PARTITION OF readings DEFAULT;
CREATE TABLE latest (
  series integer PRIMARY KEY, ts bigint NOT NULL, value double precision, svalue text, flags smallint NOT NULL);
CREATE TABLE events (
  gateway text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL, ts bigint NOT NULL, received_at bigint NOT NULL,
  type text COLLATE "C" NOT NULL, severity text NOT NULL, device text COLLATE "C", point text COLLATE "C", code text, message text NOT NULL, data text,
  PRIMARY KEY (gateway, id));
CREATE INDEX events_ts ON events (ts);
CREATE TABLE alarms (
  n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  gateway text COLLATE "C" NOT NULL, device text COLLATE "C" NOT NULL, point text COLLATE "C" NOT NULL,
  severity text NOT NULL, alarm_limit text, threshold text, value text, message text NOT NULL,
  raised_at bigint NOT NULL, raised_event text NOT NULL, received_at bigint NOT NULL,
  cleared_at bigint, cleared_event text, clear_value text, clear_message text,
  acked_at bigint, acked_by text);
CREATE INDEX alarms_point ON alarms (gateway, device, point, raised_at);
CREATE INDEX alarms_active ON alarms (cleared_at) WHERE cleared_at IS NULL;
CREATE INDEX alarms_raised ON alarms (raised_at);
CREATE TABLE quarantine (
  n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, gateway text COLLATE "C", topic text NOT NULL, received_at bigint NOT NULL,
  code text NOT NULL, error text NOT NULL, payload bytea);
`,
  },
  { version: 2, name: 'hub state: registry, principals, claims, API tokens, audit chain', sql: SCHEMA_V2_STATE },
  { version: 3, name: 'configuration versions, reports, events; firmware images (bytes as rows), manifests, rollouts, jobs', sql: SCHEMA_V3_CONFIG_FIRMWARE },
  { version: 4, name: 'cluster: leases with fencing epochs, node heartbeats', sql: SCHEMA_V4_LEASES },
  { version: 5, name: 'cluster: the node holding each gateway connection (gateways.node)', sql: SCHEMA_V5_GATEWAY_NODE },
  { version: 6, name: 'rollups of expired raw readings', sql: SCHEMA_V6_ROLLUPS },
  { version: 7, name: 'the dedupe record as seq ranges per gateway epoch (batch_seqs), instead of a row per batch', sql: SCHEMA_V7_SEQ_RANGES },
  { version: 8, name: 'the dedupe record updated in place (HOT): no index on batch_seqs.updated_at', sql: SCHEMA_V8_HOT_DEDUPE },
];

/** The newest schema version this code writes. */
export const PG_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** What {@link migrate} found and did. */
export interface MigrateResult {
  /** Version before (0 for an empty schema). */
  from: number;
  /** Version after. */
  to: number;
  applied: Array<{ version: number; name: string }>;
}

type Query = (text: string) => Promise<{ rows: Array<Record<string, unknown>> }>;

async function currentVersion(q: Query): Promise<number> {
  const exists = await q("SELECT to_regclass('schema_migrations')::text AS t");
  if (!exists.rows[0]?.t) return 0;
  const r = await q('SELECT max(version) AS v FROM schema_migrations');
  return Number(r.rows[0]?.v ?? 0);
}
const onPool = (db: PgPool): Query => (text) => db.query(text);
const onClient = (c: pg.PoolClient): Query => (text) => c.query(text);

/**
 * Brings the store's schema to {@link PG_SCHEMA_VERSION}: creates the schema
 * if needed and applies the missing migrations, each in its own transaction.
 * Throws `HUB_ERR_STORE_SCHEMA` when the database is newer than this code.
 */
export async function migrate(db: PgPool): Promise<MigrateResult> {
  // The schema itself (search_path names it; CREATE SCHEMA is idempotent with IF NOT EXISTS).
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${db.schema}`).catch((err: { code?: string }) => {
    if (err.code !== '23505' && err.code !== '42P06') throw err; // created by another hub at the same moment
  });
  const from = await currentVersion(onPool(db));
  if (from > PG_SCHEMA_VERSION) throw newerSchema(db, from);
  const applied: MigrateResult['applied'] = [];
  for (const m of MIGRATIONS) {
    if (m.version <= from) continue;
    const done = await db.transaction(async (c) => {
      // Serialises concurrent migrators of this schema; released at COMMIT.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`ioc-edge migrate ${db.schema}`]);
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
      const v = await currentVersion(onClient(c));
      if (v > PG_SCHEMA_VERSION) throw newerSchema(db, v);
      if (v >= m.version) return false; // another hub applied it while we waited
      await c.query(m.sql);
      await c.query('INSERT INTO schema_migrations(version, name) VALUES ($1, $2)', [m.version, m.name]);
      return true;
    });
    if (done) applied.push({ version: m.version, name: m.name });
  }
  return { from, to: Math.max(from, PG_SCHEMA_VERSION), applied };
}

/** Refuses a schema newer than this code (read-only check, for start-up). */
export async function checkVersion(db: PgPool): Promise<number> {
  const v = await currentVersion(onPool(db));
  if (v > PG_SCHEMA_VERSION) throw newerSchema(db, v);
  return v;
}

function newerSchema(db: PgPool, v: number): IocError {
  return new IocError(
    'HUB_ERR_STORE_SCHEMA',
    `PostgreSQL schema '${db.schema}' at ${db.where} is at version ${v}, newer than this hub knows (${PG_SCHEMA_VERSION}): run a hub of the version that migrated it, or newer`,
  );
}
