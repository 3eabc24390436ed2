/**
 * The hub's telemetry store (SQLite, WAL, synchronous=FULL). Telemetry batches
 * are committed by a group-commit worker: every batch waiting when the worker
 * runs goes into one transaction, so many gateways' messages cost one fsync.
 * A batch is identified by (gateway, epoch, seq); a replay is recognised by
 * the primary key of `batches` inside the same transaction and stores nothing.
 * Table layout and migration: store-schema.ts; the commit itself and the
 * written-behind `latest` table: telemetry-commit.ts.
 */
import { IocError, type GatewayEvent, type GatewayStatus } from '../../../contract/index.js';
import type { GatewayRow, StoredEvent } from '../model/telemetry.js';
import { SqliteDb, type Logger } from '../../../lib/index.js';
import { ackAlarm, activeAlarmCounts, ALARM_SCHEMA, applyAlarmEvent, listAlarms } from './alarm-store.js';
import { isAlarmEvent, type AlarmQuery, type StoredAlarm } from '../model/alarms.js';
import { resolveDataLimits, type DataLimitCounters, type DataLimits, type DroppedReadings } from '../../data-limits.js';
import { readRollups, RetentionStopped, runRetention, stopRetention, type RetentionResult } from './readings-retention.js';
import { mergeBucket, type BucketSums } from '../model/rollups.js';
import { ensureSchema } from './store-schema.js';
import { GOOD_NUMERIC, toReading, type RawReadingRow, type StoredReading } from '../model/readings.js';
import { commitTelemetryGroup, flushLatest, recoverLatest, TelemetryState, writeGatewayStates } from './telemetry-commit.js';
import { GatewayStateBatcher, type BatchToCommit, type GatewayStateChange } from '../model/telemetry.js';
import { releaseInSlices } from '../release-in-slices.js';

export type { BatchToCommit } from '../model/telemetry.js';
export type { StoredReading } from '../model/readings.js';
export type { DroppedReadings } from '../../data-limits.js';

interface Pending {
  batch: BatchToCommit;
  resolve: (r: 'stored' | 'duplicate') => void;
  reject: (e: unknown) => void;
}

/** Dependencies of the {@link HubStore}. */
export interface HubStoreDeps {
  file: string;
  logger: Logger;
  clock?: () => number;
  /** Most batches in one group commit (default 1024). */
  maxGroup?: number;
  /** Most readings in one group commit, unless its first batch alone has more (default 50,000: one statement, see telemetry-commit.ts). */
  maxGroupReadings?: number;
  /** Called after each group commit with its duration (ms, from the first batch queued to COMMIT) — for metrics. */
  onCommit?: (info: { ms: number; batches: number; readings: number }) => void;
  /** How often staged readings are moved into `readings` (ms; default 250). */
  mergeMs?: number;
  /** Readings in a group from which it skips the staging table (default 2,048). */
  directReadings?: number;
  /** How often the newest value per point and gateway last-seen times are written behind (ms; default 1000). */
  latestFlushMs?: number;
  /** Quarantine quota, points per gateway, retention (default: resolveDataLimits()). */
  limits?: DataLimits;
  /** Run the retention job on its timer (default true; tests call {@link HubStore.runRetention} themselves). */
  retentionTimer?: boolean;
}

/** Most staged readings moved into `readings` per transaction; also how many staged readings start a merge before the timer. */
const MERGE_ROWS = 16_384;

/**
 * SQLite's page cache, in KiB (16 MiB). It was 64 MiB: the hub's RSS then
 * climbed in every lifetime until the cache was full, on a young store for
 * longer than the soak's first 10 minutes (its RSS growth figure). Since live
 * readings are staged (schema version 3), bench:drain measures the same with
 * 16 MiB (63.8k and 56.0k readings/s)
 * as with 64 MiB (59.2k and 59.6k, interleaved); the kernel's page cache
 * holds the file either way.
 */
const CACHE_KIB = 16_384;
/** How often staged readings are moved (ms) by default. */
const MERGE_MS = 250;
/** Readings in a group from which it goes straight into `readings` (a backlog drain) by default. */
const DIRECT_READINGS = 2_048;

/** The hub's SQLite store: registry, telemetry, events, quarantine. */
export class HubStore implements DataLimitCounters {
  private db: SqliteDb | null = null;
  private queue: Array<Pending & { queuedAt?: number }> = [];
  private committing = false;
  private readonly clock: () => number;
  private readonly telemetry = new TelemetryState();
  private flushTimer: NodeJS.Timeout | null = null;
  /** Commits done, batches committed, duplicates dropped: for metrics and the demo. */
  readonly counters = { commits: 0, batches: 0, readings: 0, duplicates: 0 };
  /** Readings refused or deleted, by reason. */
  readonly dropped: DroppedReadings = { future: 0, past: 0, series_limit: 0, age: 0, size: 0, rollup_age: 0 };
  /** Quarantined payloads deleted to keep the quarantine in its quota; events and cleared alarms deleted by retention. */
  readonly retained = { quarantineDropped: 0, eventsDropped: 0, alarmsDropped: 0, runs: 0 };
  /** The limits in force. */
  readonly limits: DataLimits;
  /** Readings in `readings_staged` (telemetry-commit.ts), not yet moved into `readings`. */
  private staged = 0;
  /** The merge running (mergeStaged), joined by any caller that needs the staged readings in `readings`. */
  private merging: Promise<void> | null = null;
  private mergeTimer: NodeJS.Timeout | null = null;
  /** Staged readings moved (`merges`: transactions) — for tests and the log. */
  readonly mergeCounters = { merges: 0, readings: 0 };
  /** Quarantine rows and payload bytes per gateway ('' for none) and overall. */
  private readonly quarantineUse = new Map<string, { rows: number; bytes: number }>();
  private retentionTimer: NodeJS.Timeout | null = null;
  private eventQueue: Array<{ gateway: string; ev: GatewayEvent; resolve: (stored: boolean) => void; reject: (e: unknown) => void }> = [];
  private eventsCommitting = false;
  /** Event group commits and the events they stored (for tests and the log). */
  readonly eventCounters = { groups: 0, events: 0 };
  private retentionRun: Promise<RetentionResult | null> | null = null;
  /** Connection state and status changes, written in group commits (counters: state commits, changes, rows). */
  readonly gatewayStates = new GatewayStateBatcher((rows) => {
    const db = this.requireDb();
    return db.exclusive(() => writeGatewayStates(db, rows));
  });

  constructor(private readonly deps: HubStoreDeps) {
    this.clock = deps.clock ?? Date.now;
    this.limits = deps.limits ?? resolveDataLimits();
    this.telemetry.maxSeriesPerGateway = this.limits.maxSeriesPerGateway;
    this.telemetry.maxSeqRanges = this.limits.maxSeqRanges;
  }

  async start(): Promise<void> {
    const db = await SqliteDb.open(this.deps.file);
    this.db = db;
    await db.exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; PRAGMA cache_size=-${CACHE_KIB};`);
    const found = await ensureSchema(db);
    if (found === 1) this.deps.logger.info({ file: this.deps.file }, 'hub store migrated from schema version 1 (series ids, staged readings)');
    if (found === 2) this.deps.logger.info({ file: this.deps.file }, 'hub store migrated from schema version 2 (staged readings)');
    await db.exec(ALARM_SCHEMA);
    await db.exec('CREATE TEMP TABLE IF NOT EXISTS retire (rid INTEGER PRIMARY KEY)');
    await this.forgetRemovedRollupLevels(db);
    for (const r of await db.all<{ gateway: string | null; rows: number; bytes: number }>('SELECT gateway, count(*) AS rows, coalesce(sum(length(payload)), 0) AS bytes FROM quarantine GROUP BY gateway')) {
      this.quarantineUse.set(r.gateway ?? '', { rows: r.rows, bytes: r.bytes });
    }
    await db.exclusive(() => this.enforceQuarantineQuota(db, null));
    // Readings a crash left staged go into `readings` first: the recovery of latest values reads them there.
    this.staged = (await db.get<{ n: number }>('SELECT count(*) AS n FROM readings_staged'))?.n ?? 0;
    if (this.staged > 0) this.deps.logger.info({ readings: this.staged }, 'moving readings left staged by the last run');
    await this.mergeStaged();
    const recovered = await recoverLatest(db);
    if (recovered > 0) this.deps.logger.info({ readings: recovered }, 'latest values recomputed from readings committed after their last write');
    // Nobody is connected to a broker that has just started.
    await db.run('UPDATE gateways SET online = 0');
    this.flushTimer = setInterval(() => {
      this.flushPending().catch((err: unknown) => this.deps.logger.warn({ err, code: 'HUB_ERR_STORE_IO' }, 'writing latest values failed; will retry'));
    }, this.deps.latestFlushMs ?? 1000);
    this.flushTimer.unref();
    this.mergeTimer = setInterval(() => this.mergeInBackground(), this.deps.mergeMs ?? MERGE_MS);
    this.mergeTimer.unref();
    if (this.deps.retentionTimer !== false) {
      this.retentionTimer = setInterval(() => void this.runRetention(), this.limits.retention.intervalMs);
      this.retentionTimer.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.retentionTimer = null;
    if (this.db) stopRetention(this.db);
    await this.retentionRun;
    while (this.committing || this.queue.length > 0 || this.eventsCommitting || this.eventQueue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.gatewayStates.flush();
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = null;
    if (this.mergeTimer) clearInterval(this.mergeTimer);
    this.mergeTimer = null;
    await this.mergeStaged().catch((err: unknown) => this.deps.logger.warn({ err }, 'moving staged readings at stop failed; moved at next start'));
    await this.flushPending().catch((err: unknown) => this.deps.logger.warn({ err }, 'writing latest values at stop failed; recomputed at next start'));
    const db = this.db;
    this.db = null;
    if (db) {
      await db.exclusive(() => db.exec('PRAGMA wal_checkpoint(TRUNCATE)')).catch(() => undefined);
      await db.close();
    }
  }

  /**
   * One pass of the retention job (readings-retention.ts): also run by the
   * timer every `retention.intervalMs`. A pass already running is joined,
   * not doubled. `now` defaults to the store's clock. Resolves null when the
   * store is closed or the pass failed (logged; the next pass tries again).
   */
  runRetention(now?: number): Promise<RetentionResult | null> {
    if (this.retentionRun) return this.retentionRun;
    const db = this.db;
    if (!db) return Promise.resolve(null);
    this.retentionRun = (async () => {
      try {
        await this.mergeStaged();
        const r = await runRetention(db, this.limits, now ?? this.clock());
        this.dropped.future += r.future;
        this.dropped.age += r.age;
        this.dropped.size += r.size;
        this.dropped.rollup_age += r.rollupAge;
        this.retained.eventsDropped += r.events;
        this.retained.alarmsDropped += r.alarms;
        this.retained.runs++;
        if (r.age + r.size + r.future + r.rollupAge + r.events + r.alarms > 0) this.deps.logger.info({ ...r }, 'retention: old data rolled up and deleted');
        return r;
      } catch (err) {
        if (err instanceof RetentionStopped) this.deps.logger.info('retention pass ended early: the store is stopping');
        else if (this.db) this.deps.logger.warn({ err, code: 'HUB_ERR_STORE_IO' }, 'retention pass failed; the next one tries again');
        return null;
      } finally {
        this.retentionRun = null;
      }
    })();
    return this.retentionRun;
  }

  /** Rollup levels no longer configured are deleted once (the levels in force are kept in store_meta). */
  private async forgetRemovedRollupLevels(db: SqliteDb): Promise<void> {
    const now = JSON.stringify(this.limits.retention.rollups.map((l) => l.bucketMs));
    const was = (await db.get<{ value: string }>("SELECT value FROM store_meta WHERE key = 'rollup_levels'"))?.value;
    if (was === now) return;
    const keep = this.limits.retention.rollups.map((l) => l.bucketMs);
    const r = await db.run(`DELETE FROM rollups WHERE bucket_ms NOT IN (${keep.map(() => '?').join(',') || 'NULL'})`, keep);
    await db.run("INSERT OR REPLACE INTO store_meta(key, value) VALUES ('rollup_levels', ?)", [now]);
    if (r.changes > 0) this.deps.logger.info({ rows: r.changes, levels: keep }, 'rollups of levels no longer configured deleted');
  }

  /** Counts readings ingest refused before committing (clock window). */
  noteRefused(reason: 'future' | 'past', n: number): void {
    this.dropped[reason] += n;
  }

  /** Writes the newest values per point and gateway last-seen times committed so far (also done every second). */
  flushPending(): Promise<void> {
    const db = this.db;
    if (!db) return Promise.resolve();
    return db.exclusive(() => flushLatest(db, this.telemetry));
  }

  private requireDb(): SqliteDb {
    if (!this.db) throw new IocError('HUB_ERR_STORE_IO', 'hub store is not open');
    return this.db;
  }

  /**
   * Commits a batch durably, or recognises it as a replay. Resolves only after
   * COMMIT returned: the caller may acknowledge then, and not before.
   */
  commitBatch(batch: BatchToCommit): Promise<'stored' | 'duplicate'> {
    return new Promise((resolve, reject) => {
      if (!this.db) {
        reject(new IocError('HUB_ERR_COMMIT', 'hub store is closed'));
        return;
      }
      this.queue.push({ batch, resolve, reject, ...(this.deps.onCommit ? { queuedAt: performance.now() } : {}) });
      if (!this.committing) {
        // Gather first: start the group after this turn of the event loop, so that every
        // client whose packets arrived in the same poll phase joins the same commit.
        this.committing = true;
        setImmediate(() => void this.commitLoop());
      }
    });
  }

  private async commitLoop(): Promise<void> {
    this.committing = true;
    try {
      while (this.queue.length > 0) {
        // Bigger groups cost fewer fsyncs per message: measured at 64 publishers × 64 in flight,
        // a cap of 256 batches gave 0.53 of plain Aedes, 1024 gave 0.60. Readings are capped too,
        // so that a group of large backlog batches stays one statement of bounded size.
        const maxBatches = this.deps.maxGroup ?? 1024;
        const maxReadings = this.deps.maxGroupReadings ?? 50_000;
        let n = 0;
        let readings = 0;
        while (n < this.queue.length && n < maxBatches && (n === 0 || readings + this.queue[n]!.batch.readings.length <= maxReadings)) readings += this.queue[n++]!.batch.readings.length;
        const group = this.queue.splice(0, n);
        try {
          const results = await this.commitGroup(group.map((p) => p.batch), readings);
          if (this.deps.onCommit) this.deps.onCommit({ ms: performance.now() - (group[0]!.queuedAt ?? 0), batches: group.length, readings });
          // A slice per turn of the event loop, not up to 1,024 at once: each answer sends a PUBACK and
          // forwards the message, and Aedes' queue recursion overflowed the stack (release-in-slices.ts).
          await releaseInSlices(group, (p, i) => p.resolve(results[i]!));
        } catch (err) {
          this.deps.logger.error({ err, batches: group.length, code: 'HUB_ERR_COMMIT' }, 'telemetry commit failed; not acknowledging');
          const e = new IocError('HUB_ERR_COMMIT', `telemetry commit failed: ${(err as Error).message}`, { cause: err });
          for (const p of group) p.reject(e);
        }
      }
    } finally {
      this.committing = false;
    }
  }

  /** Commits a group of `inGroup` readings in all. */
  private async commitGroup(batches: BatchToCommit[], inGroup: number): Promise<Array<'stored' | 'duplicate'>> {
    const db = this.requireDb();
    const now = this.clock();
    // A large group (a backlog) goes straight into `readings`, after what is staged: rowids stay in commit order.
    const direct = inGroup >= (this.deps.directReadings ?? DIRECT_READINGS);
    const { results, readings, refused } = await db.exclusive(async () => {
      if (direct) while (this.staged > 0) await this.mergeChunk(db);
      const r = await commitTelemetryGroup(db, this.telemetry, batches, now, direct);
      if (!direct) this.staged += r.readings;
      return r;
    });
    if (this.staged >= MERGE_ROWS) this.mergeInBackground();
    if (refused > 0) {
      this.dropped.series_limit += refused;
      this.deps.logger.warn({ readings: refused, maxSeriesPerGateway: this.limits.maxSeriesPerGateway, code: 'HUB_ERR_POINTS_LIMIT' }, 'readings of new points refused: their gateway has as many points as the hub keeps per gateway');
    }
    this.counters.commits++;
    this.counters.batches += results.filter((r) => r === 'stored').length;
    this.counters.duplicates += results.filter((r) => r === 'duplicate').length;
    this.counters.readings += readings;
    return results;
  }

  /**
   * Moves every staged reading into `readings` (telemetry-commit.ts stages
   * live commits), a transaction of up to {@link MERGE_ROWS} readings at a
   * time so that telemetry commits queue behind one chunk at most. Called by
   * a timer, when enough is staged, and before anything reads `readings`
   * (history, retention, stop), so no reader ever misses a committed
   * reading. A merge already running is joined; it goes on until nothing is
   * staged, including readings staged while it ran.
   */
  mergeStaged(): Promise<void> {
    if (this.merging) return this.merging;
    const db = this.db;
    if (!db || this.staged === 0) return Promise.resolve();
    this.merging = (async () => {
      try {
        while (this.staged > 0 && this.db === db) await db.exclusive(() => this.mergeChunk(db));
      } finally {
        this.merging = null;
      }
    })();
    return this.merging;
  }

  /** Starts (or joins) a merge nobody waits for; a failure is logged and the next one tries again. */
  private mergeInBackground(): void {
    this.mergeStaged().catch((err: unknown) => this.deps.logger.warn({ err, code: 'HUB_ERR_STORE_IO' }, 'moving staged readings failed; will retry'));
  }

  /**
   * One merge transaction (the caller holds the connection exclusively): the
   * oldest staged readings, up to {@link MERGE_ROWS}, into `readings` and out
   * of `readings_staged`, atomically, in commit order, so that `readings`
   * looks as if they had been inserted there directly (its newest rowid is
   * the newest reading committed, which retention keeps and the recovery of
   * latest values counts from). Measured with 8,000 points: 1.4-1.7 µs of
   * CPU per reading in commit order and the same in index order.
   */
  private async mergeChunk(db: SqliteDb): Promise<void> {
    if (this.staged === 0) return;
    const all = this.staged <= MERGE_ROWS;
    const n = all ? this.staged : MERGE_ROWS;
    // All of it (the usual case) or the oldest n; the INSERT and the DELETE take the same rows in one transaction.
    const sql = all
      ? 'INSERT INTO readings(series, ts, value, flags) SELECT series, ts, value, flags FROM readings_staged ORDER BY rowid; DELETE FROM readings_staged;'
      : `INSERT INTO readings(series, ts, value, flags) SELECT series, ts, value, flags FROM readings_staged ORDER BY rowid LIMIT ${n};
         DELETE FROM readings_staged WHERE rowid IN (SELECT rowid FROM readings_staged ORDER BY rowid LIMIT ${n});`;
    try {
      await db.exec(`BEGIN IMMEDIATE; ${sql} COMMIT;`);
    } catch (err) {
      await db.exec('ROLLBACK').catch(() => undefined);
      throw err;
    }
    this.staged -= n;
    this.mergeCounters.merges++;
    this.mergeCounters.readings += n;
  }

  /** Stores an event once per (gateway, id); false when it was a replay. Alarm events update the alarm state in the same transaction. */
  commitEvent(gateway: string, ev: GatewayEvent): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (!this.db) {
        reject(new IocError('HUB_ERR_STORE_IO', 'hub store is closed'));
        return;
      }
      this.eventQueue.push({ gateway, ev, resolve, reject });
      if (!this.eventsCommitting) {
        this.eventsCommitting = true;
        setImmediate(() => void this.eventLoop());
      }
    });
  }

  /**
   * Events waiting at the same moment share one transaction (group commit,
   * as telemetry): a gateway draining a backlog of events, or one flooding
   * them (issue 13), costs one fsync per group instead of one per event, so
   * the other gateways' commits are not held behind a queue of fsyncs. In
   * arrival order, so alarm raises and clears apply as before.
   */
  private async eventLoop(): Promise<void> {
    try {
      while (this.eventQueue.length > 0) {
        const group = this.eventQueue.splice(0, 500);
        const db = this.db;
        if (!db) {
          for (const p of group) p.reject(new IocError('HUB_ERR_STORE_IO', 'hub store is closed'));
          continue;
        }
        try {
          const now = this.clock();
          const results = await db.transaction(async () => {
            const out: boolean[] = [];
            for (const { gateway, ev } of group) {
              const r = await db.run('INSERT OR IGNORE INTO events(gateway, id, ts, received_at, type, severity, device, point, code, message, data) VALUES (?,?,?,?,?,?,?,?,?,?,?)', [
                gateway, ev.id, ev.ts, now, ev.type, ev.severity, ev.device ?? null, ev.point ?? null, ev.code ?? null, ev.message,
                ev.data === undefined ? null : JSON.stringify(ev.data),
              ]);
              if (r.changes === 1 && isAlarmEvent(ev)) await applyAlarmEvent(db, gateway, ev, now);
              out.push(r.changes === 1);
            }
            return out;
          });
          this.eventCounters.groups++;
          this.eventCounters.events += group.length;
          group.forEach((p, i) => p.resolve(results[i]!));
        } catch (err) {
          for (const p of group) p.reject(err);
        }
      }
    } finally {
      this.eventsCommitting = false;
    }
  }

  /** Alarms raised by gateways, newest first (see alarm-store.ts). */
  alarms(q: AlarmQuery = {}): Promise<StoredAlarm[]> {
    return listAlarms(this.requireDb(), q);
  }

  /** An operator acknowledged alarm `id`; false when there is no such alarm. */
  ackAlarm(id: number, actor: string): Promise<boolean> {
    const db = this.requireDb();
    return db.exclusive(() => ackAlarm(db, id, actor, this.clock()));
  }

  /** Active alarms counted by gateway and severity. */
  activeAlarmCounts(): Promise<Array<{ gateway: string; severity: string; count: number }>> {
    return activeAlarmCounts(this.requireDb());
  }

  /**
   * History of one numeric (or bool, as 0/1) point in buckets of `bucketMs`
   * from `from`: min, max, average and count of the good readings in each
   * bucket; empty buckets are left out. Bucket `ts` is its start.
   */
  async downsample(q: { gateway: string; device: string; point: string; from: number; to: number; bucketMs: number }): Promise<Array<{ ts: number; count: number; min: number; max: number; avg: number }>> {
    const db = this.requireDb();
    await this.mergeStaged();
    const id = (await db.get<{ id: number }>('SELECT id FROM series WHERE gateway = ? AND device = ? AND point = ?', [q.gateway, q.device, q.point]))?.id;
    if (id === undefined) return [];
    // Raw readings not yet rolled up, plus the rollups of those that were (readings-retention.ts: never both).
    const rows = await db.all<{ b: number; n: number; mn: number; mx: number; s: number }>(
      `SELECT CAST((ts - ?) / ? AS INTEGER) AS b, count(*) AS n, min(value) AS mn, max(value) AS mx, total(value) AS s FROM readings
       WHERE series = ? AND ts >= ? AND ts <= ? AND ${GOOD_NUMERIC} GROUP BY b`,
      [q.from, q.bucketMs, id, q.from, q.to],
    );
    const buckets = new Map<number, BucketSums>();
    for (const r of rows) mergeBucket(buckets, r.b, { count: r.n, min: r.mn, max: r.mx, sum: r.s });
    await readRollups(db, this.limits, id, q, this.clock(), buckets);
    return [...buckets].sort((a, b) => a[0] - b[0]).map(([b, v]) => ({ ts: q.from + b * q.bucketMs, count: v.count, min: v.min, max: v.max, avg: v.sum / v.count }));
  }

  /** The oldest sample time raw readings are kept from (older history is in rollups only), by the retention settings. */
  rawRetainedFrom(): number {
    return this.clock() - this.limits.retention.rawMs;
  }

  /**
   * Keeps what failed validation, with the reason, for an operator to look
   * at: at most `quarantine.maxMessageBytes` of the payload, and within the
   * quota (rows and bytes per gateway and overall), the oldest rows going
   * first, counted in `retained.quarantineDropped`.
   */
  async quarantine(q: { gateway: string | null; topic: string; code: string; error: string; payload: Buffer }): Promise<void> {
    const db = this.requireDb();
    const payload = q.payload.subarray(0, this.limits.quarantine.maxMessageBytes);
    await db.exclusive(async () => {
      await db.run('INSERT INTO quarantine(gateway, topic, received_at, code, error, payload) VALUES (?,?,?,?,?,?)', [
        q.gateway, q.topic.slice(0, 256), this.clock(), q.code.slice(0, 64), q.error.slice(0, 1024), payload,
      ]);
      const key = q.gateway ?? '';
      const use = this.quarantineUse.get(key) ?? { rows: 0, bytes: 0 };
      use.rows++;
      use.bytes += payload.length;
      this.quarantineUse.set(key, use);
      await this.enforceQuarantineQuota(db, key);
    });
  }

  /** Deletes the oldest quarantine rows of `key` (a gateway, '' for none) past its quota, then overall past the total; null checks every gateway. Runs inside exclusive. */
  private async enforceQuarantineQuota(db: SqliteDb, key: string | null): Promise<void> {
    const lim = this.limits.quarantine;
    const drop = async (gateway: string | null, over: (rows: number, bytes: number) => boolean): Promise<void> => {
      for (;;) {
        const use = gateway === null ? this.quarantineTotals() : this.quarantineUse.get(gateway);
        if (!use || !over(use.rows, use.bytes)) return;
        const rows = await db.all<{ n: number; gateway: string | null; bytes: number }>(
          `SELECT n, gateway, coalesce(length(payload), 0) AS bytes FROM quarantine ${gateway === null ? '' : 'WHERE gateway IS ?'} ORDER BY n LIMIT 100`,
          gateway === null ? [] : [gateway === '' ? null : gateway],
        );
        if (rows.length === 0) return;
        let rowsLeft = use.rows;
        let bytesLeft = use.bytes;
        const gone: typeof rows = [];
        for (const r of rows) {
          if (!over(rowsLeft, bytesLeft)) break;
          gone.push(r);
          rowsLeft--;
          bytesLeft -= r.bytes;
        }
        await db.run(`DELETE FROM quarantine WHERE n IN (${gone.map(() => '?').join(',')})`, gone.map((r) => r.n));
        for (const r of gone) {
          const u = this.quarantineUse.get(r.gateway ?? '');
          if (u) {
            u.rows--;
            u.bytes -= r.bytes;
            if (u.rows <= 0) this.quarantineUse.delete(r.gateway ?? '');
          }
        }
        this.retained.quarantineDropped += gone.length;
      }
    };
    const perGateway = (rows: number, bytes: number): boolean => rows > lim.maxRowsPerGateway || bytes > lim.maxBytesPerGateway;
    for (const k of key === null ? [...this.quarantineUse.keys()] : [key]) await drop(k, perGateway);
    await drop(null, (rows, bytes) => rows > lim.maxRows || bytes > lim.maxBytes);
  }

  private quarantineTotals(): { rows: number; bytes: number } {
    let rows = 0;
    let bytes = 0;
    for (const u of this.quarantineUse.values()) {
      rows += u.rows;
      bytes += u.bytes;
    }
    return { rows, bytes };
  }

  /** Quarantine rows and payload bytes held now (for metrics and tests). */
  quarantineUsage(): { rows: number; bytes: number } {
    return this.quarantineTotals();
  }

  /**
   * Records a status document or a connection change for a gateway. Changes
   * are merged per gateway and written in one transaction per turn of the
   * event loop (group commit, {@link GatewayStateBatcher}), through the same
   * exclusive queue as the telemetry commits; resolves when that commit returned.
   */
  setGatewayState(gateway: string, change: GatewayStateChange): Promise<void> {
    try {
      this.requireDb();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.gatewayStates.set(gateway, change, this.clock());
  }

  async listGateways(): Promise<GatewayRow[]> {
    await this.gatewayStates.flush();
    await this.flushPending();
    const rows = await this.requireDb().all<{ id: string; online: number; first_seen: number; last_seen: number; status: string | null }>('SELECT * FROM gateways ORDER BY id');
    return rows.map((r) => ({ id: String(r.id), online: r.online === 1, firstSeen: Number(r.first_seen) || 0, lastSeen: Number(r.last_seen) || 0, status: readStatus(r.status) }));
  }

  async latest(filter: { gateway?: string; device?: string; point?: string; limit?: number }): Promise<StoredReading[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    for (const k of ['gateway', 'device', 'point'] as const) {
      if (filter[k] !== undefined) {
        where.push(`s.${k} = ?`);
        params.push(filter[k]);
      }
    }
    params.push(filter.limit ?? 10_000);
    await this.flushPending();
    const rows = await this.requireDb().all<RawReadingRow>(
      `SELECT s.gateway, s.device, s.point, l.ts, l.value, l.flags FROM latest l JOIN series s ON s.id = l.series
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY s.gateway, s.device, s.point LIMIT ?`,
      params,
    );
    return rows.map(toReading);
  }

  async history(q: { gateway: string; device: string; point: string; from: number; to: number; limit: number }): Promise<StoredReading[]> {
    await this.mergeStaged();
    const rows = await this.requireDb().all<RawReadingRow>(
      `SELECT s.gateway, s.device, s.point, r.ts, r.value, r.flags FROM series s JOIN readings r ON r.series = s.id
       WHERE s.gateway = ? AND s.device = ? AND s.point = ? AND r.ts >= ? AND r.ts <= ? ORDER BY r.ts LIMIT ?`,
      [q.gateway, q.device, q.point, q.from, q.to, q.limit],
    );
    return rows.map(toReading);
  }

  /** Events newest first; `type` matches a prefix (`alarm.`), `since` is inclusive (ms, event time). */
  async events(q: { gateway?: string; device?: string; type?: string; severity?: string; since?: number; limit: number }): Promise<StoredEvent[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    for (const k of ['gateway', 'device', 'severity'] as const) {
      if (q[k] !== undefined) {
        where.push(`${k} = ?`);
        params.push(q[k]);
      }
    }
    if (q.type !== undefined) {
      where.push("type LIKE ? ESCAPE '\\'");
      params.push(`${q.type.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    }
    if (q.since !== undefined) {
      where.push('ts >= ?');
      params.push(q.since);
    }
    params.push(q.limit);
    const rows = await this.requireDb().all<Record<string, unknown>>(`SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ts DESC LIMIT ?`, params);
    return rows.map(renderEventRow);
  }

  async quarantined(limit = 100): Promise<Array<{ gateway: string | null; topic: string; code: string; error: string; receivedAt: number }>> {
    const rows = await this.requireDb().all<{ gateway: string | null; topic: string; code: string; error: string; received_at: number }>('SELECT gateway, topic, code, error, received_at FROM quarantine ORDER BY n DESC LIMIT ?', [limit]);
    return rows.map((r) => ({ gateway: r.gateway, topic: r.topic, code: r.code, error: r.error, receivedAt: r.received_at }));
  }

  /** Readings stored per (device, point) of a gateway, and how many of them are duplicates of (device, point, ts). */
  async readingCounts(gateway: string): Promise<{ total: number; distinct: number }> {
    await this.mergeStaged();
    const r = await this.requireDb().get<{ total: number; distinct_: number }>(
      `SELECT count(*) AS total, (SELECT count(*) FROM (SELECT DISTINCT r.series, r.ts FROM readings r JOIN series s ON s.id = r.series WHERE s.gateway = ?)) AS distinct_
       FROM readings r JOIN series s ON s.id = r.series WHERE s.gateway = ?`,
      [gateway, gateway],
    );
    return { total: r?.total ?? 0, distinct: r?.distinct_ ?? 0 };
  }
}

const SEVERITIES = new Set(['info', 'warning', 'critical']);
const str = (v: unknown, max: number): string => (typeof v === 'string' ? v.slice(0, max) : v === null || v === undefined ? '' : String(v).slice(0, max));

/**
 * A stored event row in the API's shape, never throwing: `data` that is not
 * a flat JSON object of scalars (a row of an older version, or damaged) is
 * replaced by `{malformed: true}`, other fields are coerced to their types.
 */
export function renderEventRow(r: Record<string, unknown>): StoredEvent {
  const ev: StoredEvent = {
    v: 1, gateway: str(r.gateway, 64), id: str(r.id, 64), ts: Number.isSafeInteger(r.ts) ? (r.ts as number) : 0, receivedAt: Number.isSafeInteger(r.received_at) ? (r.received_at as number) : 0,
    type: str(r.type, 64), severity: SEVERITIES.has(r.severity as string) ? (r.severity as StoredEvent['severity']) : 'warning', message: str(r.message, 1024),
  };
  if (r.device !== null && r.device !== undefined) ev.device = str(r.device, 64);
  if (r.point !== null && r.point !== undefined) ev.point = str(r.point, 64);
  if (r.code !== null && r.code !== undefined) ev.code = str(r.code, 64);
  if (r.data !== null && r.data !== undefined) {
    let data: unknown;
    try {
      data = JSON.parse(String(r.data));
    } catch {
      data = undefined;
    }
    const flat = data !== null && typeof data === 'object' && !Array.isArray(data) && Object.values(data).every((v) => v === null || ['number', 'boolean'].includes(typeof v) || (typeof v === 'string' && v.length <= 1024));
    ev.data = flat ? (data as Record<string, unknown>) : { malformed: true };
  }
  return ev;
}

/** A stored status document, or null when it does not parse as an object (damaged or older data). */
function readStatus(text: string | null): GatewayStatus | null {
  if (!text) return null;
  try {
    const s: unknown = JSON.parse(text);
    return s !== null && typeof s === 'object' && !Array.isArray(s) ? (s as GatewayStatus) : null;
  } catch {
    return null;
  }
}
