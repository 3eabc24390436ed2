/**
 * The SQLite outbox's file: schema, row types, the integrity check at open
 * (a corrupt file is moved aside and replaced), disk-full detection, and the
 * event queue (events and alarms: their own table and budget, sent before
 * telemetry). Split from sqlite-outbox.ts, which keeps the readings.
 */
import { rename, stat } from 'node:fs/promises';
import type { GatewayEvent } from '../../contract/index.js';
import { SqliteDb, type Logger } from '../../lib/index.js';

/** A run of rows as SQLite counts it: how many, and their id range. */
export interface RowRun {
  n: number;
  lo: number | null;
  hi: number | null;
}

export interface Reserved {
  seq: number;
  lo: number;
  hi: number;
  historical: number;
}

/** Reservation cursors; backlog region = (backlog, liveStart], live region = (live, ∞). */
export interface Cursors {
  backlog: number;
  liveStart: number;
  live: number;
}

/** True for SQLite's "database or disk is full" (SQLITE_FULL) and the OS's ENOSPC. */
export function isDiskFull(err: unknown): boolean {
  const e = err as { code?: string; errno?: number; message?: string };
  return e?.code === 'SQLITE_FULL' || e?.code === 'ENOSPC' || e?.errno === 13 || /database or disk is full|ENOSPC|no space left/i.test(e?.message ?? '');
}

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- AUTOINCREMENT: ids are never reused after the newest rows are acknowledged and deleted,
-- so "id > cursor" always finds new rows.
CREATE TABLE IF NOT EXISTS readings (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, lo INTEGER NOT NULL, hi INTEGER NOT NULL, historical INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS events (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, severity TEXT NOT NULL, body TEXT NOT NULL);
`;

export const NO_ROWS: RowRun = { n: 0, lo: null, hi: null };

/** What {@link openOutboxFile} did with a file that failed its check. */
export interface CorruptFile {
  file: string;
  movedTo: string;
  reason: string;
}

/** Opens the file; a file that fails `quick_check` is moved aside (with its -wal/-shm) and replaced by a fresh one. */
export async function openOutboxFile(file: string, logger: Logger, clock: () => number): Promise<{ db: SqliteDb; corrupt: CorruptFile | null }> {
  let db: SqliteDb | null = null;
  try {
    db = await SqliteDb.open(file);
    const rows = await db.all<{ quick_check: string }>('PRAGMA quick_check');
    if (rows.length === 1 && rows[0]!.quick_check === 'ok') return { db, corrupt: null };
    throw new Error(rows.map((r) => r.quick_check).slice(0, 3).join('; '));
  } catch (err) {
    await db?.close().catch(() => undefined);
    const aside = `${file}.corrupt-${clock()}`;
    logger.error({ err, file, movedTo: aside, code: 'GW_ERR_OUTBOX_IO' }, 'outbox failed its integrity check; moving it aside and starting a fresh one');
    for (const suffix of ['', '-wal', '-shm']) {
      await stat(file + suffix).then(() => rename(file + suffix, aside + suffix), () => undefined);
    }
    return { db: await SqliteDb.open(file), corrupt: { file, movedTo: aside, reason: (err as Error).message } };
  }
}

/** The outbox's event queue in the `events` table, bounded by `maxEvents`. */
export class OutboxEvents {
  /** Events stored. */
  count = 0;
  /** Events dropped by the budget. */
  dropped = 0;
  /** Handed out by {@link next}, not yet acknowledged. */
  private readonly out = new Set<string>();

  constructor(private readonly maxEvents: number) {}

  async load(db: SqliteDb): Promise<void> {
    this.count = (await db.get<{ n: number }>('SELECT count(*) AS n FROM events'))?.n ?? 0;
  }

  /** Stores an event once per id; over budget, drops the oldest info events first, then the oldest of any kind. */
  async append(db: SqliteDb, event: GatewayEvent): Promise<void> {
    const res = await db.exclusive(() => db.run('INSERT OR IGNORE INTO events(id, severity, body) VALUES (?, ?, ?)', [event.id, event.severity, JSON.stringify(event)]));
    this.count += res.changes;
    if (this.count > this.maxEvents) {
      // Alarms outlive chatter.
      const excess = this.count - this.maxEvents;
      const a = await db.exclusive(() => db.run(`DELETE FROM events WHERE n IN (SELECT n FROM events WHERE severity = 'info' ORDER BY n LIMIT ?)`, [excess]));
      const b = excess > a.changes ? await db.exclusive(() => db.run('DELETE FROM events WHERE n IN (SELECT n FROM events ORDER BY n LIMIT ?)', [excess - a.changes])) : { changes: 0 };
      this.count -= a.changes + b.changes;
      this.dropped += a.changes + b.changes;
    }
  }

  /** Up to `max` events not handed out yet, oldest first. */
  async next(db: SqliteDb, max: number): Promise<GatewayEvent[]> {
    const rows = await db.exclusive(() => db.all<{ id: string; body: string }>('SELECT id, body FROM events ORDER BY n LIMIT ?', [max + this.out.size]));
    const events: GatewayEvent[] = [];
    for (const r of rows) {
      if (this.out.has(r.id)) continue;
      this.out.add(r.id);
      events.push(JSON.parse(r.body) as GatewayEvent);
      if (events.length >= max) break;
    }
    return events;
  }

  async ack(db: SqliteDb, id: string): Promise<void> {
    const res = await db.exclusive(() => db.run('DELETE FROM events WHERE id = ?', [id]));
    this.out.delete(id);
    this.count -= res.changes;
  }
}

/** Rows, JSON bytes and oldest sample time of the stored readings. */
export async function readingTotals(db: SqliteDb): Promise<{ rows: number; bytes: number; oldestTs: number | null }> {
  const agg = await db.get<{ n: number; b: number | null; t: number | null }>('SELECT count(*) AS n, sum(length(body)) AS b, min(ts) AS t FROM readings');
  return { rows: agg?.n ?? 0, bytes: agg?.b ?? 0, oldestTs: agg?.t ?? null };
}

/** Adds up counts and reports the sum at most once per `intervalMs` (the first at once). */
export class ThrottledCount {
  private pending = 0;
  private last = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly clock: () => number,
    private readonly report: (sum: number) => void,
    private readonly intervalMs = 1000,
  ) {}

  add(n: number): void {
    this.pending += n;
    const wait = this.last + this.intervalMs - this.clock();
    if (wait <= 0) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, wait);
      this.timer.unref();
    }
  }

  /** Reports what is pending now (and cancels the timer). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending === 0) return;
    const sum = this.pending;
    this.pending = 0;
    this.last = this.clock();
    this.report(sum);
  }
}
