/**
 * `ioc-edge hub export --store URL --out FILE`: writes a hub's whole durable
 * state — registry, identities (hashes only), tokens, configuration,
 * firmware with image bytes, rollouts, the audit chain, readings, latest
 * values, events, alarms, quarantine and the batch dedupe record — into a
 * portable archive (hub/store/archive.ts) that `hub import` reads into
 * either backend: the way a deployment moves between SQLite and
 * PostgreSQL (issue 15 item 5). Stop the hub first for an exact copy (a
 * PostgreSQL export reads one snapshot, so a running hub there is safe but
 * what it commits afterwards is not in the archive).
 */
import { rename, rm } from 'node:fs/promises';
import { isIocError } from '../../contract/index.js';
import { createLogger, type Logger } from '../../lib/index.js';
import { ArchiveWriter, ARCHIVE_FORMAT, ARCHIVE_VERSION, TABLES, type ArchiveHeader, type ArchiveSource, type ArchiveTarget } from '../store/archive.js';
import { openPgSource, openPgTarget } from '../store/postgres/pg-export.js';
import { parseStoreUrl, redact } from '../store/postgres/pg-pool.js';
import { openSqliteSource, openSqliteTarget } from '../store/sqlite/export.js';
import type { Command, CommandIo } from './command.js';
import { isTty } from './fw-progress.js';
import { storeOption } from './hub-run.js';
import { parse } from './parse.js';

const HELP = `Usage: ioc-edge hub export [--store URL] [--data-dir DIR] --out FILE

Writes the hub's whole state (registry, identities as hashes, tokens, configuration,
firmware and images, rollouts, audit chain, readings, events, alarms, dedupe records)
to FILE, a versioned gzip'd archive that 'ioc-edge hub import' reads into SQLite or
PostgreSQL. Stop the hub first for an exact copy.

  --store URL     postgres://user@host:5432/db?schema=name, sqlite:DIR, or absent for SQLite in
                  --data-dir (also IOC_EDGE_STORE / IOC_EDGE_HUB_STORE)
  --data-dir DIR  the SQLite hub's data directory (registry.sqlite, firmware.sqlite, firmware/)
  --out FILE      the archive to write (written to FILE.partial, renamed when complete)
  --quiet         no progress on stderr`;

/** Where a store is, as the export and import commands are told. */
export interface StoreChoice {
  store?: string | undefined;
  dataDir?: string | undefined;
  logger: Logger;
}

/** Opens the chosen store for reading. */
export function openSource(c: StoreChoice): Promise<ArchiveSource> {
  const where = parseStoreUrl(c.store);
  if (where.kind === 'postgres') return openPgSource({ url: c.store!, logger: c.logger });
  const dataDir = c.dataDir ?? where.dir;
  if (!dataDir) throw new Error('a SQLite store needs --data-dir (or --store sqlite:DIR)');
  return openSqliteSource({ dataDir, storeDir: where.dir, logger: c.logger });
}

/** Opens (creating) the chosen store for writing. */
export function openTarget(c: StoreChoice): Promise<ArchiveTarget> {
  const where = parseStoreUrl(c.store);
  if (where.kind === 'postgres') return openPgTarget({ url: c.store!, logger: c.logger });
  const dataDir = c.dataDir ?? where.dir;
  if (!dataDir) throw new Error('a SQLite store needs --data-dir (or --store sqlite:DIR)');
  return openSqliteTarget({ dataDir, storeDir: where.dir, logger: c.logger });
}

/**
 * Progress on stderr: on a terminal a bar redrawn in place with rows/s and
 * the time left; otherwise one plain line every `everyMs` (logs, pipes).
 */
export class RowProgress {
  private done = 0;
  private readonly started = Date.now();
  private lastLine = 0;
  private readonly tty: boolean;

  constructor(private readonly out: NodeJS.WritableStream, private readonly verb: string, private total: number, private readonly everyMs = 3000, quiet = false) {
    this.tty = !quiet && isTty(out);
    this.quiet = quiet;
  }
  private readonly quiet: boolean;

  /** Rows per second so far. */
  rate(): number {
    const s = (Date.now() - this.started) / 1000;
    return s > 0 ? this.done / s : 0;
  }

  get rows(): number {
    return this.done;
  }

  add(rows: number, table: string): void {
    this.done += rows;
    if (this.done > this.total) this.total = this.done;
    if (this.quiet) return;
    const now = Date.now();
    if (now - this.lastLine < (this.tty ? 200 : this.everyMs)) return;
    this.lastLine = now;
    const rate = this.rate();
    const eta = rate > 0 ? Math.round((this.total - this.done) / rate) : 0;
    const ratio = this.total > 0 ? this.done / this.total : 1;
    const text = `${this.verb} ${table}: ${this.done.toLocaleString('en')} of ${this.total.toLocaleString('en')} rows, ${Math.round(rate).toLocaleString('en')} rows/s, ${rate > 0 ? `${eta} s left` : 'time left unknown'}`;
    if (this.tty) {
      const full = Math.round(Math.min(1, ratio) * 30);
      this.out.write(`\r\x1b[2K[${'#'.repeat(full)}${'-'.repeat(30 - full)}] ${String(Math.floor(ratio * 100)).padStart(3)}% ${text}`);
    } else this.out.write(`${text}\n`);
  }

  /** Ends the bar's line on a terminal. */
  end(): void {
    if (this.tty) this.out.write('\n');
  }
}

/** What {@link exportStore} wrote. */
export interface ExportResult {
  counts: Record<string, number>;
  rows: number;
  bytes: number;
  seconds: number;
}

/** Writes every table of `source` into an archive at `file` (via FILE.partial, renamed when whole). */
export async function exportStore(source: ArchiveSource, file: string, progress?: (rows: number, table: string) => void): Promise<ExportResult> {
  const started = Date.now();
  const tables: ArchiveHeader['tables'] = {};
  for (const s of TABLES) tables[s.name] = { columns: [...s.columns], count: await source.count(s.name) };
  const partial = `${file}.partial`;
  const w = new ArchiveWriter(partial);
  try {
    await w.header({ format: ARCHIVE_FORMAT, version: ARCHIVE_VERSION, source: { kind: source.kind, schema: await source.schema() }, createdAt: Date.now(), tables });
    for (const s of TABLES) {
      for await (const rows of source.read(s.name)) {
        await w.rows(s.name, rows);
        progress?.(rows.length, s.name);
      }
    }
    const counts = await w.close();
    await rename(partial, file);
    return { counts, rows: Object.values(counts).reduce((a, b) => a + b, 0), bytes: w.bytes, seconds: (Date.now() - started) / 1000 };
  } catch (err) {
    await w.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw err;
  }
}

/** Total rows of the archive's header (the progress bar's 100 %). */
export const totalOf = (tables: ArchiveHeader['tables'] | Record<string, number>): number =>
  Object.values(tables).reduce<number>((a, t) => a + (typeof t === 'number' ? t : t.count), 0);

/** `--store`, else IOC_EDGE_STORE / IOC_EDGE_HUB_STORE (as `hub run`). */
const storeOf = (flag: string | undefined): string | undefined => storeOption(flag);

export const hubExport: Command = {
  name: 'hub export',
  summary: "write the hub's whole state to a portable archive (to move between SQLite and PostgreSQL)",
  async run(args, io) {
    const p = parse(args, { store: { type: 'string' }, 'data-dir': { type: 'string' }, out: { type: 'string' }, quiet: { type: 'boolean' } }, HELP, io);
    if ('exit' in p) return p.exit;
    const v = p.values;
    if (!v.out) {
      io.err.write(`missing --out\n${HELP}\n`);
      return 2;
    }
    return runMove(io, 'export', async (logger) => {
      const store = storeOf(v.store);
      const source = await openSource({ store, dataDir: v['data-dir'], logger });
      try {
        let total = 0;
        for (const s of TABLES) total += await source.count(s.name);
        const bar = new RowProgress(io.err, 'export', total, 3000, v.quiet ?? false);
        const r = await exportStore(source, v.out!, (n, t) => bar.add(n, t));
        bar.end();
        io.out.write(`exported ${r.rows.toLocaleString('en')} rows from ${source.kind} ${redact(store ?? v['data-dir'] ?? '')} to ${v.out} in ${r.seconds.toFixed(1)} s (${Math.round(r.rows / Math.max(r.seconds, 0.001)).toLocaleString('en')} rows/s; readings ${(r.counts.readings ?? 0).toLocaleString('en')}, audit entries ${(r.counts.audit ?? 0).toLocaleString('en')})\n`);
      } finally {
        await source.close();
      }
    });
  },
};

/** Runs an export or import with a logger on stderr; a failure is one line and exit 1. */
export async function runMove(io: CommandIo, what: string, fn: (logger: Logger) => Promise<void>): Promise<number> {
  const logger = createLogger({ level: process.env.IOC_EDGE_LOG_LEVEL ?? 'warn', pretty: false, destination: io.err });
  try {
    await fn(logger);
    return 0;
  } catch (e) {
    io.err.write(`\nioc-edge: hub ${what} failed: ${redact(isIocError(e) ? e.message : (e as Error).message)}\n`);
    return 1;
  }
}
