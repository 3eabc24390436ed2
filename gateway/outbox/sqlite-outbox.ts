/**
 * The SQLite outbox (sqlite3, WAL). Readings are buffered in memory for at most
 * `flushIntervalMs` and written with multi-row INSERTs in one transaction per
 * flush. A batch is a contiguous id range `lo..hi` reserved under a new `seq`
 * (AUTOINCREMENT: never reused, survives restarts) in the same transaction, so
 * a batch resent after a crash carries the same `(epoch, seq)` and the hub
 * drops the replay. Rows are deleted only in {@link SqliteOutbox.ack}.
 *
 * Durability (documented in docs/durability.md): `journal_mode=WAL` and by
 * default `synchronous=FULL`: every committed flush survives a power cut. With
 * `synchronous: 'NORMAL'` a power cut (not a process crash) may lose the last
 * flushes before the WAL was synced, never corrupting the file.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { rename, stat } from 'node:fs/promises';
import { IocError, type GatewayEvent, type Reading } from '../../contract/index.js';
import { insertMany, SqliteDb, type Logger } from '../../lib/index.js';
import type { Outbox, OutboxBatch, OutboxLimits, OutboxStats } from './outbox.js';

/** Dependencies and settings of {@link SqliteOutbox}. */
export interface SqliteOutboxDeps {
  file: string;
  logger: Logger;
  limits: OutboxLimits;
  /** Longest time a reading waits in memory before it is written (ms). */
  flushIntervalMs?: number;
  /** Write as soon as this many readings are buffered. */
  flushRows?: number;
  /** A reading older than this when sent marks its batch `historical` (ms). */
  historicalAfterMs?: number;
  synchronous?: 'FULL' | 'NORMAL';
  clock?: () => number;
}

interface Reserved {
  seq: number;
  lo: number;
  hi: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- AUTOINCREMENT: ids are never reused after the newest rows are acknowledged and deleted,
-- so "id > lastReserved" always finds new rows.
CREATE TABLE IF NOT EXISTS readings (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, lo INTEGER NOT NULL, hi INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
`;

/** SQLite implementation of {@link Outbox}. */
export class SqliteOutbox extends EventEmitter implements Outbox {
  private db: SqliteDb | null = null;
  private buffer: Array<[number, string]> = [];
  private bufferBytes = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private recovered: Reserved[] = [];
  private lastReserved = 0;
  private reserved = new Map<number, Reserved>();
  private eventsOut = new Set<string>();
  private counts = { rows: 0, bytes: 0, appended: 0, dropped: 0, acked: 0, events: 0 };
  private oldestTs: number | null = null;
  private epochId = '';
  private readonly clock: () => number;

  constructor(private readonly deps: SqliteOutboxDeps) {
    super();
    this.clock = deps.clock ?? Date.now;
  }

  get epoch(): string {
    return this.epochId;
  }

  async start(): Promise<void> {
    this.db = await this.openChecked();
    const db = this.db;
    await db.exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=${this.deps.synchronous ?? 'FULL'}; PRAGMA busy_timeout=5000;${SCHEMA}`);
    const epoch = await db.get<{ value: string }>(`SELECT value FROM meta WHERE key='epoch'`);
    if (epoch) this.epochId = epoch.value;
    else {
      this.epochId = randomBytes(9).toString('base64url');
      await db.run(`INSERT INTO meta(key, value) VALUES ('epoch', ?)`, [this.epochId]);
    }
    const agg = await db.get<{ n: number; b: number | null; t: number | null }>('SELECT count(*) AS n, sum(length(body)) AS b, min(ts) AS t FROM readings');
    this.counts.rows = agg?.n ?? 0;
    this.counts.bytes = agg?.b ?? 0;
    this.oldestTs = agg?.t ?? null;
    this.counts.events = (await db.get<{ n: number }>('SELECT count(*) AS n FROM events'))?.n ?? 0;
    this.recovered = await db.all<Reserved>('SELECT seq, lo, hi FROM batches ORDER BY seq');
    this.lastReserved = this.recovered.length > 0 ? this.recovered[this.recovered.length - 1]!.hi : 0;
    this.deps.logger.info({ rows: this.counts.rows, pendingBatches: this.recovered.length, epoch: this.epochId }, 'outbox opened');
  }

  /** Opens the file; a file that fails `quick_check` is moved aside and replaced by a fresh one. */
  private async openChecked(): Promise<SqliteDb> {
    const file = this.deps.file;
    let db: SqliteDb | null = null;
    try {
      db = await SqliteDb.open(file);
      const rows = await db.all<{ quick_check: string }>('PRAGMA quick_check');
      if (rows.length === 1 && rows[0]!.quick_check === 'ok') return db;
      throw new Error(rows.map((r) => r.quick_check).slice(0, 3).join('; '));
    } catch (err) {
      await db?.close().catch(() => undefined);
      const aside = `${file}.corrupt-${this.clock()}`;
      this.deps.logger.error({ err, file, movedTo: aside, code: 'GW_ERR_OUTBOX_IO' }, 'outbox failed its integrity check; moving it aside and starting a fresh one');
      for (const suffix of ['', '-wal', '-shm']) {
        await stat(file + suffix).then(() => rename(file + suffix, aside + suffix), () => undefined);
      }
      this.emit('corrupt', { file, movedTo: aside, reason: (err as Error).message });
      return SqliteDb.open(file);
    }
  }

  append(readings: readonly Reading[]): void {
    if (!this.db) throw new IocError('GW_ERR_OUTBOX_CLOSED', 'outbox is not started');
    for (const r of readings) {
      const body = JSON.stringify(r);
      this.buffer.push([r.ts, body]);
      this.bufferBytes += body.length;
      if (this.oldestTs === null || r.ts < this.oldestTs) this.oldestTs = r.ts;
    }
    this.counts.appended += readings.length;
    if (this.buffer.length >= (this.deps.flushRows ?? 2000)) void this.flush().catch(() => undefined);
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        void this.flush().catch(() => undefined);
      }, this.deps.flushIntervalMs ?? 100);
    }
  }

  async appendEvent(event: GatewayEvent): Promise<void> {
    const db = this.requireDb();
    const res = await db.exclusive(() => db.run('INSERT OR IGNORE INTO events(id, body) VALUES (?, ?)', [event.id, JSON.stringify(event)]));
    this.counts.events += res.changes;
    this.emit('readable');
  }

  async flush(): Promise<void> {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    while (this.flushing) await this.flushing;
    if (this.buffer.length === 0) return;
    const rows = this.buffer;
    const bytes = this.bufferBytes;
    this.buffer = [];
    this.bufferBytes = 0;
    const db = this.requireDb();
    this.flushing = (async () => {
      try {
        await db.transaction(() => insertMany(db, 'INSERT INTO readings(ts, body)', 2, rows));
        this.counts.rows += rows.length;
        this.counts.bytes += bytes;
        await this.enforceBudgets();
        this.emit('readable');
      } catch (err) {
        // Keep the readings: put them back in front and let the next flush retry.
        this.buffer = rows.concat(this.buffer);
        this.bufferBytes += bytes;
        this.deps.logger.error({ err, rows: rows.length, code: 'GW_ERR_OUTBOX_IO' }, 'outbox write failed; will retry');
        throw new IocError('GW_ERR_OUTBOX_IO', `outbox write failed: ${(err as Error).message}`, { cause: err });
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  /** Drops the oldest readings while a budget is exceeded; counts them and emits 'overflow'. */
  private async enforceBudgets(): Promise<void> {
    const { maxRows, maxBytes, maxAgeMs } = this.deps.limits;
    const db = this.requireDb();
    let dropped = 0;
    let reason = '';
    const cutoff = this.clock() - maxAgeMs;
    if (this.oldestTs !== null && this.oldestTs < cutoff) {
      const res = await db.exclusive(() => db.run('DELETE FROM readings WHERE ts < ?', [cutoff]));
      dropped += res.changes;
      if (res.changes > 0) reason = 'maxAge';
    }
    const excessRows = this.counts.rows - dropped - maxRows;
    const avg = this.counts.rows > 0 ? this.counts.bytes / this.counts.rows : 0;
    const excessBytes = avg > 0 ? Math.ceil((this.counts.bytes - maxBytes) / avg) : 0;
    const excess = Math.max(excessRows, excessBytes);
    if (excess > 0) {
      // Drop 1% more than needed so a full outbox does not pay a DELETE on every flush.
      const n = excess + Math.ceil(maxRows / 100);
      const res = await db.exclusive(() => db.run('DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT ?)', [n]));
      dropped += res.changes;
      reason = excessRows >= excessBytes ? 'maxRows' : 'maxBytes';
    }
    if (dropped > 0) {
      const agg = await db.exclusive(() => db.get<{ n: number; b: number | null; t: number | null }>('SELECT count(*) AS n, sum(length(body)) AS b, min(ts) AS t FROM readings'));
      this.counts.rows = agg?.n ?? 0;
      this.counts.bytes = agg?.b ?? 0;
      this.oldestTs = agg?.t ?? null;
      this.counts.dropped += dropped;
      this.deps.logger.warn({ dropped, reason, totalDropped: this.counts.dropped }, 'outbox budget reached: oldest readings dropped');
      this.emit('overflow', { dropped, reason });
    }
  }

  async nextBatch(maxRows: number): Promise<OutboxBatch | null> {
    const db = this.requireDb();
    return db.exclusive(async () => {
      let res: Reserved | undefined = this.recovered.shift();
      let rows: Array<{ id: number; ts: number; body: string }>;
      if (res) {
        rows = await db.all('SELECT id, ts, body FROM readings WHERE id BETWEEN ? AND ? ORDER BY id', [res.lo, res.hi]);
        if (rows.length === 0) {
          // Every reading of this batch was dropped by a budget: nothing to resend.
          await db.run('DELETE FROM batches WHERE seq = ?', [res.seq]);
          return null;
        }
      } else {
        rows = await db.all('SELECT id, ts, body FROM readings WHERE id > ? ORDER BY id LIMIT ?', [this.lastReserved, maxRows]);
        if (rows.length === 0) return null;
        const lo = rows[0]!.id;
        const hi = rows[rows.length - 1]!.id;
        const ins = await db.run('INSERT INTO batches(lo, hi) VALUES (?, ?)', [lo, hi]);
        res = { seq: ins.lastID, lo, hi };
        this.lastReserved = hi;
      }
      this.reserved.set(res.seq, res);
      const historical = this.clock() - rows[0]!.ts > (this.deps.historicalAfterMs ?? 30_000);
      const head = `{"v":1,"epoch":${JSON.stringify(this.epochId)},"seq":${res.seq},"sentAt":${this.clock()},"historical":${historical},"readings":[`;
      let body = head;
      for (let i = 0; i < rows.length; i++) body += (i > 0 ? ',' : '') + rows[i]!.body;
      return { epoch: this.epochId, seq: res.seq, count: rows.length, payload: `${body}]}`, historical };
    });
  }

  async ack(seq: number): Promise<void> {
    const db = this.requireDb();
    const res = this.reserved.get(seq) ?? (await db.exclusive(() => db.get<Reserved>('SELECT seq, lo, hi FROM batches WHERE seq = ?', [seq])));
    if (!res) return;
    const deleted = await db.transaction(async () => {
      const d = await db.all<{ n: number; b: number | null }>('SELECT count(*) AS n, sum(length(body)) AS b FROM readings WHERE id BETWEEN ? AND ?', [res.lo, res.hi]);
      await db.run('DELETE FROM readings WHERE id BETWEEN ? AND ?', [res.lo, res.hi]);
      await db.run('DELETE FROM batches WHERE seq = ?', [seq]);
      return d[0] ?? { n: 0, b: 0 };
    });
    this.reserved.delete(seq);
    this.counts.rows -= deleted.n;
    this.counts.bytes -= deleted.b ?? 0;
    this.counts.acked += deleted.n;
    if (this.counts.rows + this.buffer.length === 0) this.oldestTs = null;
  }

  async nextEvents(max: number): Promise<GatewayEvent[]> {
    const db = this.requireDb();
    const rows = await db.exclusive(() => db.all<{ id: string; body: string }>('SELECT id, body FROM events ORDER BY n LIMIT ?', [max + this.eventsOut.size]));
    const out: GatewayEvent[] = [];
    for (const r of rows) {
      if (this.eventsOut.has(r.id)) continue;
      this.eventsOut.add(r.id);
      out.push(JSON.parse(r.body) as GatewayEvent);
      if (out.length >= max) break;
    }
    return out;
  }

  async ackEvent(id: string): Promise<void> {
    const db = this.requireDb();
    const res = await db.exclusive(() => db.run('DELETE FROM events WHERE id = ?', [id]));
    this.eventsOut.delete(id);
    this.counts.events -= res.changes;
  }

  stats(): OutboxStats {
    return {
      rows: this.counts.rows + this.buffer.length,
      bytes: this.counts.bytes + this.bufferBytes,
      oldestTs: this.oldestTs,
      appended: this.counts.appended,
      dropped: this.counts.dropped,
      acked: this.counts.acked,
      events: this.counts.events,
    };
  }

  async stop(): Promise<void> {
    if (!this.db) return;
    try {
      await this.flush();
    } catch (err) {
      this.deps.logger.error({ err }, 'final outbox flush failed');
    }
    const db = this.db;
    this.db = null;
    await db.exclusive(() => db.exec('PRAGMA wal_checkpoint(TRUNCATE)')).catch(() => undefined);
    await db.close();
  }

  private requireDb(): SqliteDb {
    if (!this.db) throw new IocError('GW_ERR_OUTBOX_CLOSED', 'outbox is not started or already stopped');
    return this.db;
  }
}
