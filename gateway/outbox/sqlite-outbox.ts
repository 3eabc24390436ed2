/**
 * The SQLite outbox (sqlite3, WAL). Readings are buffered in memory for at most
 * `flushIntervalMs` as one JSON text per append (reading-buffer.ts) and written
 * in one transaction per flush, SQLite splitting the texts into rows; batches
 * are read back with the bodies already joined by SQLite (`group_concat`), so
 * neither direction creates JS objects per reading. A batch is a contiguous id range `lo..hi` reserved under a new `seq`
 * (AUTOINCREMENT: never reused, survives restarts) in the same transaction, so
 * a batch resent after a crash carries the same `(epoch, seq)` and the hub
 * drops the replay. Rows are deleted only in {@link SqliteOutbox.ack}.
 *
 * Live and backlog: normally one cursor walks the table. When more than
 * `backlogThreshold` readings wait unreserved (the uplink was down), the
 * table splits at the newest row: rows up to it are the backlog, sent as
 * `historical` batches, and rows appended afterwards are live; batches are
 * taken from both regions, live getting `liveShare` of them, so current
 * values keep flowing while a long backlog drains. The cursors are persisted
 * with each reservation, so the split survives restarts.
 *
 * Durability (documented in docs/durability.md): `journal_mode=WAL` and by
 * default `synchronous=FULL`: every committed flush survives a power cut. With
 * `synchronous: 'NORMAL'` a power cut (not a process crash) may lose the last
 * flushes before the WAL was synced, never corrupting the file.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { IocError, type GatewayEvent, type Reading } from '../../contract/index.js';
import type { Logger, SqliteDb } from '../../lib/index.js';
import { isDiskFull, NO_ROWS, openOutboxFile, OutboxEvents, readingTotals, SCHEMA, ThrottledCount, type Cursors, type Reserved, type RowRun } from './outbox-file.js';
import type { Outbox, OutboxBatch, OutboxLimits, OutboxStats } from './outbox.js';
import { insertChunks, ReadingBuffer, sliceChunks, writeWhatFits, type Chunks } from './reading-buffer.js';

export { isDiskFull } from './outbox-file.js';

/** Dependencies and settings of {@link SqliteOutbox}. */
export interface SqliteOutboxDeps {
  file: string;
  logger: Logger;
  limits: OutboxLimits;
  /** Longest time a reading waits in memory before it is written (ms). */
  flushIntervalMs?: number;
  /** Write as soon as this many readings are buffered. */
  flushRows?: number;
  /** Unreserved readings beyond which the table splits into backlog and live regions. Default 20,000. */
  backlogThreshold?: number;
  /** Share of batches taken from the live region while a backlog drains, 0..1. Default 0.5. */
  liveShare?: number;
  synchronous?: 'FULL' | 'NORMAL';
  /** Extra PRAGMA statements run after opening (tests use `max_page_count` to stand in for a full disk). */
  pragmas?: string;
  clock?: () => number;
}

/** SQLite implementation of {@link Outbox}. */
export class SqliteOutbox extends EventEmitter implements Outbox {
  private db: SqliteDb | null = null;
  private readonly buffer = new ReadingBuffer();
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private recovered: Reserved[] = [];
  private cursors: Cursors = { backlog: 0, liveStart: 0, live: 0 };
  /** Highest row id written (ids only grow: AUTOINCREMENT). */
  private maxId = 0;
  private liveBatches = 0;
  private backlogBatches = 0;
  private reserved = new Map<number, Reserved>();
  private readonly events: OutboxEvents;
  /** Buffer overflows, signalled at most once a second with the sum: an event per append would queue events for the very disk that is behind. */
  private readonly overflow: ThrottledCount;
  private counts = { rows: 0, bytes: 0, appended: 0, dropped: 0, acked: 0 };
  /** Readings taken from the buffer by the flush being committed: in neither `buffer` nor `counts` until it ends, but still held (stats must count them). */
  private inFlush: Chunks | null = null;
  private oldestTs: number | null = null;
  private epochId = '';
  private readonly clock: () => number;
  /** Append time of the oldest reading in the buffer, and of the oldest in the flush being committed (null: none). */
  private bufferSince: number | null = null;
  private flightSince: number | null = null;
  private commitLagMax = 0;

  constructor(private readonly deps: SqliteOutboxDeps) {
    super();
    this.clock = deps.clock ?? Date.now;
    this.events = new OutboxEvents(deps.limits.maxEvents ?? 100_000);
    this.overflow = new ThrottledCount(this.clock, (dropped) => this.emit('overflow', { dropped, reason: 'maxBufferedRows' }));
  }

  get epoch(): string {
    return this.epochId;
  }

  async start(): Promise<void> {
    const { db, corrupt } = await openOutboxFile(this.deps.file, this.deps.logger, this.clock);
    this.db = db;
    if (corrupt) this.emit('corrupt', corrupt);
    await db.exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=${this.deps.synchronous ?? 'FULL'}; PRAGMA busy_timeout=5000;${SCHEMA}${this.deps.pragmas ?? ''}`);
    const epoch = await db.get<{ value: string }>(`SELECT value FROM meta WHERE key='epoch'`);
    if (epoch) this.epochId = epoch.value;
    else {
      this.epochId = randomBytes(9).toString('base64url');
      await db.run(`INSERT INTO meta(key, value) VALUES ('epoch', ?)`, [this.epochId]);
    }
    ({ rows: this.counts.rows, bytes: this.counts.bytes, oldestTs: this.oldestTs } = await readingTotals(db));
    await this.events.load(db);
    this.recovered = await db.all<Reserved>('SELECT seq, lo, hi, historical FROM batches ORDER BY seq');
    const cur = await db.get<{ value: string }>(`SELECT value FROM meta WHERE key='cursors'`);
    if (cur) this.cursors = JSON.parse(cur.value) as Cursors;
    this.maxId = (await db.get<{ m: number | null }>(`SELECT seq AS m FROM sqlite_sequence WHERE name='readings'`))?.m ?? 0;
    this.deps.logger.info({ rows: this.counts.rows, pendingBatches: this.recovered.length, epoch: this.epochId }, 'outbox opened');
  }

  append(readings: readonly Reading[]): void {
    if (!this.db) throw new IocError('GW_ERR_OUTBOX_CLOSED', 'outbox is not started');
    if (readings.length === 0) return;
    this.buffer.add(readings);
    this.bufferSince ??= this.clock();
    for (const r of readings) if (this.oldestTs === null || r.ts < this.oldestTs) this.oldestTs = r.ts;
    this.counts.appended += readings.length;
    // Offered faster than the disk takes it: memory stays bounded, the oldest go first, counted.
    if (this.buffer.rows > (this.deps.limits.maxBufferedRows ?? 50_000)) this.capBuffer();
    // While a flush runs, the timer catches up (at most one waiting flush): a flush call per
    // append would pile up waiting calls without bound when the disk is slower than the drivers.
    if (this.buffer.rows >= (this.deps.flushRows ?? 2000) && !this.flushing) void this.flush().catch(() => undefined);
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        void this.flush().catch(() => undefined);
      }, this.deps.flushIntervalMs ?? 100);
    }
  }

  async appendEvent(event: GatewayEvent): Promise<void> {
    await this.events.append(this.requireDb(), event);
    this.emit('readable');
  }

  async flush(): Promise<void> {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    while (this.flushing) await this.flushing;
    if (this.buffer.rows === 0) return;
    const taken = this.buffer.take();
    this.inFlush = taken;
    const since = this.bufferSince;
    this.bufferSince = null;
    this.flightSince = since;
    const db = this.requireDb();
    this.flushing = (async () => {
      let written = taken;
      try {
        try {
          await db.transaction(() => insertChunks(db, taken));
        } catch (err) {
          if (!isDiskFull(err)) throw err;
          // The disk is full: make room and write what fits, in small transactions.
          await this.makeRoom();
          const n = await writeWhatFits(this.requireDb(), taken, () => this.makeRoom());
          written = sliceChunks(taken, 0, n);
          if (n < taken.texts.length) {
            this.inFlush = null;
            this.count(written);
            this.buffer.putBack(sliceChunks(taken, n));
            this.capBuffer();
            this.scheduleRetry();
            throw err;
          }
        }
        this.inFlush = null;
        this.count(written);
        if (since !== null) {
          const lagMs = this.clock() - since;
          this.commitLagMax = Math.max(this.commitLagMax, lagMs);
          this.emit('committed', { rows: written.rows, lagMs });
        }
        await this.enforceBudgets();
        this.emit('readable');
      } catch (err) {
        if (!isDiskFull(err)) {
          // Keep the readings: put them back in front and let the next flush retry.
          this.inFlush = null;
          this.buffer.putBack(taken);
          this.capBuffer();
          this.scheduleRetry();
        }
        const code = isDiskFull(err) ? 'GW_ERR_OUTBOX_FULL' : 'GW_ERR_OUTBOX_IO';
        this.deps.logger.error({ err, rows: taken.rows, buffered: this.buffer.rows, code }, 'outbox write failed; will retry');
        throw new IocError(code, `outbox write failed: ${(err as Error).message}`, { cause: err });
      } finally {
        this.inFlush = null;
        this.flushing = null;
        this.flightSince = null;
        // Readings put back (write failed) are still waiting since then.
        if (this.buffer.rows > 0 && since !== null) this.bufferSince = Math.min(this.bufferSince ?? since, since);
      }
    })();
    return this.flushing;
  }

  /** The disk refused a write: drop the oldest tenth of the stored readings (at least 1000), counted. */
  private async makeRoom(): Promise<void> {
    const db = this.requireDb();
    const n = Math.max(1000, Math.ceil(this.counts.rows / 10));
    try {
      const res = await db.exclusive(() => db.run('DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT ?)', [n]));
      if (res.changes > 0) await this.recount(res.changes, 'diskFull');
    } catch (err) {
      this.deps.logger.error({ err, code: 'GW_ERR_OUTBOX_FULL' }, 'cannot make room in the outbox');
    }
  }

  /** Readings now in the table. */
  private count(c: Chunks): void {
    this.maxId += c.rows;
    this.counts.rows += c.rows;
    this.counts.bytes += c.bytes;
  }

  /** While writes fail or lag, memory holds the readings; past the cap the oldest go (whole appends), counted. */
  private capBuffer(): void {
    const dropped = this.buffer.dropOldest(this.deps.limits.maxBufferedRows ?? 50_000);
    if (dropped === 0) return;
    this.counts.dropped += dropped;
    this.overflow.add(dropped);
  }

  private retryTimer: NodeJS.Timeout | null = null;

  private scheduleRetry(): void {
    if (this.retryTimer || !this.db) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.flush().catch(() => undefined);
    }, 1000);
    this.retryTimer.unref();
  }

  private async recount(dropped: number, reason: string): Promise<void> {
    const db = this.requireDb();
    ({ rows: this.counts.rows, bytes: this.counts.bytes, oldestTs: this.oldestTs } = await db.exclusive(() => readingTotals(db)));
    this.counts.dropped += dropped;
    this.deps.logger.warn({ dropped, reason, totalDropped: this.counts.dropped }, 'outbox budget reached: oldest readings dropped');
    this.emit('overflow', { dropped, reason });
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
    if (dropped > 0) await this.recount(dropped, reason);
  }

  async nextBatch(maxRows: number): Promise<OutboxBatch | null> {
    const db = this.requireDb();
    return db.exclusive(async () => {
      const recovered = this.recovered.shift();
      if (recovered) {
        const rows = (await db.get<RowRun>('SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM readings WHERE id BETWEEN ? AND ?', [recovered.lo, recovered.hi]))!;
        if (rows.n === 0) {
          // Every reading of this batch was dropped by a budget: nothing to resend.
          await db.run('DELETE FROM batches WHERE seq = ?', [recovered.seq]);
          return null;
        }
        this.reserved.set(recovered.seq, recovered);
        return this.toBatch(db, recovered.seq, rows, recovered.historical === 1);
      }
      const c = { ...this.cursors };
      const threshold = this.deps.backlogThreshold ?? 20_000;
      if (c.backlog >= c.liveStart && this.maxId - c.live > threshold) {
        // A backlog has built up: everything written so far is history, whatever comes next is live.
        c.backlog = c.live;
        c.liveStart = this.maxId;
        c.live = this.maxId;
      }
      let rows: RowRun = NO_ROWS;
      let historical = false;
      if (c.backlog < c.liveStart) {
        const share = this.deps.liveShare ?? 0.5;
        const liveTurn = this.liveBatches < share * (this.liveBatches + this.backlogBatches + 1);
        if (liveTurn) rows = await this.run(db, 'id > ?', [c.live, maxRows]);
        if (rows.n === 0) {
          rows = await this.run(db, 'id > ? AND id <= ?', [c.backlog, c.liveStart, maxRows]);
          if (rows.n > 0) historical = true;
          else {
            // Backlog drained: back to one cursor.
            c.backlog = c.liveStart = c.live;
            this.liveBatches = this.backlogBatches = 0;
          }
        }
      }
      if (rows.n === 0 && !historical) rows = await this.run(db, 'id > ?', [c.live, maxRows]);
      if (rows.n === 0) {
        this.cursors = c;
        return null;
      }
      const lo = rows.lo as number;
      const hi = rows.hi as number;
      if (historical) {
        c.backlog = hi;
        this.backlogBatches++;
      } else {
        c.live = hi;
        if (c.backlog >= c.liveStart) c.backlog = c.liveStart = hi;
        else this.liveBatches++;
      }
      await db.run('BEGIN IMMEDIATE');
      let seq: number;
      try {
        seq = (await db.run('INSERT INTO batches(lo, hi, historical) VALUES (?, ?, ?)', [lo, hi, historical ? 1 : 0])).lastID;
        await db.run(`INSERT OR REPLACE INTO meta(key, value) VALUES ('cursors', ?)`, [JSON.stringify(c)]);
        await db.run('COMMIT');
      } catch (err) {
        await db.run('ROLLBACK').catch(() => undefined);
        throw err;
      }
      this.cursors = c;
      this.reserved.set(seq, { seq, lo, hi, historical: historical ? 1 : 0 });
      return this.toBatch(db, seq, rows, historical);
    });
  }

  /** The id range and count of the first `maxRows` rows matching `where` (its parameters, then the limit). */
  private async run(db: SqliteDb, where: string, params: number[]): Promise<RowRun> {
    return (await db.get<RowRun>(`SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM (SELECT id FROM readings WHERE ${where} ORDER BY id LIMIT ?)`, params)) ?? NO_ROWS;
  }

  /**
   * The batch's payload, assembled by SQLite: one flat string, not one string
   * per row plus a concatenation that MQTT.js would flatten into a second copy
   * of the whole payload (kept until PUBACK).
   */
  private async toBatch(db: SqliteDb, seq: number, rows: RowRun, historical: boolean): Promise<OutboxBatch> {
    const head = `{"v":1,"epoch":${JSON.stringify(this.epochId)},"seq":${seq},"sentAt":${this.clock()},"historical":${historical},"readings":[`;
    const row = await db.get<{ payload: string }>(`SELECT ? || group_concat(body, ',' ORDER BY id) || ']}' AS payload FROM readings WHERE id BETWEEN ? AND ?`, [head, rows.lo, rows.hi]);
    return { epoch: this.epochId, seq, count: rows.n, payload: row?.payload ?? `${head}]}`, historical };
  }

  async ack(seq: number): Promise<void> {
    const db = this.requireDb();
    const res = this.reserved.get(seq) ?? (await db.exclusive(() => db.get<Reserved>('SELECT seq, lo, hi, historical FROM batches WHERE seq = ?', [seq])));
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
    if (this.counts.rows + this.buffer.rows === 0) this.oldestTs = null;
  }

  nextEvents(max: number): Promise<GatewayEvent[]> {
    return this.events.next(this.requireDb(), max);
  }

  ackEvent(id: string): Promise<void> {
    return this.events.ack(this.requireDb(), id);
  }

  stats(): OutboxStats {
    return {
      rows: this.counts.rows + this.buffer.rows + (this.inFlush?.rows ?? 0),
      bytes: this.counts.bytes + this.buffer.bytes + (this.inFlush?.bytes ?? 0),
      oldestTs: this.oldestTs,
      appended: this.counts.appended,
      dropped: this.counts.dropped,
      acked: this.counts.acked,
      events: this.events.count,
      buffered: this.buffer.rows,
      uncommittedMs: this.uncommittedMs(),
      commitLagMaxMs: this.commitLagMax,
      historical: this.cursors.backlog < this.cursors.liveStart ? Math.max(0, this.cursors.liveStart - this.cursors.backlog) : 0,
    };
  }

  /** See {@link OutboxStats.uncommittedMs}. */
  private uncommittedMs(): number {
    const oldest = Math.min(this.bufferSince ?? Infinity, this.flightSince ?? Infinity);
    return oldest === Infinity ? 0 : Math.max(0, this.clock() - oldest);
  }

  async stop(): Promise<void> {
    if (!this.db) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.overflow.flush();
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
