/**
 * The hub's telemetry store on PostgreSQL: the {@link TelemetryPort} the
 * SQLite `HubStore` (hub/store/sqlite/hub-store.ts) also gives, for deployments whose state
 * lives in a database that operators back up, replicate and monitor.
 *
 * - Group commit per hub: batches waiting when the commit loop runs go to
 *   PostgreSQL as one statement (pg-commit.ts); each caller is answered only
 *   after that statement returned (COMMIT), so PUBACK follows COMMIT.
 * - Dedupe on (gateway, epoch, seq) by seq ranges per gateway epoch
 *   (`batch_seqs`, upserted under its row lock) inside that statement:
 *   exactly-once also between hub processes.
 * - `latest` and `gateways.last_seen` are updated in the same statement (not
 *   written behind as in SQLite): with several hubs on one database there is
 *   no single process whose memory could hold them, and after a crash there
 *   is nothing to recompute.
 * - Readings partitioned by day (partitions.ts); retention drops partitions.
 * - Schema versions (migrations.ts) applied at start.
 * - When PostgreSQL is unreachable every commit fails (no PUBACK: gateways
 *   keep their data), {@link health} says why, and the pool's probe notices
 *   when it is back (pg-pool.ts).
 */
import { IocError, type GatewayEvent, type GatewayStatus } from '../../../contract/index.js';
import type { Logger } from '../../../lib/index.js';
import { isAlarmEvent } from '../model/alarms.js';
import { toReading, type RawReadingRow } from '../model/readings.js';
import { releaseInSlices } from '../release-in-slices.js';
import { levelBoundary, mergeBucket, readRollupLevels, type BucketSums, type RollupSums } from '../model/rollups.js';
import type pg from 'pg';
import type { RollupLevel } from '../../data-limits.js';
import type { AlarmQuery, BatchToCommit, CommitCounters, EventQuery, GatewayRow, HistoryBucket, PointRange, StoreLimits, QuarantinedRow, RetentionSummary, StoredAlarm, StoredEvent, StoredReading, StoreHealth, TelemetryPort } from '../port.js';
import { ackAlarmPg, applyAlarmEventPg, listAlarmsPg } from './pg-alarms.js';
import { commitGroup, ESCAPED_STRING, SeriesIds } from './pg-commit.js';
import { GatewayStateBatcher, type CoalescedGatewayState, type GatewayStateChange } from '../model/telemetry.js';
import { checkVersion, migrate } from './migrations.js';
import { Partitions, type PartitionOptions } from './partitions.js';
import { isUnavailable, PgPool, type PgConnectOptions } from './pg-pool.js';

interface Pending {
  batch: BatchToCommit;
  resolve: (r: 'stored' | 'duplicate') => void;
  reject: (e: unknown) => void;
  queuedAt: number;
}

const DAY = 86_400_000;

/** The hub's data limits this store applies (a structural part of `DataLimits`, hub/data-limits.ts: the hub passes the same object to either backend). */
export interface PgStoreLimits extends StoreLimits {
  /** Raw readings removed once older than `rawMs` are first added to these rollup levels (hub/store/model/rollups.ts); none: no rollups. */
  retention: StoreLimits['retention'] & { rollups?: RollupLevel[] };
  quarantine: { maxMessageBytes: number; maxRowsPerGateway: number; maxRows: number };
  /** Points (series) one gateway may create; readings of further new points are refused and counted. */
  maxSeriesPerGateway: number;
  /** Seq ranges kept per gateway epoch (the dedupe record); past it the lowest gaps are closed. */
  maxSeqRanges: number;
  /** Epochs whose dedupe record is kept per gateway; the least recently used are deleted by retention. */
  maxEpochsPerGateway: number;
}

/** Used when none are given (tests): the defaults of hub/data-limits.ts. */
const DEFAULT_LIMITS: PgStoreLimits = {
  clock: { futureMs: 5 * 60_000, pastMs: 400 * DAY },
  quarantineEventMs: 60_000,
  quarantine: { maxMessageBytes: 16 * 1024, maxRowsPerGateway: 1000, maxRows: 20_000 },
  retention: { rawMs: 30 * DAY, intervalMs: 60_000, rollups: [{ bucketMs: 60_000, keepMs: 90 * DAY }, { bucketMs: 3_600_000, keepMs: 730 * DAY }] },
  events: { keepMs: 365 * DAY, maxPerGateway: 100_000 },
  maxSeriesPerGateway: 50_000,
  maxSeqRanges: 1000,
  maxEpochsPerGateway: 1000,
};

/** Dependencies and settings of {@link PgTelemetryStore}. */
export interface PgTelemetryStoreDeps {
  connect: PgConnectOptions;
  logger: Logger;
  clock?: () => number;
  /** Most batches in one group commit (default 1024). */
  maxGroup?: number;
  /** Most readings in one group commit, unless its first batch alone has more (default 50,000). */
  maxGroupReadings?: number;
  /**
   * Group commits in flight at once (default 2): while PostgreSQL writes one
   * group, the next one gathers and is sent on another connection, so the
   * database works while the hub prepares. Batches of one gateway in two
   * groups are independent (their seqs differ; a replay in both waits on the
   * first's row).
   */
  commitConcurrency?: number;
  /**
   * While a group commit runs, another starts only once this many batches
   * wait (default 128, or `maxGroup` if smaller); fewer wait for the running
   * one and go as one larger group. Each commit costs PostgreSQL about
   * 280 µs of CPU whatever its size (bench:hub's default load: 44 batches
   * per commit with two always allowed, 58 with one); under a heavy load
   * (64 × 64) two in flight gave 8 % more messages a second.
   */
  secondGroupMin?: number;
  onCommit?: (info: { ms: number; batches: number; readings: number }) => void;
  /** Apply migrations at start (default true); false only checks the version. */
  migrate?: boolean;
  /** Mark every gateway offline at start (default true: one hub owns the connections; false for a cluster node). */
  resetOnline?: boolean;
  /**
   * This hub's node id on a cluster (issue 16, docs/cluster.md): connection
   * state is then per node. A gateway row names the node holding its
   * connection; `online: false` from a node that does not hold it is ignored
   * (a takeover by another node); at start only the rows this node or no node
   * held are cleared; rows of dead nodes are cleared by
   * {@link PgTelemetryStore.sweepConnections}.
   */
  node?: string;
  partitions?: PartitionOptions;
  /** How often health is probed while PostgreSQL is unreachable (ms, default 1000). */
  probeMs?: number;
  limits?: PgStoreLimits;
  /**
   * Run retention and the hourly partitions-ahead job on this store's own
   * timers (default true). false when the hub runs them as cluster
   * singletons on one node at a time (hub/cluster/lease.ts, wired in
   * hub/hub.ts), and in tests that call {@link PgTelemetryStore.runRetention}.
   */
  retentionTimer?: boolean;
}

/** Deadlock or serialisation failure between two hubs: the statement did nothing and may be run again. */
const RETRYABLE = new Set(['40P01', '40001']);

/** The PostgreSQL telemetry store. */
export class PgTelemetryStore implements TelemetryPort {
  private db: PgPool | null = null;
  private queue: Pending[] = [];
  /** Group commits running now (at most `commitConcurrency`), and whether a gathering turn is scheduled. */
  private inFlight = 0;
  /** Settles when every group formed so far has been answered (groups answer in the order they were formed). */
  private answered: Promise<void> = Promise.resolve();
  private scheduled = false;
  private readonly clock: () => number;
  private readonly series = new SeriesIds();
  private partitions: Partitions | null = null;
  private aheadTimer: NodeJS.Timeout | null = null;
  readonly counters: CommitCounters = { commits: 0, batches: 0, readings: 0, duplicates: 0 };
  /** Readings refused or deleted, by reason (as the SQLite store counts them). */
  readonly dropped = { future: 0, past: 0, series_limit: 0, age: 0, size: 0, rollup_age: 0 };
  readonly retained = { quarantineDropped: 0, eventsDropped: 0, alarmsDropped: 0, runs: 0, epochsDropped: 0 };
  /** Gaps closed in dedupe records grown past `maxSeqRanges` (a gateway skipping seqs). */
  gapsClosed = 0;
  readonly limits: PgStoreLimits;
  /** Quarantine rows and payload bytes, as of the last quarantine write or retention pass (metrics read it synchronously). */
  private qUsage = { rows: 0, bytes: 0 };
  private retentionTimer: NodeJS.Timeout | null = null;
  private retentionRun: Promise<(RetentionSummary & { partitions: string[]; epochs: number }) | null> | null = null;
  /** Connection state and status changes, written in group commits (counters: state commits, changes, rows). */
  readonly gatewayStates = new GatewayStateBatcher((rows) => this.writeGatewayStates(rows));

  constructor(private readonly deps: PgTelemetryStoreDeps) {
    this.clock = deps.clock ?? Date.now;
    this.limits = deps.limits ?? DEFAULT_LIMITS;
    this.series.maxPerGateway = this.limits.maxSeriesPerGateway;
  }

  noteRefused(reason: 'future' | 'past', n: number): void {
    this.dropped[reason] += n;
  }

  /**
   * One retention pass: day partitions wholly older than `retention.rawMs`
   * are dropped (so up to a day more than that is kept), older rows of the
   * default partition and dedupe records deleted; events older than
   * `events.keepMs` and cleared alarms raised before it deleted. The good
   * numeric readings of what is dropped go into the rollups first, in the
   * same transaction; rollups past their level's keep time are deleted.
   * Dedupe records past `maxEpochsPerGateway` per gateway are deleted, least
   * recently used first (`epochs`).
   */
  runRetention(now?: number): Promise<(RetentionSummary & { partitions: string[]; epochs: number }) | null> {
    if (this.retentionRun) return this.retentionRun;
    const db = this.db;
    if (!db) return Promise.resolve(null);
    const at = now ?? this.clock();
    this.retentionRun = (async () => {
      try {
        const levels = this.limits.retention.rollups ?? [];
        const p = await this.partitions!.dropBefore(at - this.limits.retention.rawMs, (c, table, where, params) => this.rollUp(c, table, where, params, at));
        // Rollups past their level's boundary; what leaves the last level is gone for good.
        let rollupAge = 0;
        for (let i = 0; i < levels.length; i++) {
          const d = await db.query<{ n: string | null }>(
            'WITH d AS (DELETE FROM rollups WHERE bucket_ms = $1 AND ts < $2 RETURNING count) SELECT sum(count) AS n FROM d',
            [levels[i]!.bucketMs, levelBoundary({ retention: { rollups: levels } }, i, at)],
          );
          if (i === levels.length - 1) rollupAge += Number(d.rows[0]?.n ?? 0);
        }
        const ev = await db.query('DELETE FROM events WHERE ts < $1', [at - this.limits.events.keepMs]);
        // And past events.maxPerGateway per gateway, the oldest first.
        const over = await db.query(
          `DELETE FROM events e USING (
             SELECT gateway, id FROM (SELECT gateway, id, row_number() OVER (PARTITION BY gateway ORDER BY ts DESC, id DESC) AS k FROM events) x WHERE k > $1) old
           WHERE e.gateway = old.gateway AND e.id = old.id`,
          [this.limits.events.maxPerGateway],
        );
        const al = await db.query('DELETE FROM alarms WHERE cleared_at IS NOT NULL AND raised_at < $1', [at - this.limits.events.keepMs]);
        // Dedupe records past maxEpochsPerGateway per gateway, least recently used first: a gateway inventing an
        // epoch per batch must not grow batch_seqs without bound (forgetting an old epoch only lets its replay be stored again).
        const epochs = await db.query(
          `DELETE FROM batch_seqs t USING (
             SELECT gateway, epoch FROM (SELECT gateway, epoch, row_number() OVER (PARTITION BY gateway ORDER BY updated_at DESC, epoch DESC) AS k FROM batch_seqs) x WHERE k > $1) old
           WHERE t.gateway = old.gateway AND t.epoch = old.epoch`,
          [this.limits.maxEpochsPerGateway],
        );
        const r = { age: p.rows, rollupAge, events: (ev.rowCount ?? 0) + (over.rowCount ?? 0), alarms: al.rowCount ?? 0, epochs: epochs.rowCount ?? 0, partitions: p.partitions };
        this.dropped.age += r.age;
        this.dropped.rollup_age += r.rollupAge;
        this.retained.eventsDropped += r.events;
        this.retained.alarmsDropped += r.alarms;
        this.retained.epochsDropped += r.epochs;
        this.retained.runs++;
        if (r.age + r.events + r.alarms + r.epochs > 0) this.deps.logger.info(r, 'retention: old partitions dropped, old events deleted');
        return r;
      } catch (err) {
        if (this.db) this.deps.logger.warn({ err, code: 'HUB_ERR_STORE_IO' }, 'retention pass failed; the next one tries again');
        return null;
      } finally {
        this.retentionRun = null;
      }
    })();
    return this.retentionRun;
  }

  /** The pool (for the other PostgreSQL stores of this hub, and tests). */
  get pool(): PgPool {
    return this.requireDb();
  }

  async start(): Promise<void> {
    const db = new PgPool(this.deps.connect, this.deps.logger, this.deps.probeMs);
    try {
      if (this.deps.migrate ?? true) {
        const m = await migrate(db);
        if (m.applied.length > 0) this.deps.logger.info({ schema: db.schema, from: m.from, to: m.to, applied: m.applied.map((a) => a.version) }, 'PostgreSQL store migrated');
      } else if ((await checkVersion(db)) === 0) {
        throw new IocError('HUB_ERR_STORE_SCHEMA', `PostgreSQL schema '${db.schema}' at ${db.where} is empty: run 'ioc-edge hub migrate --store URL' first`);
      }
      const partitions = new Partitions(db, this.deps.logger, { ...this.deps.partitions, ...(this.deps.clock ? { clock: this.deps.clock } : {}) });
      await partitions.list();
      await partitions.ensureAhead();
      if (this.deps.node !== undefined) {
        // Connection state per node (issue 16): gateways.node, schema version 5.
        if (this.deps.resetOnline ?? true) await db.query('UPDATE gateways SET online = false, node = NULL WHERE online AND (node IS NULL OR node = $1)', [this.deps.node]);
      } else if (this.deps.resetOnline ?? true) await db.query('UPDATE gateways SET online = false WHERE online');
      this.partitions = partitions;
      await this.readQuarantineUsage(db);
    } catch (err) {
      await db.end().catch(() => undefined);
      if (isUnavailable(err)) throw new IocError('HUB_ERR_STORE_UNAVAILABLE', `PostgreSQL at ${db.where} unreachable at start: ${(err as Error).message}; start it or fix --store`, { cause: err });
      throw err;
    }
    this.db = db;
    if (this.deps.retentionTimer !== false) {
      this.aheadTimer = setInterval(() => {
        this.ensurePartitionsAhead().catch((err: unknown) => this.deps.logger.warn({ err, code: 'HUB_ERR_STORE_IO' }, 'creating partitions ahead failed; will retry'));
      }, 3_600_000);
      this.aheadTimer.unref();
      this.retentionTimer = setInterval(() => void this.runRetention(), this.limits.retention.intervalMs);
      this.retentionTimer.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.retentionTimer = null;
    await this.retentionRun;
    while (this.inFlight > 0 || this.scheduled || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.gatewayStates.flush();
    if (this.aheadTimer) clearInterval(this.aheadTimer);
    this.aheadTimer = null;
    const db = this.db;
    this.db = null;
    await db?.end();
  }

  /** Whether PostgreSQL answers (readiness, the API's 503). */
  health(): StoreHealth {
    return this.db ? this.db.health() : { ok: false, reason: 'store is not open' };
  }

  private requireDb(): PgPool {
    if (!this.db) throw new IocError('HUB_ERR_STORE_IO', 'hub store is not open');
    return this.db;
  }

  /** Reads fail fast with a clear 503-able error while the database is away. */
  private async read<T>(fn: (db: PgPool) => Promise<T>): Promise<T> {
    const db = this.requireDb();
    // While the database is known to be away, answer at once instead of after a connect timeout; the probe notices its return.
    if (!db.health().ok) throw new IocError('HUB_ERR_STORE_UNAVAILABLE', `${db.health().reason}; retry when it is back`);
    try {
      return await fn(db);
    } catch (err) {
      if (isUnavailable(err)) throw new IocError('HUB_ERR_STORE_UNAVAILABLE', `${db.health().reason ?? `PostgreSQL at ${db.where} unreachable`}; retry when it is back`, { cause: err });
      throw err;
    }
  }

  /** Telemetry is not written behind (every commit updates `latest` and `last_seen` itself); waiting gateway state changes are written. */
  async flushPending(): Promise<void> {
    await this.gatewayStates.flush();
  }

  commitBatch(batch: BatchToCommit): Promise<'stored' | 'duplicate'> {
    return new Promise((resolve, reject) => {
      if (!this.db) {
        reject(new IocError('HUB_ERR_COMMIT', 'hub store is closed'));
        return;
      }
      const h = this.db.health();
      if (!h.ok) {
        // No PUBACK for what cannot be committed: refused at once, the gateway keeps the batch and sends it again.
        reject(new IocError('HUB_ERR_COMMIT', `telemetry commit failed: ${h.reason}`));
        return;
      }
      this.queue.push({ batch, resolve, reject, queuedAt: performance.now() });
      if (!this.scheduled) {
        // Gather first: start after this turn of the event loop, so every client whose packets
        // arrived in the same poll phase joins the same group.
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  /** Starts group commits while batches wait and fewer than `commitConcurrency` run (past the first, only for `secondGroupMin` batches). */
  private pump(): void {
    const maxInFlight = this.deps.commitConcurrency ?? 2;
    const maxBatches = this.deps.maxGroup ?? 1024;
    const another = Math.min(maxBatches, this.deps.secondGroupMin ?? 128);
    while (this.queue.length > 0 && this.inFlight < maxInFlight && (this.inFlight === 0 || this.queue.length >= another)) {
      const maxReadings = this.deps.maxGroupReadings ?? 50_000;
      let n = 0;
      let readings = 0;
      while (n < this.queue.length && n < maxBatches && (n === 0 || readings + this.queue[n]!.batch.readings.length <= maxReadings)) readings += this.queue[n++]!.batch.readings.length;
      const group = this.queue.splice(0, n);
      this.inFlight++;
      // Groups are answered in the order they were formed, whichever commits first: a client's PUBLISHes
      // split over two groups (past the group caps) still get their PUBACKs in order (MQTT 3.1.1 §4.6).
      const after = this.answered;
      let turnDone!: () => void;
      this.answered = new Promise<void>((r) => (turnDone = r));
      void this.runGroup(group, readings, after).finally(() => {
        turnDone();
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async runGroup(group: Pending[], readings: number, after: Promise<void>): Promise<void> {
    try {
      const results = await this.commitWithRetry(group.map((p) => p.batch));
      this.deps.onCommit?.({ ms: performance.now() - group[0]!.queuedAt, batches: group.length, readings });
      await after;
      // A slice per turn of the event loop: a thousand answers at once overflowed the stack (release-in-slices.ts).
      await releaseInSlices(group, (p, k) => p.resolve(results[k]!));
    } catch (err) {
      await after;
      const unavailable = isUnavailable(err);
      this.deps.logger[unavailable ? 'warn' : 'error']({ err, batches: group.length, code: 'HUB_ERR_COMMIT' }, 'telemetry commit failed; not acknowledging');
      const why = unavailable ? (this.db?.health().reason ?? (err as Error).message) : (err as Error).message;
      const e = new IocError('HUB_ERR_COMMIT', `telemetry commit failed: ${why}`, { cause: err });
      for (const p of group) p.reject(e);
    }
  }

  private async commitWithRetry(batches: BatchToCommit[]): Promise<Array<'stored' | 'duplicate'>> {
    const db = this.requireDb();
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await commitGroup(db, this.series, batches, this.clock(), (lo, hi) => this.partitions!.ensureFor(lo, hi), this.limits.maxSeqRanges);
        if (r.gapsClosed > 0) {
          this.gapsClosed += r.gapsClosed;
          this.deps.logger.warn({ gaps: r.gapsClosed, maxSeqRanges: this.limits.maxSeqRanges, code: 'HUB_ERR_SEQ_GAPS' }, 'a gateway skips batch seqs: the lowest gaps of its dedupe record were closed (a batch filling one later is taken for a replay)');
        }
        this.counters.commits++;
        this.counters.batches += r.results.filter((x) => x === 'stored').length;
        this.counters.duplicates += r.results.filter((x) => x === 'duplicate').length;
        this.counters.readings += r.readings;
        if (r.refused > 0) {
          this.dropped.series_limit += r.refused;
          this.deps.logger.warn({ readings: r.refused, maxSeriesPerGateway: this.limits.maxSeriesPerGateway, code: 'HUB_ERR_POINTS_LIMIT' }, 'readings of new points refused: their gateway has as many points as the hub keeps per gateway');
        }
        return r.results;
      } catch (err) {
        if (attempt >= 3 || !RETRYABLE.has((err as { code?: string }).code ?? '')) throw err;
        this.deps.logger.info({ code: (err as { code?: string }).code, attempt }, 'group commit met another hub\'s commit (deadlock or serialisation); retrying');
      }
    }
  }

  async commitEvent(gateway: string, ev: GatewayEvent): Promise<boolean> {
    const db = this.requireDb();
    const now = this.clock();
    const insert = `INSERT INTO events(gateway, id, ts, received_at, type, severity, device, point, code, message, data)
      VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) ON CONFLICT DO NOTHING`;
    const values = [text(gateway), text(ev.id), ev.ts, now, text(ev.type), ev.severity, textOrNull(ev.device), textOrNull(ev.point), textOrNull(ev.code), text(ev.message), ev.data === undefined ? null : JSON.stringify(ev.data)];
    if (!isAlarmEvent(ev)) return ((await db.query(insert, values)).rowCount ?? 0) === 1;
    return db.transaction(async (c) => {
      const r = await c.query(insert, values);
      if (r.rowCount !== 1) return false;
      await applyAlarmEventPg(c, gateway, { ...ev, message: text(ev.message) }, now);
      return true;
    });
  }

  alarms(q: AlarmQuery = {}): Promise<StoredAlarm[]> {
    return this.read((db) => listAlarmsPg(db, q));
  }

  ackAlarm(id: number, actor: string): Promise<boolean> {
    return this.read((db) => ackAlarmPg(db, id, actor, this.clock()));
  }

  activeAlarmCounts(): Promise<Array<{ gateway: string; severity: string; count: number }>> {
    return this.read(async (db) => (await db.query<{ gateway: string; severity: string; count: number }>('SELECT gateway, severity, count(*)::int AS count FROM alarms WHERE cleared_at IS NULL GROUP BY gateway, severity')).rows);
  }

  downsample(q: PointRange & { bucketMs: number }): Promise<HistoryBucket[]> {
    return this.read(async (db) => {
      const id = (await db.query<{ id: number }>('SELECT id FROM series WHERE gateway = $1 AND device = $2 AND point = $3', [q.gateway, q.device, q.point])).rows[0]?.id;
      if (id === undefined) return [];
      // Raw readings not yet rolled up, plus the rollups of those that were (never both: hub/store/model/rollups.ts).
      const r = await db.query<RollupSums>(
        `SELECT (ts - $1) / $2 AS b, count(*) AS n, min(value) AS mn, max(value) AS mx, sum(value) AS s FROM readings
         WHERE series = $3 AND ts >= $1 AND ts <= $4 AND (flags & 3) IN (0, 1) AND (flags & 12) = 0
         GROUP BY b`,
        [q.from, q.bucketMs, id, q.to],
      );
      const buckets = new Map<number, BucketSums>();
      for (const x of r.rows) mergeBucket(buckets, Number(x.b), { count: Number(x.n), min: Number(x.mn), max: Number(x.mx), sum: Number(x.s) });
      await readRollupLevels(this.limits.retention.rollups ?? [], q, this.clock(), buckets, async (w, lo, hi) => (await db.query<RollupSums>(
        `SELECT (ts - $1) / $2 AS b, sum(count) AS n, min(min) AS mn, max(max) AS mx, sum(sum) AS s FROM rollups
         WHERE series = $3 AND bucket_ms = $4 AND ts >= $5 AND ts <= $6 GROUP BY b`,
        [q.from, q.bucketMs, id, w, lo, hi],
      )).rows);
      return [...buckets].sort((a, b) => a[0] - b[0]).map(([b, v]) => ({ ts: q.from + b * q.bucketMs, count: v.count, min: v.min, max: v.max, avg: v.sum / v.count }));
    });
  }

  /** Adds the good numeric readings of `table` matching `where` to every rollup level still keeping their bucket, inside the caller's transaction. */
  private async rollUp(c: pg.PoolClient, table: string, where: string, params: unknown[], now: number): Promise<void> {
    const levels = this.limits.retention.rollups ?? [];
    for (let i = 0; i < levels.length; i++) {
      const w = levels[i]!.bucketMs;
      const k = params.length;
      await c.query(
        `INSERT INTO rollups(series, bucket_ms, ts, count, min, max, sum)
         SELECT series, $${k + 1}::bigint, ts - ts % $${k + 1}::bigint AS b, count(*), min(value), max(value), sum(value) FROM ${table}
         WHERE (${where}) AND (flags & 3) IN (0, 1) AND (flags & 12) = 0 AND value IS NOT NULL AND ts - ts % $${k + 1}::bigint >= $${k + 2}::bigint
         GROUP BY series, b
         ON CONFLICT (series, bucket_ms, ts) DO UPDATE SET count = rollups.count + excluded.count, min = least(rollups.min, excluded.min),
           max = greatest(rollups.max, excluded.max), sum = rollups.sum + excluded.sum`,
        [...params, w, levelBoundary({ retention: { rollups: levels } }, i, now)],
      );
    }
  }

  /** Keeps a bad payload (cut to `quarantine.maxMessageBytes`); the oldest rows past the per-gateway and overall row quotas go. */
  async quarantine(q: { gateway: string | null; topic: string; code: string; error: string; payload: Buffer }): Promise<void> {
    const lim = this.limits.quarantine;
    const db = this.requireDb();
    await db.query('INSERT INTO quarantine(gateway, topic, received_at, code, error, payload) VALUES ($1,$2,$3,$4,$5,$6)', [
      textOrNull(q.gateway), text(q.topic.slice(0, 256)), this.clock(), text(q.code.slice(0, 64)), text(q.error.slice(0, 1024)), q.payload.subarray(0, lim.maxMessageBytes),
    ]);
    const a = await db.query(
      `DELETE FROM quarantine WHERE gateway IS NOT DISTINCT FROM $1 AND n <= (
         SELECT n FROM quarantine WHERE gateway IS NOT DISTINCT FROM $1 ORDER BY n DESC OFFSET $2 LIMIT 1)`,
      [q.gateway, lim.maxRowsPerGateway],
    );
    const b = await db.query('DELETE FROM quarantine WHERE n <= (SELECT n FROM quarantine ORDER BY n DESC OFFSET $1 LIMIT 1)', [lim.maxRows]);
    this.retained.quarantineDropped += (a.rowCount ?? 0) + (b.rowCount ?? 0);
    await this.readQuarantineUsage(db);
  }

  private async readQuarantineUsage(db: PgPool): Promise<void> {
    const r = await db.query<{ rows: number; bytes: number }>('SELECT count(*)::int AS rows, coalesce(sum(length(payload)), 0)::bigint AS bytes FROM quarantine');
    this.qUsage = { rows: r.rows[0]?.rows ?? 0, bytes: r.rows[0]?.bytes ?? 0 };
  }

  /** Quarantine rows and payload bytes held (for metrics). */
  quarantineUsage(): { rows: number; bytes: number } {
    return { ...this.qUsage };
  }

  /**
   * Records a status document or a connection change. Changes are merged per
   * gateway and written as one transaction per turn of the event loop
   * (group commit, {@link GatewayStateBatcher}): a connect storm is a few
   * multi-row statements, not a commit per connect. Resolves when written.
   */
  setGatewayState(gateway: string, change: GatewayStateChange): Promise<void> {
    try {
      this.requireDb();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.gatewayStates.set(gateway, change, this.clock());
  }

  /** One state commit: new gateways inserted offline, then one UPDATE … FROM unnest(…) applies every change; retried on a deadlock with another hub. */
  private async writeGatewayStates(rows: CoalescedGatewayState[]): Promise<void> {
    const db = this.requireDb();
    // Sorted: two hubs writing overlapping gateways insert them in the same order.
    const sorted = [...rows].sort((a, b) => (a.gateway < b.gateway ? -1 : a.gateway > b.gateway ? 1 : 0));
    const params: unknown[] = [sorted.map((r) => r.gateway), sorted.map((r) => r.online), sorted.map((r) => r.took), sorted.map((r) => r.at), sorted.map((r) => r.status)];
    const from = 'unnest($1::text[], $2::boolean[], $3::boolean[], $4::bigint[], $5::text[]) AS c(id, online, took, at, status)';
    const update = this.deps.node !== undefined
      ? // online: true takes the row for this node; online: false only from the node that holds it (or none), or after this group took it.
        `UPDATE gateways g SET
           online = CASE WHEN c.online IS NULL THEN g.online WHEN c.online THEN true WHEN c.took OR g.node IS NULL OR g.node = $6 THEN false ELSE g.online END,
           node = CASE WHEN c.online IS NULL THEN g.node WHEN c.online THEN $6 WHEN c.took OR g.node IS NULL OR g.node = $6 THEN NULL ELSE g.node END,
           last_seen = greatest(g.last_seen, c.at),
           status = CASE WHEN c.online = false AND NOT c.took AND g.node IS NOT NULL AND g.node <> $6 THEN g.status ELSE coalesce(c.status, g.status) END
         FROM ${from} WHERE g.id = c.id`
      : `UPDATE gateways g SET online = coalesce(c.online, g.online), last_seen = greatest(g.last_seen, c.at), status = coalesce(c.status, g.status)
         FROM ${from} WHERE g.id = c.id`;
    for (let attempt = 1; ; attempt++) {
      try {
        await db.transaction(async (c) => {
          await c.query(`INSERT INTO gateways(id, online, first_seen, last_seen) SELECT c.id, false, c.at, c.at FROM ${from} ORDER BY c.id ON CONFLICT (id) DO NOTHING`, params);
          await c.query(update, this.deps.node !== undefined ? [...params, this.deps.node] : params);
        });
        return;
      } catch (err) {
        if (attempt >= 3 || !RETRYABLE.has((err as { code?: string }).code ?? '')) throw err;
        this.deps.logger.info({ code: (err as { code?: string }).code, attempt }, 'gateway state commit met another hub\'s commit (deadlock or serialisation); retrying');
      }
    }
  }

  /**
   * Marks offline the gateways whose connection was held by a node not in
   * `liveNodes` (it died or stopped without saying so): the cluster's grace
   * period for a dead node's gateways that did not reconnect elsewhere.
   * Returns their ids. Only on a cluster node (`node` set).
   */
  async sweepConnections(liveNodes: readonly string[]): Promise<string[]> {
    if (this.deps.node === undefined) return [];
    await this.gatewayStates.flush();
    const r = await this.requireDb().query<{ id: string }>(
      'UPDATE gateways SET online = false, node = NULL WHERE online AND node IS NOT NULL AND NOT (node = ANY($1::text[])) RETURNING id',
      [[...liveNodes, this.deps.node]],
    );
    return r.rows.map((x) => x.id).sort();
  }

  async listGateways(): Promise<GatewayRow[]> {
    await this.gatewayStates.flush();
    return this.read(async (db) => {
      const r = await db.query<{ id: string; online: boolean; first_seen: number; last_seen: number; status: string | null }>('SELECT * FROM gateways ORDER BY id');
      return r.rows.map((x) => ({ id: x.id, online: x.online, firstSeen: x.first_seen, lastSeen: x.last_seen, status: x.status ? (JSON.parse(x.status) as GatewayStatus) : null }));
    });
  }

  latest(filter: { gateway?: string; device?: string; point?: string; limit?: number }): Promise<StoredReading[]> {
    return this.read(async (db) => {
      const where: string[] = [];
      const params: unknown[] = [];
      for (const k of ['gateway', 'device', 'point'] as const) if (filter[k] !== undefined) where.push(`s.${k} = $${params.push(filter[k])}`);
      const limit = `$${params.push(filter.limit ?? 10_000)}`;
      const r = await db.query<PgReadingRow>(
        `SELECT s.gateway, s.device, s.point, l.ts, l.value, l.svalue, l.flags FROM latest l JOIN series s ON s.id = l.series
         ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY s.gateway, s.device, s.point LIMIT ${limit}`,
        params,
      );
      return r.rows.map(fromPg);
    });
  }

  history(q: PointRange & { limit: number }): Promise<StoredReading[]> {
    return this.read(async (db) => {
      const r = await db.query<PgReadingRow>(
        `SELECT s.gateway, s.device, s.point, r.ts, r.value, r.svalue, r.flags FROM series s JOIN readings r ON r.series = s.id
         WHERE s.gateway = $1 AND s.device = $2 AND s.point = $3 AND r.ts >= $4 AND r.ts <= $5 ORDER BY r.ts LIMIT $6`,
        [q.gateway, q.device, q.point, q.from, q.to, q.limit],
      );
      return r.rows.map(fromPg);
    });
  }

  events(q: EventQuery): Promise<StoredEvent[]> {
    return this.read(async (db) => {
      const where: string[] = [];
      const params: unknown[] = [];
      for (const k of ['gateway', 'device', 'severity'] as const) if (q[k] !== undefined) where.push(`${k} = $${params.push(q[k])}`);
      if (q.type !== undefined) where.push(`starts_with(type, $${params.push(q.type)})`);
      if (q.since !== undefined) where.push(`ts >= $${params.push(q.since)}`);
      const limit = `$${params.push(q.limit)}`;
      const r = await db.query<Record<string, unknown>>(`SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ts DESC LIMIT ${limit}`, params);
      return r.rows.map((x) => {
        const ev: StoredEvent = { v: 1, gateway: x.gateway as string, id: x.id as string, ts: x.ts as number, receivedAt: x.received_at as number, type: x.type as string, severity: x.severity as StoredEvent['severity'], message: x.message as string };
        if (x.device !== null) ev.device = x.device as string;
        if (x.point !== null) ev.point = x.point as string;
        if (x.code !== null) ev.code = x.code as string;
        if (x.data !== null) ev.data = JSON.parse(x.data as string) as Record<string, unknown>;
        return ev;
      });
    });
  }

  quarantined(limit = 100): Promise<QuarantinedRow[]> {
    return this.read(async (db) => {
      const r = await db.query<{ gateway: string | null; topic: string; code: string; error: string; received_at: number }>('SELECT gateway, topic, code, error, received_at FROM quarantine ORDER BY n DESC LIMIT $1', [limit]);
      return r.rows.map((x) => ({ gateway: x.gateway, topic: x.topic, code: x.code, error: x.error, receivedAt: x.received_at }));
    });
  }

  readingCounts(gateway: string): Promise<{ total: number; distinct: number }> {
    return this.read(async (db) => {
      const r = await db.query<{ total: number; d: number }>(
        'SELECT count(*)::int AS total, count(DISTINCT (r.series, r.ts))::int AS d FROM readings r JOIN series s ON s.id = r.series WHERE s.gateway = $1',
        [gateway],
      );
      return { total: r.rows[0]?.total ?? 0, distinct: r.rows[0]?.d ?? 0 };
    });
  }

  /** Creates the day partitions from yesterday to `aheadDays` ahead (hourly on a timer, and at start). */
  ensurePartitionsAhead(): Promise<void> {
    return this.read(() => this.partitions!.ensureAhead());
  }

  /** Day partitions that exist (day numbers), for tests and `hub status`. */
  partitionDays(): Promise<number[]> {
    return this.read(() => this.partitions!.list());
  }
}

interface PgReadingRow extends Omit<RawReadingRow, 'value'> {
  value: number | null;
  svalue: string | null;
}

/** A PostgreSQL reading row as the API returns it (strings live in their own column). */
function fromPg(r: PgReadingRow): StoredReading {
  const value = r.svalue !== null && (r.flags & ESCAPED_STRING) !== 0 ? (JSON.parse(r.svalue) as string) : (r.svalue ?? r.value);
  return toReading({ gateway: r.gateway, device: r.device, point: r.point, ts: r.ts, flags: r.flags & ~ESCAPED_STRING, value });
}

/** Free text for a PostgreSQL text column: U+0000 (which it cannot hold) becomes U+FFFD. */
const text = (s: string): string => (s.includes('\u0000') ? s.replace(/\u0000/g, '\uFFFD') : s);
const textOrNull = (s: string | undefined | null): string | null => (s === undefined || s === null ? null : text(s));
