/**
 * Schema version 2 of the PostgreSQL store (migrations.ts): the hub's
 * registry, identities and audit chain — the tables the SQLite backend keeps
 * in `registry.sqlite` (hub/store/sqlite/registry-db.ts), with the same columns,
 * so export/import is a copy. Text keys `COLLATE "C"` (byte order, as SQLite
 * and as version 1); times in ms as `bigint`.
 *
 * Cluster-safety lives in the layout:
 * - `claims.id` is the row every redemption locks (`SELECT … FOR UPDATE`),
 *   so two hubs redeeming one claim at once serialise and the second sees it
 *   used (pg-identity.ts).
 * - `audit_chain` is one row that every append locks before it reads the
 *   newest entry, so appends from several processes take turns and the hash
 *   chain never forks (pg-audit.ts); `audit.n` is the primary key, so a fork
 *   that slipped past would fail on a duplicate key rather than be stored.
 */
export const SCHEMA_V2_STATE = `
CREATE TABLE principals (
  username text COLLATE "C" PRIMARY KEY, kind text NOT NULL, secret_hash text NOT NULL,
  created_at bigint NOT NULL, created_by text NOT NULL, revoked_at bigint, revoked_by text, rules text);
CREATE TABLE claims (
  id text COLLATE "C" PRIMARY KEY, secret_hash text NOT NULL, site text NOT NULL, gateway_id text COLLATE "C", note text,
  created_at bigint NOT NULL, created_by text NOT NULL, expires_at bigint NOT NULL,
  used_at bigint, used_by text COLLATE "C", revoked_at bigint, revoked_by text, used_transaction text);
CREATE INDEX claims_created_at ON claims (created_at);
CREATE TABLE api_tokens (
  id text COLLATE "C" PRIMARY KEY, name text NOT NULL, role text NOT NULL, secret_hash text NOT NULL,
  created_at bigint NOT NULL, created_by text NOT NULL, revoked_at bigint, revoked_by text);
CREATE TABLE audit (
  n bigint PRIMARY KEY, ts bigint NOT NULL, actor text COLLATE "C" NOT NULL, action text COLLATE "C" NOT NULL,
  target text, outcome text NOT NULL, source text, detail text, hash text NOT NULL);
CREATE INDEX audit_ts ON audit (ts);
CREATE TABLE audit_chain (id smallint PRIMARY KEY CHECK (id = 1));
INSERT INTO audit_chain(id) VALUES (1);
CREATE TABLE registry_gateways (
  id text COLLATE "C" PRIMARY KEY, site text, location text, version text, firmware text, hostname text,
  registered_at bigint NOT NULL, registered_by text NOT NULL, updated_at bigint NOT NULL);
CREATE TABLE registry_devices (
  gateway text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL, profile text NOT NULL, bus text NOT NULL, bus_type text, address text,
  unit_id integer, enabled boolean NOT NULL DEFAULT true, first_seen bigint NOT NULL, last_seen bigint NOT NULL, removed_at bigint,
  PRIMARY KEY (gateway, id));
`;
