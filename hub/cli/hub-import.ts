/**
 * `ioc-edge hub import --store URL --in FILE`: reads an archive written by
 * `hub export` into an empty store of either backend (issue 15 item 5).
 *
 * Order of work, so that nothing is ever half-imported:
 * 1. the whole archive is read once and checked (gzip, every line, counts,
 *    SHA-256 in the trailer, format version) before anything is written;
 * 2. the target must be empty (`--force` empties it first);
 * 3. rows are written up to 10,000 per transaction; if anything fails the
 *    target is emptied again, so a second run starts from clean (the
 *    import is idempotent rather than resumable);
 * 4. the imported audit chain is verified end to end and its head must
 *    equal the source's newest entry.
 */
import { IocError } from '../../contract/index.js';
import { readArchive, verifyArchive, type ArchiveTarget, type Row } from '../store/archive.js';
import { openStateStores } from '../store/state.js';
import { parseStoreUrl, redact } from '../store/postgres/pg-pool.js';
import type { Command } from './command.js';
import { openTarget, RowProgress, runMove, totalOf, type StoreChoice } from './hub-export.js';
import { storeOption } from './hub-run.js';
import { parse } from './parse.js';

const HELP = `Usage: ioc-edge hub import [--store URL] [--data-dir DIR] --in FILE [--force]

Reads an archive written by 'ioc-edge hub export' into an empty store (SQLite or
PostgreSQL). The archive is checked whole (SHA-256, counts, format version) before
anything is written; a failed import leaves the store empty. The imported audit
chain is verified and must end at the exported head. Start the hub afterwards.

  --store URL     postgres://user@host:5432/db?schema=name, sqlite:DIR, or absent for SQLite in
                  --data-dir (also IOC_EDGE_STORE / IOC_EDGE_HUB_STORE)
  --data-dir DIR  the SQLite hub's data directory
  --in FILE       the archive
  --force         empty a store that already holds data first (everything in it is lost)
  --quiet         no progress on stderr`;

/** Rows written per transaction (several archive lines of one table). */
const WRITE_ROWS = 10_000;

/** What {@link importArchive} did. */
export interface ImportResult {
  counts: Record<string, number>;
  rows: number;
  seconds: number;
  audit: { entries: number; head: { n: number; hash: string } | null };
}

/** Options of {@link importArchive}. */
export interface ImportOptions {
  force?: boolean;
  /** The caller checked the archive already ({@link verifyArchive}): skip the first pass. */
  verified?: { trailer: { counts: Record<string, number> } };
  /** Called per chunk checked (`verify`) and written (`import`). */
  progress?: (phase: 'verify' | 'import', rows: number, table: string) => void;
}

/**
 * Imports `file` into `target` (see the file comment for the order of work);
 * `store` names the same store for the audit verification afterwards.
 */
export async function importArchive(file: string, target: ArchiveTarget, store: StoreChoice, opts: ImportOptions = {}): Promise<ImportResult> {
  const started = Date.now();
  const { trailer } = opts.verified ?? (await verifyArchive(file, (n) => opts.progress?.('verify', n, 'archive')));
  const filled = await target.nonEmpty();
  if (filled !== null) {
    if (!opts.force) throw new IocError('HUB_ERR_IMPORT_TARGET', `the target ${target.kind} store already holds data (table '${filled}'): import into an empty store, or pass --force to empty it first`);
    await target.clear();
  }
  let head: { n: number; hash: string } | null = null;
  try {
    // Lines of one table are gathered up to WRITE_ROWS rows: one transaction each (fewer round trips and commits).
    let table = '';
    let pending: Row[] = [];
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const rows = pending;
      pending = [];
      await target.write(table, rows);
      opts.progress?.('import', rows.length, table);
    };
    for await (const item of readArchive(file)) {
      if (item.kind !== 'rows') continue;
      if (item.table !== table || item.table === 'image_bytes') await flush();
      table = item.table;
      if (item.table === 'audit') {
        for (const r of item.rows) if (!head || (r[0] as number) > head.n) head = { n: r[0] as number, hash: r[8] as string };
      }
      for (const r of item.rows) pending.push(r);
      if (pending.length >= WRITE_ROWS) await flush();
    }
    await flush();
    await target.finish();
    const audit = await verifyAudit(store, head);
    const rows = totalOf(trailer.counts);
    return { counts: trailer.counts, rows, seconds: (Date.now() - started) / 1000, audit };
  } catch (err) {
    // Nothing half-imported: the store was empty before, so it is emptied again.
    await target.clear().catch(() => undefined);
    throw err;
  }
}

/** The imported chain verified end to end through the hub's own audit port; its head must be the exported one. */
async function verifyAudit(store: StoreChoice, head: { n: number; hash: string } | null): Promise<ImportResult['audit']> {
  const where = parseStoreUrl(store.store);
  const state = openStateStores({ store: where, dataDir: store.dataDir ?? (where.kind === 'sqlite' ? where.dir : null) ?? '', logger: store.logger });
  await state.start();
  try {
    const v = await state.audit.verify(head ?? undefined);
    if (!v.ok) throw new IocError('HUB_ERR_ARCHIVE', `the imported audit chain does not verify${v.firstBad ? ` at entry ${v.firstBad.n}: ${v.firstBad.reason}` : ''}; the store was emptied again`);
    if ((v.head?.hash ?? null) !== (head?.hash ?? null)) throw new IocError('HUB_ERR_ARCHIVE', `the imported audit chain ends at ${v.head?.hash ?? 'nothing'}, the archive's at ${head?.hash ?? 'nothing'}; the store was emptied again`);
    return { entries: v.entries, head: v.head };
  } finally {
    await state.stop();
  }
}

export const hubImport: Command = {
  name: 'hub import',
  summary: 'read an archive from hub export into an empty store (SQLite or PostgreSQL)',
  async run(args, io) {
    const p = parse(args, { store: { type: 'string' }, 'data-dir': { type: 'string' }, in: { type: 'string' }, force: { type: 'boolean' }, quiet: { type: 'boolean' } }, HELP, io);
    if ('exit' in p) return p.exit;
    const v = p.values;
    if (!v.in) {
      io.err.write(`missing --in\n${HELP}\n`);
      return 2;
    }
    return runMove(io, 'import', async (logger) => {
      const store = storeOption(v.store);
      const choice: StoreChoice = { store, dataDir: v['data-dir'] ?? undefined, logger };
      // The archive is checked whole before the target is even opened (a bad file creates nothing).
      const check = new RowProgress(io.err, 'verify', 0, 3000, v.quiet ?? false);
      const verified = await verifyArchive(v.in!, (n) => check.add(n, 'archive'));
      check.end();
      const target = await openTarget(choice);
      try {
        const bar = new RowProgress(io.err, 'import', totalOf(verified.trailer.counts), 3000, v.quiet ?? false);
        const r = await importArchive(v.in!, target, choice, { force: v.force ?? false, verified, progress: (_phase, n, table) => bar.add(n, table) });
        bar.end();
        io.out.write(`imported ${r.rows.toLocaleString('en')} rows into ${target.kind} ${redact(store ?? v['data-dir'] ?? '')} in ${r.seconds.toFixed(1)} s (${Math.round(r.rows / Math.max(r.seconds, 0.001)).toLocaleString('en')} rows/s); audit chain verified: ${r.audit.entries} entries, head ${r.audit.head?.hash ?? 'none'}\n`);
      } finally {
        await target.close();
      }
    });
  },
};
