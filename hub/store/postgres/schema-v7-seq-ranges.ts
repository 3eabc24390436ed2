/**
 * Schema version 7 of the PostgreSQL store: the dedupe record as seq ranges
 * per gateway epoch, as the SQLite store keeps it (hub/seq-ranges.ts),
 * instead of one `batches` row per batch. Entry in migrations.ts.
 *
 * - `batch_seqs(gateway, epoch, seqs, added, updated_at)`: the committed
 *   batch seqs of one gateway epoch as an `int8multirange` (almost always one
 *   range: a gateway numbers its batches 1, 2, 3 …). A group commit upserts
 *   one row per gateway epoch of the group (pg-commit.ts): INSERT … ON
 *   CONFLICT DO UPDATE locks the row and sees its newest committed version,
 *   so of two hubs committing the same batch at the same moment the second
 *   waits for the first and finds the seq there. `added` is what the last
 *   upsert added (its seqs minus those already there): RETURNING tells the
 *   commit which batches are new. `updated_at` is the last commit's time
 *   (retention and the epochs-per-gateway bound).
 * - Why: one row per batch cost a heap tuple and two index entries per
 *   message (about 4.4 of 19.6 µs of PostgreSQL CPU per message at the
 *   default load of bench:hub, measured with this change), and retention
 *   had to DELETE them row by row.
 * - A commit that leaves a record with more than `maxSeqRanges` ranges (a
 *   gateway skipping seqs) closes its lowest gaps (pg-commit.ts), as the
 *   SQLite store does. `seqs` is stored EXTERNAL: such a record is rewritten
 *   at every commit, and compressing it each time would cost more than the
 *   bytes it saves.
 * - The existing `batches` rows are folded into ranges, then dropped.
 */
export const SCHEMA_V7_SEQ_RANGES = `
CREATE TABLE batch_seqs (
  gateway text COLLATE "C" NOT NULL, epoch text COLLATE "C" NOT NULL,
  seqs int8multirange NOT NULL, added int8multirange NOT NULL, updated_at bigint NOT NULL,
  PRIMARY KEY (gateway, epoch));
ALTER TABLE batch_seqs ALTER COLUMN seqs SET STORAGE EXTERNAL;
CREATE INDEX batch_seqs_updated_at ON batch_seqs (updated_at);
INSERT INTO batch_seqs (gateway, epoch, seqs, added, updated_at)
  SELECT gateway, epoch, range_agg(int8range(seq, seq, '[]')), '{}', max(committed_at) FROM batches GROUP BY gateway, epoch;
DROP TABLE batches;
`;
