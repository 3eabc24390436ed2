/**
 * Schema version 8 of the PostgreSQL store: the dedupe record's updates are
 * HOT (heap-only tuples). Entry in migrations.ts.
 *
 * - Every group commit updates one `batch_seqs` row per gateway epoch in it
 *   (pg-commit.ts), and its `updated_at` with it. Version 7 indexed
 *   `updated_at` (for retention), so no update could be HOT. Each one wrote a
 *   new tuple, an entry in both indexes, and left a dead tuple for VACUUM.
 * - Measured (isolated group commits of 57 batches from 8 gateways, about
 *   3,100 commits): 8 live rows took 86 pages, with 24,544 dead tuples and a
 *   248 KiB `updated_at` index, since autovacuum had not come round.
 *   PostgreSQL's CPU per message was 23–25 µs against 19–22 µs without the
 *   index. Without it, every update is HOT, and pruning keeps the 8 rows on
 *   one page.
 * - The index served only retention's `DELETE … WHERE updated_at < $1` (once
 *   a minute) and the epochs-per-gateway bound, which reads every row anyway.
 *   The table holds one row per gateway epoch, bounded by
 *   `maxEpochsPerGateway`, so a sequential scan of it once a minute is cheap.
 */
export const SCHEMA_V8_HOT_DEDUPE = `
DROP INDEX IF EXISTS batch_seqs_updated_at;
`;
