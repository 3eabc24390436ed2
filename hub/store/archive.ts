/**
 * The portable hub archive (issue 15 item 5): what `ioc-edge hub export`
 * writes and `hub import` reads, the same whichever backend wrote it, so a
 * deployment moves SQLite → PostgreSQL and back.
 *
 * Format (version 2; version 1 lacked `rollups`): gzip'd NDJSON, one JSON value per line.
 * - line 1, the header: `{format, version, source: {kind, schema}, createdAt, tables: {name: {columns, count}}}`;
 * - then data lines `{t: table, r: [[…row…], …]}` (at most {@link CHUNK_ROWS} rows each), tables in {@link TABLES} order;
 * - last, the trailer `{end: true, counts: {table: rows}, sha256}` where
 *   sha256 is of every byte (uncompressed) before the trailer line.
 * Column values are JSON: numbers, strings, null, booleans for the
 * {@link TableSpec.bool} columns and base64 strings for the
 * {@link TableSpec.bytes} ones. Readings carry their value as number, string
 * or null (vtype in `flags`, as store-schema.ts packs it). Dedupe records are
 * seq ranges per gateway epoch (hub/seq-ranges.ts JSON), whatever the store
 * keeps. Image bytes are pieces of {@link IMAGE_PIECE} bytes.
 *
 * A reader checks everything before anything is written ({@link verifyArchive}):
 * gzip integrity, JSON of every line, known table and row width, the counts
 * and the hash in the trailer; a newer `version` is refused up front.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { createGunzip, createGzip, type Gzip } from 'node:zlib';
import { IocError } from '../../contract/index.js';

/** `format` of the header line. */
export const ARCHIVE_FORMAT = 'ioc-edge-hub-archive';
/**
 * The newest archive version this code reads and the one it writes.
 * 2 added the `rollups` table; a version 1 archive (no rollups) still imports.
 */
export const ARCHIVE_VERSION = 2;
/** Rows per data line. */
export const CHUNK_ROWS = 1000;
/** Bytes per image piece. */
export const IMAGE_PIECE = 256 * 1024;

/** One table of the archive: its columns, and which of them are booleans or bytes. */
export interface TableSpec {
  name: string;
  columns: readonly string[];
  bool?: readonly string[];
  bytes?: readonly string[];
}

const T = (name: string, cols: string, extra: Omit<TableSpec, 'name' | 'columns'> = {}): TableSpec => ({ name, columns: cols.split(',').map((c) => c.trim()), ...extra });

/** Every table, in the order they are written and imported (registry and identities first, readings late). */
export const TABLES: readonly TableSpec[] = [
  T('registry_gateways', 'id, site, location, version, firmware, hostname, registered_at, registered_by, updated_at'),
  T('registry_devices', 'gateway, id, profile, bus, bus_type, address, unit_id, enabled, first_seen, last_seen, removed_at', { bool: ['enabled'] }),
  T('principals', 'username, kind, secret_hash, created_at, created_by, revoked_at, revoked_by, rules'),
  T('claims', 'id, secret_hash, site, gateway_id, note, created_at, created_by, expires_at, used_at, used_by, revoked_at, revoked_by, used_transaction'),
  T('api_tokens', 'id, name, role, secret_hash, created_at, created_by, revoked_at, revoked_by'),
  T('audit', 'n, ts, actor, action, target, outcome, source, detail, hash'),
  T('config_versions', 'gateway, version, hash, doc, pushed_at, pushed_by, note'),
  T('config_reported', 'gateway, doc, received_at'),
  T('config_events', 'n, gateway, ts, version, status, running, code, message'),
  T('fw_images', 'sha256, size, uploaded_at, uploaded_by'),
  T('image_bytes', 'sha256, n, pieces, data', { bytes: ['data'] }),
  T('fw_manifests', 'id, sha256, model, version, size, key_id, signed, created_at, created_by'),
  T('fw_rollouts', 'id, manifest_id, state, target, canary, wave_size, max_failure_percent, stage, stages, reason, ack_failures, seed, canary_devices, created_at, created_by, updated_at'),
  T('fw_jobs', 'id, rollout, gateway, device, stage, status, state, result, seq, bytes, total, version, error, offers, offered_at, updated_at'),
  T('gateways', 'id, online, first_seen, last_seen, status', { bool: ['online'] }),
  T('series', 'id, gateway, device, point'),
  T('latest', 'series, ts, value, flags'),
  T('events', 'gateway, id, ts, received_at, type, severity, device, point, code, message, data'),
  T('alarms', 'n, gateway, device, point, severity, alarm_limit, threshold, value, message, raised_at, raised_event, received_at, cleared_at, cleared_event, clear_value, clear_message, acked_at, acked_by'),
  T('quarantine', 'n, gateway, topic, received_at, code, error, payload', { bytes: ['payload'] }),
  T('dedupe', 'gateway, epoch, ranges, updated_at'),
  T('readings', 'series, ts, value, flags'),
  // Since version 2: the per-bucket min/max/sum/count kept after raw readings aged out (retention).
  T('rollups', 'series, bucket_ms, ts, count, min, max, sum'),
];

/** The spec of a table by name. */
export const TABLE = new Map(TABLES.map((s) => [s.name, s]));

/** A row as the archive carries it (JSON values, bytes as base64). */
export type Row = unknown[];

/** The first line. */
export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  version: number;
  source: { kind: 'sqlite' | 'postgres'; schema: string };
  createdAt: number;
  tables: Record<string, { columns: string[]; count: number }>;
}

/** The last line. */
export interface ArchiveTrailer {
  end: true;
  counts: Record<string, number>;
  sha256: string;
}

const bad = (file: string, why: string, cause?: unknown): IocError =>
  new IocError('HUB_ERR_ARCHIVE', `archive ${file}: ${why}; nothing was imported`, cause === undefined ? {} : { cause });

/** Writes an archive line by line; {@link ArchiveWriter.close} adds the trailer. */
export class ArchiveWriter {
  private readonly gzip: Gzip;
  private readonly out: WriteStream;
  private readonly hash: Hash = createHash('sha256');
  private readonly counts: Record<string, number> = {};
  private readonly done: Promise<void>;
  /** Uncompressed bytes written so far. */
  bytes = 0;

  constructor(readonly file: string) {
    this.gzip = createGzip({ level: 6 });
    this.out = createWriteStream(file, { mode: 0o600 });
    this.gzip.pipe(this.out);
    this.done = new Promise((resolve, reject) => {
      this.out.on('close', resolve);
      this.out.on('error', reject);
      this.gzip.on('error', reject);
    });
  }

  private async line(v: unknown, hashed = true): Promise<void> {
    const text = `${JSON.stringify(v)}\n`;
    if (hashed) this.hash.update(text);
    this.bytes += Buffer.byteLength(text);
    if (!this.gzip.write(text)) await once(this.gzip, 'drain');
  }

  header(h: ArchiveHeader): Promise<void> {
    return this.line(h);
  }

  /** Rows of one table (call with at most {@link CHUNK_ROWS} rows; several calls per table are fine). */
  async rows(table: string, rows: Row[]): Promise<void> {
    if (rows.length === 0) return;
    this.counts[table] = (this.counts[table] ?? 0) + rows.length;
    await this.line({ t: table, r: rows });
  }

  /** Writes the trailer and closes the file; returns the counts written. */
  async close(): Promise<Record<string, number>> {
    const trailer: ArchiveTrailer = { end: true, counts: { ...this.counts }, sha256: this.hash.digest('hex') };
    await this.line(trailer, false);
    this.gzip.end();
    await this.done;
    return trailer.counts;
  }
}

/** What a pass over an archive sees, line by line. */
export type ArchiveItem = { kind: 'header'; header: ArchiveHeader } | { kind: 'rows'; table: string; rows: Row[] } | { kind: 'end'; trailer: ArchiveTrailer };

function checkHeader(file: string, v: unknown): ArchiveHeader {
  const h = v as Partial<ArchiveHeader> | null;
  if (!h || typeof h !== 'object' || h.format !== ARCHIVE_FORMAT) throw bad(file, `not an ioc-edge hub archive (first line has no format '${ARCHIVE_FORMAT}')`);
  if (typeof h.version !== 'number' || !Number.isInteger(h.version) || h.version < 1) throw bad(file, `archive version ${JSON.stringify(h.version)} is not a version number`);
  if (h.version > ARCHIVE_VERSION) throw bad(file, `archive format version ${h.version} is newer than this hub reads (${ARCHIVE_VERSION}): import it with a hub of that version or newer`);
  if (!h.tables || typeof h.tables !== 'object' || !h.source || typeof h.source !== 'object') throw bad(file, 'header lacks tables or source');
  for (const [name, spec] of Object.entries(h.tables)) {
    const mine = TABLE.get(name);
    if (!mine) throw bad(file, `header names an unknown table '${name}'`);
    if (JSON.stringify(spec.columns) !== JSON.stringify(mine.columns)) throw bad(file, `table '${name}' has columns ${JSON.stringify(spec.columns)}, expected ${JSON.stringify(mine.columns)}`);
  }
  return h as ArchiveHeader;
}

/**
 * Reads an archive, yielding the header, each data line and the trailer.
 * Checks lines as it goes (JSON, table, row width) and, at the end, the
 * counts and the SHA-256; a failure throws `HUB_ERR_ARCHIVE`. Only
 * {@link verifyArchive} gives the guarantee that the whole file is sound,
 * because the hash is known only at the end.
 */
export async function* readArchive(file: string): AsyncGenerator<ArchiveItem> {
  const gunzip = createGunzip();
  const input = createReadStream(file);
  let streamError: unknown = null;
  input.on('error', (e) => {
    streamError = e;
    gunzip.destroy(e);
  });
  // A corrupt stream can fail after this reader has stopped (a bad line thrown first): that error
  // must not end the process. While reading, readline passes it on to the loop below.
  gunzip.on('error', () => undefined);
  const lines = createInterface({ input: input.pipe(gunzip), crlfDelay: Infinity });
  const hash = createHash('sha256');
  const counts: Record<string, number> = {};
  let header: ArchiveHeader | null = null;
  let trailer: ArchiveTrailer | null = null;
  let n = 0;
  try {
    for await (const text of lines) {
      n++;
      if (trailer) throw bad(file, `data after the trailer (line ${n})`);
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        throw bad(file, `line ${n} is not JSON (corrupted)`, e);
      }
      if (!header) {
        header = checkHeader(file, v);
        hash.update(`${text}\n`);
        yield { kind: 'header', header };
        continue;
      }
      const o = v as { t?: unknown; r?: unknown; end?: unknown; counts?: unknown; sha256?: unknown };
      if (o.end === true) {
        trailer = o as ArchiveTrailer;
        continue;
      }
      hash.update(`${text}\n`);
      const spec = typeof o.t === 'string' ? TABLE.get(o.t) : undefined;
      if (!spec || !header.tables[spec.name]) throw bad(file, `line ${n} names no table of this archive (${JSON.stringify(o.t)})`);
      if (!Array.isArray(o.r) || o.r.some((r) => !Array.isArray(r) || r.length !== spec.columns.length)) throw bad(file, `line ${n}: rows of '${spec.name}' are not arrays of ${spec.columns.length} values`);
      counts[spec.name] = (counts[spec.name] ?? 0) + o.r.length;
      yield { kind: 'rows', table: spec.name, rows: o.r as Row[] };
    }
  } catch (e) {
    input.destroy();
    gunzip.destroy();
    if ((e as IocError).code === 'HUB_ERR_ARCHIVE') throw e;
    const code = (e as { code?: string }).code;
    if (streamError) throw bad(file, `cannot read it (${(streamError as Error).message})`, streamError);
    throw bad(file, code === 'Z_BUF_ERROR' || /unexpected end/i.test((e as Error).message) ? 'truncated (the gzip stream ends early)' : `corrupted (${(e as Error).message})`, e);
  }
  if (!header) throw bad(file, 'empty');
  if (!trailer) throw bad(file, 'truncated (no trailer line: the export did not finish or the file was cut)');
  if (trailer.sha256 !== hash.digest('hex')) throw bad(file, 'content does not match its SHA-256 (corrupted)');
  for (const name of new Set([...Object.keys(counts), ...Object.keys(trailer.counts ?? {})])) {
    if ((counts[name] ?? 0) !== (trailer.counts?.[name] ?? 0)) throw bad(file, `table '${name}' has ${counts[name] ?? 0} rows, the trailer says ${trailer.counts?.[name] ?? 0}`);
  }
  yield { kind: 'end', trailer };
}

/** Reads the whole archive once, checking everything; returns header and trailer. Nothing is written. */
export async function verifyArchive(file: string, onRows?: (rows: number) => void): Promise<{ header: ArchiveHeader; trailer: ArchiveTrailer }> {
  let header: ArchiveHeader | null = null;
  for await (const item of readArchive(file)) {
    if (item.kind === 'header') header = item.header;
    else if (item.kind === 'rows') onRows?.(item.rows.length);
    else return { header: header!, trailer: item.trailer };
  }
  throw bad(file, 'truncated');
}

/** Bytes → archive value. */
export const toB64 = (b: Buffer | Uint8Array | null | undefined): string | null => (b == null ? null : Buffer.from(b).toString('base64'));
/** Archive value → bytes. */
export const fromB64 = (s: unknown): Buffer | null => (s == null ? null : Buffer.from(String(s), 'base64'));

/** A store read table by table for export (one per backend: sqlite/export.ts, postgres/pg-export.ts). */
export interface ArchiveSource {
  readonly kind: 'sqlite' | 'postgres';
  /** The store's schema version, for the header. */
  schema(): Promise<string>;
  /** Rows of a table now (for the header and the progress bar; the trailer counts what was written). */
  count(table: string): Promise<number>;
  /** The table's rows in chunks of at most {@link CHUNK_ROWS}, streamed (never the whole table in memory). */
  read(table: string): AsyncIterable<Row[]>;
  close(): Promise<void>;
}

/**
 * How far an import into a store has come: the archive (its trailer's
 * SHA-256) and the rows of it, in archive order, written so far. Kept in
 * the target (table `import_progress`) in the same transaction as the rows
 * it counts, so after a crash it never claims a row that is not there nor
 * misses one that is.
 */
export interface ImportCheckpoint {
  archive: string;
  rows: number;
}

/** A store written table by table by import. */
export interface ArchiveTarget {
  readonly kind: 'sqlite' | 'postgres';
  /** The first table that holds rows, or null when the store is empty. */
  nonEmpty(): Promise<string | null>;
  /** Where an import that did not finish stopped; null when none is under way. */
  progress(): Promise<ImportCheckpoint | null>;
  /** Marks an import of `archive` under way, at row 0 (into an empty store). */
  begin(archive: string): Promise<void>;
  /** Empties every table the archive fills and forgets any import under way (--force, and after a refused import). */
  clear(): Promise<void>;
  /**
   * Writes rows of one table in one transaction, with the checkpoint `at`
   * (the archive's rows done once these are in). Image pieces are kept only
   * as whole images, which a repeated import stores again harmlessly, so
   * they move no checkpoint.
   */
  write(table: string, rows: Row[], at: ImportCheckpoint): Promise<void>;
  /** After the last row: identity sequences, bookkeeping the store keeps beside its tables. */
  finish(): Promise<void>;
  /** The import is complete and verified: forgets its checkpoint. */
  done(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Puts image pieces back together as they arrive (pieces of one image are
 * consecutive, `n` from 0 to `pieces - 1`); one image in memory at a time.
 */
export class ImageAssembler {
  private sha = '';
  private parts: Buffer[] = [];

  /** Adds one `image_bytes` row; returns the whole image after its last piece. */
  add(row: Row): { sha256: string; bytes: Buffer } | null {
    const [sha256, n, pieces, data] = row as [string, number, number, string];
    if (n === 0) {
      this.sha = sha256;
      this.parts = [];
    }
    if (sha256 !== this.sha || n !== this.parts.length) throw new IocError('HUB_ERR_ARCHIVE', `archive: piece ${n} of image ${sha256} out of order; nothing more was imported`);
    this.parts.push(fromB64(data) ?? Buffer.alloc(0));
    if (n < pieces - 1) return null;
    const bytes = Buffer.concat(this.parts);
    this.parts = [];
    return { sha256, bytes };
  }

  /** Adds `image_bytes` rows and stores each completed image, refusing one whose bytes do not hash to its name. */
  async store(rows: Row[], images: { put(bytes: Buffer): Promise<{ sha256: string }> }): Promise<void> {
    for (const row of rows) {
      const whole = this.add(row);
      if (!whole) continue;
      const put = await images.put(whole.bytes);
      if (put.sha256 !== whole.sha256) throw new IocError('HUB_ERR_ARCHIVE', `archive: image ${whole.sha256} has bytes hashing to ${put.sha256} (corrupted)`);
    }
  }
}

/** An image as `image_bytes` rows of {@link IMAGE_PIECE} bytes (one row per yield: a line stays small). */
export function* imagePieces(sha256: string, bytes: Buffer): Generator<Row[]> {
  const pieces = Math.max(1, Math.ceil(bytes.length / IMAGE_PIECE));
  for (let n = 0; n < pieces; n++) yield [[sha256, n, pieces, toB64(bytes.subarray(n * IMAGE_PIECE, (n + 1) * IMAGE_PIECE))]];
}
