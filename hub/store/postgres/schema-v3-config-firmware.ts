/**
 * Schema version 3 of the PostgreSQL store (migrations.ts): remote
 * configuration and firmware — the tables the SQLite backend keeps in
 * `registry.sqlite` (hub/store/sqlite/config-store.ts) and `firmware.sqlite`
 * (hub/store/sqlite/firmware-db.ts), same columns, so export/import is a copy;
 * plus the image bytes, which beside SQLite are files (firmware-bridge
 * ImageStore) and here are rows, so that every hub node serves every image.
 * Text keys `COLLATE "C"` as versions 1 and 2; times in ms as `bigint`;
 * JSON documents as text (both backends map rows with one function).
 *
 * Cluster-safety (pg-config.ts, pg-firmware.ts):
 * - `config_versions (gateway, version)` is the primary key and pushes of one
 *   gateway take a transaction-level advisory lock, so two nodes pushing at
 *   once store consecutive versions, never one version twice;
 * - job reports are one conditional UPDATE (seq only goes up);
 * - an image is stored under its hash in one transaction: the row in
 *   `fw_image_data` marks it whole, its `fw_image_chunks` commit with it.
 */
export const SCHEMA_V3_CONFIG_FIRMWARE = `
CREATE TABLE config_versions (
  gateway text COLLATE "C" NOT NULL, version integer NOT NULL, hash text NOT NULL, doc text NOT NULL,
  pushed_at bigint NOT NULL, pushed_by text NOT NULL, note text,
  PRIMARY KEY (gateway, version));
CREATE TABLE config_reported (
  gateway text COLLATE "C" PRIMARY KEY, doc text NOT NULL, received_at bigint NOT NULL);
CREATE TABLE config_events (
  n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, gateway text COLLATE "C" NOT NULL, ts bigint NOT NULL, version integer NOT NULL,
  status text NOT NULL, running integer NOT NULL, code text, message text);
CREATE INDEX config_events_gw ON config_events (gateway, n);
CREATE TABLE fw_images (
  sha256 text COLLATE "C" PRIMARY KEY, size bigint NOT NULL, uploaded_at bigint NOT NULL, uploaded_by text NOT NULL);
CREATE TABLE fw_image_data (
  sha256 text COLLATE "C" PRIMARY KEY, size bigint NOT NULL, piece_bytes integer NOT NULL, pieces integer NOT NULL, stored_at bigint NOT NULL);
CREATE TABLE fw_image_chunks (
  sha256 text COLLATE "C" NOT NULL REFERENCES fw_image_data (sha256) ON DELETE CASCADE, n integer NOT NULL, data bytea NOT NULL,
  PRIMARY KEY (sha256, n));
ALTER TABLE fw_image_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE fw_manifests (
  id text COLLATE "C" PRIMARY KEY, sha256 text COLLATE "C" NOT NULL, model text NOT NULL, version text NOT NULL, size bigint NOT NULL, key_id text,
  signed text NOT NULL, created_at bigint NOT NULL, created_by text NOT NULL);
CREATE TABLE fw_rollouts (
  id text COLLATE "C" PRIMARY KEY, manifest_id text COLLATE "C" NOT NULL, state text NOT NULL, target text NOT NULL, canary integer NOT NULL,
  wave_size integer NOT NULL, max_failure_percent double precision NOT NULL, stage integer NOT NULL, stages integer NOT NULL, reason text,
  ack_failures integer NOT NULL DEFAULT 0, seed text, canary_devices text, created_at bigint NOT NULL, created_by text NOT NULL, updated_at bigint NOT NULL);
CREATE INDEX fw_rollouts_state ON fw_rollouts (state);
CREATE TABLE fw_jobs (
  id text COLLATE "C" PRIMARY KEY, rollout text COLLATE "C" NOT NULL, gateway text COLLATE "C" NOT NULL, device text COLLATE "C" NOT NULL,
  stage integer NOT NULL, status text NOT NULL, state text, result integer NOT NULL DEFAULT 0, seq bigint NOT NULL DEFAULT 0,
  bytes bigint, total bigint, version text, error text, offers integer NOT NULL DEFAULT 0, offered_at bigint, updated_at bigint NOT NULL);
CREATE INDEX fw_jobs_rollout ON fw_jobs (rollout, stage);
CREATE INDEX fw_jobs_gateway ON fw_jobs (gateway, status);
CREATE INDEX fw_jobs_status ON fw_jobs (status);
`;
