/**
 * The outbox's in-memory write buffer: readings waiting (at most the flush
 * interval) for their SQLite transaction, kept as JSON array texts — one per
 * append (one poll), at most {@link CHUNK_ROWS} readings each — instead of a
 * string and a `[ts, body]` pair per reading. SQLite splits the arrays into
 * rows itself ({@link insertChunks}: `json_each`, and `->>` for the sample
 * time).
 *
 * Why: at 30,000 readings/s the per-reading objects lived just long enough
 * (buffer, then the asynchronous INSERT) for V8 to move them, or to start
 * allocating them, in the old generation, where they piled up as garbage
 * between full collections: most of the gateway's peak RSS. One string per
 * poll is a hundredth of the objects, and the INSERT copies it at bind time.
 */
import type { Reading } from '../../contract/index.js';
import type { SqliteDb } from '../../lib/index.js';
import { isDiskFull } from './outbox-file.js';

/** Most readings per chunk: disk-full recovery writes chunk by chunk, so this bounds its granularity. */
export const CHUNK_ROWS = 250;
/** Readings per INSERT statement: the joined JSON stays a young-generation string (well under V8's 128 kB large-object threshold for ~90-byte readings). */
const STATEMENT_ROWS = 500;

/** Chunks taken out of the buffer (for one flush). */
export interface Chunks {
  /** JSON array texts of readings. */
  texts: string[];
  /** Readings per text. */
  counts: number[];
  rows: number;
  /** Sum of the readings' JSON lengths (what `length(body)` gives in the table). */
  bytes: number;
}

/** JSON length of the readings in an array text of `n` readings: minus the brackets and the n-1 commas. */
function bodyBytes(text: string, n: number): number {
  return text.length - n - 1;
}

/** Readings in memory, oldest first. */
export class ReadingBuffer {
  private texts: string[] = [];
  private counts: number[] = [];
  private rowCount = 0;
  private byteCount = 0;

  /** Readings buffered. */
  get rows(): number {
    return this.rowCount;
  }

  /** Sum of their JSON lengths. */
  get bytes(): number {
    return this.byteCount;
  }

  add(readings: readonly Reading[]): void {
    if (readings.length <= CHUNK_ROWS) this.push(JSON.stringify(readings), readings.length);
    else for (let i = 0; i < readings.length; i += CHUNK_ROWS) this.push(JSON.stringify(readings.slice(i, i + CHUNK_ROWS)), Math.min(CHUNK_ROWS, readings.length - i));
  }

  private push(text: string, n: number): void {
    this.texts.push(text);
    this.counts.push(n);
    this.rowCount += n;
    this.byteCount += bodyBytes(text, n);
  }

  /** Empties the buffer and returns what it held. */
  take(): Chunks {
    const out = { texts: this.texts, counts: this.counts, rows: this.rowCount, bytes: this.byteCount };
    this.texts = [];
    this.counts = [];
    this.rowCount = 0;
    this.byteCount = 0;
    return out;
  }

  /** Puts chunks that could not be written back in front (they are older than anything buffered since). */
  putBack(c: Chunks): void {
    if (c.rows === 0) return;
    this.texts = c.texts.concat(this.texts);
    this.counts = c.counts.concat(this.counts);
    this.rowCount += c.rows;
    this.byteCount += c.bytes;
  }

  /** Drops whole chunks, oldest first, until at most `cap` readings remain; returns the readings dropped. */
  dropOldest(cap: number): number {
    let i = 0;
    let dropped = 0;
    while (this.rowCount - dropped > cap && i < this.texts.length) {
      this.byteCount -= bodyBytes(this.texts[i] as string, this.counts[i] as number);
      dropped += this.counts[i] as number;
      i++;
    }
    if (i > 0) {
      this.texts.splice(0, i);
      this.counts.splice(0, i);
      this.rowCount -= dropped;
    }
    return dropped;
  }
}

/** Chunks `from..to` of `c` as their own {@link Chunks}. */
export function sliceChunks(c: Chunks, from: number, to = c.texts.length): Chunks {
  const texts = c.texts.slice(from, to);
  const counts = c.counts.slice(from, to);
  let rows = 0;
  let bytes = 0;
  for (let i = 0; i < texts.length; i++) {
    rows += counts[i] as number;
    bytes += bodyBytes(texts[i] as string, counts[i] as number);
  }
  return { texts, counts, rows, bytes };
}

// Rows in array order (ids grow in the order readings were appended); `->>` extracts the sample time.
const INSERT = `INSERT INTO readings(ts, body) SELECT r.value ->> 'ts', r.value FROM json_each(?) AS c, json_each(c.value) AS r ORDER BY c.key, r.key`;

/**
 * Inserts the readings of `c` (call inside a transaction): one statement per
 * ~{@link STATEMENT_ROWS} readings, its one parameter a JSON array of the
 * chunks' arrays.
 */
export async function insertChunks(db: SqliteDb, c: Chunks): Promise<void> {
  let start = 0;
  while (start < c.texts.length) {
    let end = start;
    let n = 0;
    while (end < c.texts.length && (n === 0 || n + (c.counts[end] as number) <= STATEMENT_ROWS)) n += c.counts[end++] as number;
    const param = end - start === 1 ? `[${c.texts[start] as string}]` : `[${c.texts.slice(start, end).join(',')}]`;
    await db.run(INSERT, [param]);
    start = end;
  }
}

/**
 * Writes chunk by chunk (≤ {@link CHUNK_ROWS} readings each), one transaction
 * each, for a disk that is full: on a refusal `makeRoom` is called and the
 * chunk tried once more. Returns how many chunks were written.
 */
export async function writeWhatFits(db: SqliteDb, c: Chunks, makeRoom: () => Promise<void>): Promise<number> {
  for (let i = 0; i < c.texts.length; i++) {
    const one = sliceChunks(c, i, i + 1);
    try {
      await db.transaction(() => insertChunks(db, one));
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      await makeRoom();
      try {
        await db.transaction(() => insertChunks(db, one));
      } catch (err2) {
        if (isDiskFull(err2)) return i;
        throw err2;
      }
    }
  }
  return c.texts.length;
}
