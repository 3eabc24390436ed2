/**
 * Schema version 6 of the PostgreSQL store: rollups of expired raw readings
 * (issue 13 item 4, as the SQLite store keeps them; rules in
 * hub/store/model/rollups.ts). Before a day partition is dropped its good
 * numeric readings are added to every rollup level still keeping their
 * bucket, in the same transaction as the DROP, so a reading is either raw or
 * rolled up, never both. Entry in migrations.ts.
 *
 * - `rollups(series, bucket_ms, ts, count, min, max, sum)`: one row per
 *   point, level width and bucket start; `ts` is the bucket start (ms);
 *   `(bucket_ms, ts)` indexed for the deletion of a level's old buckets.
 */
export const SCHEMA_V6_ROLLUPS = `
CREATE TABLE IF NOT EXISTS rollups (
  series integer NOT NULL, bucket_ms bigint NOT NULL, ts bigint NOT NULL,
  count bigint NOT NULL, min double precision NOT NULL, max double precision NOT NULL, sum double precision NOT NULL,
  PRIMARY KEY (series, bucket_ms, ts));
CREATE INDEX IF NOT EXISTS rollups_level_ts ON rollups (bucket_ms, ts);
`;
