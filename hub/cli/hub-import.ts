/**
 * `ioc-edge hub import --store URL --in FILE`: reads an archive written by
 * `hub export` into an empty store of either backend (issue 15 item 5).
 *
 * Order of work, so that nothing is ever half-imported:
 * 1. the whole archive is read once and checked (gzip, every line, counts,
 *    SHA-256 in the trailer, format version) before anything is written;
 * 2. the target must be empty (`--force` empties it first), or hold an
 *    import of this same archive that did not finish: then it resumes;
 * 3. rows are written up to 10,000 per transaction, each transaction also
 *    moving the checkpoint (archive.ts ImportCheckpoint) to the rows done.
 *    When the store goes away, the disk fills or the process is killed, what
 *    was written stays and the same command resumes after the last
 *    checkpoint; an archive at fault (an image whose bytes do not match its
 *    name) empties the target again;
 * 4. the imported audit chain is verified end to end and its head must
 *    equal the source's newest entry (if not, the target is emptied again);
 *    only then is the checkpoint dropped. Until then `hub run` refuses the
 *    store (hub/store/import-guard.ts).
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
anything is written. An import that stops part way (database gone, disk full,
killed) keeps what it wrote: run the same command again and it resumes where it
stopped. The imported audit chain is verified and must end at the exported head;
if not, the store is emptied again. Start the hub afterwards (it refuses a store
whose import did not finish).

  --store URL     postgres://user@host:5432/db?schema=name, sqlite:DIR, or absent for SQLite in
                  --data-dir (also IOC_EDGE_STORE / IOC_EDGE_HUB_STORE)
  --data-dir DIR  the SQLite hub's data directory
  --in FILE       the archive
  --force         empty a store that already holds data (or an unfinished import) first;
                  everything in it is lost
  --quiet         no progress on stderr`;

/** Rows written per transaction (several archive lines of one table). */
const WRITE_ROWS = 10_000;

/** What {@link importArchive} did. */
export interface ImportResult {
  counts: Record<string, number>;
  rows: number;
  seconds: number;
  audit: { entries: number; head: { n: number; hash: string } | null };
  /** Rows of the archive an earlier, interrupted run had written (0: not a resumed import). */
  resumedAt: number;
}

/** Options of {@link importArchive}. */
export interface ImportOptions {
  force?: boolean;
  /** The caller checked the archive already ({@link verifyArchive}): skip the first pass. */
  verified?: { trailer: { counts: Record<string, number>; sha256: string } };
  /** Called per chunk checked (`verify`), skipped because an earlier run wrote it (`resume`) and written (`import`). */
  progress?: (phase: 'verify' | 'resume' | 'import', rows: number, table: string) => void;
}

/**
 * Imports `file` into `target` (see the file comment for the order of work);
 * `store` names the same store for the audit verification afterwards.
 */
export async function importArchive(file: string, target: ArchiveTarget, store: StoreChoice, opts: ImportOptions = {}): Promise<ImportResult> {
  const started = Date.now();
  const { trailer } = opts.verified ?? (await verifyArchive(file, (n) => opts.progress?.('verify', n, 'archive')));
  const archive = trailer.sha256;
  const total = totalOf(trailer.counts);
  const under = await target.progress();
  let resumeAt = 0;
  if (under && !opts.force) {
    if (under.archive !== archive) {
      throw new IocError('HUB_ERR_IMPORT_TARGET', `an import of another archive (SHA-256 ${under.archive.slice(0, 16)}…) into this ${target.kind} store did not finish (${under.rows.toLocaleString('en')} rows written): import that archive again to finish it, or pass --force to empty the store and import this one`);
    }
    resumeAt = under.rows;
  } else {
    const filled = under ? 'import_progress' : await target.nonEmpty();
    if (filled !== null) {
      if (!opts.force) throw new IocError('HUB_ERR_IMPORT_TARGET', `the target ${target.kind} store already holds data (table '${filled}'): import into an empty store, or pass --force to empty it first`);
      await target.clear();
    }
    await target.begin(archive);
  }
  let head: { n: number; hash: string } | null = null;
  let written = resumeAt; // rows of the archive, in its order, in the store
  try {
    // Lines of one table are gathered up to WRITE_ROWS rows: one transaction each (fewer round trips and commits).
    let table = '';
    let pending: Row[] = [];
    let seen = 0; // rows of the archive passed so far
    let pendingEnd = 0; // the archive's rows done once `pending` is written
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const rows = pending;
      pending = [];
      await target.write(table, rows, { archive, rows: pendingEnd });
      written = pendingEnd;
      opts.progress?.('import', rows.length, table);
    };
    for await (const item of readArchive(file)) {
      if (item.kind !== 'rows') continue;
      if (item.table === 'audit') {
        for (const r of item.rows) if (!head || (r[0] as number) > head.n) head = { n: r[0] as number, hash: r[8] as string };
      }
      // Written by an earlier run (checkpoints fall on line boundaries; image pieces move none, so a
      // resumed run stores the images again from their first piece, which changes nothing).
      const skip = Math.min(item.rows.length, Math.max(0, resumeAt - seen));
      seen += item.rows.length;
      if (skip > 0) opts.progress?.('resume', skip, item.table);
      const rows = skip > 0 ? item.rows.slice(skip) : item.rows;
      if (rows.length === 0) continue;
      if (item.table !== table || item.table === 'image_bytes') await flush();
      table = item.table;
      for (const r of rows) pending.push(r);
      pendingEnd = seen;
      if (pending.length >= WRITE_ROWS) await flush();
    }
    await flush();
    await target.finish();
  } catch (err) {
    if ((err as IocError).code === 'HUB_ERR_ARCHIVE') {
      // The archive itself is at fault (an image whose bytes do not match its name): nothing of it stays.
      await target.clear().catch(() => undefined);
      throw err;
    }
    // The store went away, the disk filled, …: what is written stays, with its checkpoint.
    throw new IocError('HUB_ERR_IMPORT_INTERRUPTED', `the import stopped after ${written.toLocaleString('en')} of ${total.toLocaleString('en')} rows (${(err as Error).message}); what was written is kept: run the same command again to resume there, or pass --force to start over`, { cause: err });
  }
  try {
    const audit = await verifyAudit(store, head);
    await target.done();
    return { counts: trailer.counts, rows: total, seconds: (Date.now() - started) / 1000, audit, resumedAt: resumeAt };
  } catch (err) {
    if ((err as IocError).code === 'HUB_ERR_ARCHIVE') {
      // A chain that does not verify: nothing half-imported, the store is emptied again.
      await target.clear().catch(() => undefined);
      throw err;
    }
    throw new IocError('HUB_ERR_IMPORT_INTERRUPTED', `every row was written but the audit chain could not be checked (${(err as Error).message}): run the same command again to check it and finish`, { cause: err });
  }
}

/** The imported chain verified end to end through the hub's own audit port; its head must be the exported one. */
async function verifyAudit(store: StoreChoice, head: { n: number; hash: string } | null): Promise<ImportResult['audit']> {
  const where = parseStoreUrl(store.store);
  const state = openStateStores({ store: where, dataDir: store.dataDir ?? (where.kind === 'sqlite' ? where.dir : null) ?? '', logger: store.logger, importing: true });
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
  summary: 'read an archive from hub export into an empty store (SQLite or PostgreSQL); resumes if interrupted',
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
        const thisRun = r.rows - r.resumedAt;
        const resumed = r.resumedAt > 0 ? ` (resumed an interrupted import at row ${r.resumedAt.toLocaleString('en')}: ${thisRun.toLocaleString('en')} rows this run)` : '';
        io.out.write(`imported ${r.rows.toLocaleString('en')} rows into ${target.kind} ${redact(store ?? v['data-dir'] ?? '')}${resumed} in ${r.seconds.toFixed(1)} s (${Math.round(thisRun / Math.max(r.seconds, 0.001)).toLocaleString('en')} rows/s); audit chain verified: ${r.audit.entries} entries, head ${r.audit.head?.hash ?? 'none'}\n`);
      } finally {
        await target.close();
      }
    });
  },
};
