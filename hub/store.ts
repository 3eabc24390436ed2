/**
 * The hub's telemetry store (SQLite, WAL, synchronous=FULL). Telemetry batches
 * are committed by a group-commit worker: every batch waiting when the worker
 * runs goes into one transaction, so many gateways' messages cost one fsync.
 * A batch is identified by (gateway, epoch, seq); a replay is recognised by
 * the primary key of `batches` inside the same transaction and stores nothing.
 * Table layout and migration: store-schema.ts; the commit itself and the
 * written-behind `latest` table: telemetry-commit.ts.
 */
import { IocError, type GatewayEvent, type GatewayStatus } from '../contract/index.js';
import { SqliteDb, type Logger } from '../lib/index.js';
import { ackAlarm, activeAlarmCounts, ALARM_SCHEMA, applyAlarmEvent, isAlarmEvent, listAlarms, type AlarmQuery, type StoredAlarm } from './alarm-store.js';
import { ensureSchema, GOOD_NUMERIC, toReading, type RawReadingRow, type StoredReading } from './store-schema.js';
import { commitTelemetryGroup, flushLatest, recoverLatest, TelemetryState, type BatchToCommit } from './telemetry-commit.js';

export type { BatchToCommit } from './telemetry-commit.js';
export type { StoredReading } from './store-schema.js';

/** A gateway as the registry knows it. */
export interface GatewayRow {
  id: string;
  online: boolean;
  firstSeen: number;
  lastSeen: number;
  status: GatewayStatus | null;
}

/** A stored event. */
export interface StoredEvent extends GatewayEvent {
  gateway: string;
  receivedAt: number;
}

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
  /** How often the newest value per point and gateway last-seen times are written behind (ms; default 1000). */
  latestFlushMs?: number;
}

/** The hub's SQLite store: registry, telemetry, events, quarantine. */
export class HubStore {
  private db: SqliteDb | null = null;
  private queue: Array<Pending & { queuedAt?: number }> = [];
  private committing = false;
  private readonly clock: () => number;
  private readonly telemetry = new TelemetryState();
  private flushTimer: NodeJS.Timeout | null = null;
  /** Commits done, batches committed, duplicates dropped: for metrics and the demo. */
  readonly counters = { commits: 0, batches: 0, readings: 0, duplicates: 0 };

  constructor(private readonly deps: HubStoreDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  async start(): Promise<void> {
    const db = await SqliteDb.open(this.deps.file);
    this.db = db;
    await db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; PRAGMA cache_size=-65536;');
    const found = await ensureSchema(db);
    if (found === 1) this.deps.logger.info({ file: this.deps.file }, 'hub store migrated to schema version 2 (series ids)');
    await db.exec(ALARM_SCHEMA);
    const recovered = await recoverLatest(db);
    if (recovered > 0) this.deps.logger.info({ readings: recovered }, 'latest values recomputed from readings committed after their last write');
    // Nobody is connected to a broker that has just started.
    await db.run('UPDATE gateways SET online = 0');
    this.flushTimer = setInterval(() => {
      this.flushPending().catch((err: unknown) => this.deps.logger.warn({ err, code: 'HUB_ERR_STORE_IO' }, 'writing latest values failed; will retry'));
    }, this.deps.latestFlushMs ?? 1000);
    this.flushTimer.unref();
  }

  async stop(): Promise<void> {
    while (this.committing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = null;
    await this.flushPending().catch((err: unknown) => this.deps.logger.warn({ err }, 'writing latest values at stop failed; recomputed at next start'));
    const db = this.db;
    this.db = null;
    if (db) {
      await db.exclusive(() => db.exec('PRAGMA wal_checkpoint(TRUNCATE)')).catch(() => undefined);
      await db.close();
    }
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
          const results = await this.commitGroup(group.map((p) => p.batch));
          if (this.deps.onCommit) this.deps.onCommit({ ms: performance.now() - (group[0]!.queuedAt ?? 0), batches: group.length, readings });
          group.forEach((p, i) => p.resolve(results[i]!));
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

  private async commitGroup(batches: BatchToCommit[]): Promise<Array<'stored' | 'duplicate'>> {
    const db = this.requireDb();
    const now = this.clock();
    const { results, readings } = await db.exclusive(() => commitTelemetryGroup(db, this.telemetry, batches, now));
    this.counters.commits++;
    this.counters.batches += results.filter((r) => r === 'stored').length;
    this.counters.duplicates += results.filter((r) => r === 'duplicate').length;
    this.counters.readings += readings;
    return results;
  }

  /** Stores an event once per (gateway, id); false when it was a replay. Alarm events update the alarm state in the same transaction. */
  async commitEvent(gateway: string, ev: GatewayEvent): Promise<boolean> {
    const db = this.requireDb();
    const alarm = isAlarmEvent(ev);
    const now = this.clock();
    const res = await (alarm ? db.transaction.bind(db) : db.exclusive.bind(db))(async () => {
      const r = await db.run('INSERT OR IGNORE INTO events(gateway, id, ts, received_at, type, severity, device, point, code, message, data) VALUES (?,?,?,?,?,?,?,?,?,?,?)', [
        gateway, ev.id, ev.ts, this.clock(), ev.type, ev.severity, ev.device ?? null, ev.point ?? null, ev.code ?? null, ev.message,
        ev.data === undefined ? null : JSON.stringify(ev.data),
      ]);
      if (alarm && r.changes === 1) await applyAlarmEvent(db, gateway, ev, now);
      return r;
    });
    return res.changes === 1;
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
    const rows = await this.requireDb().all<{ b: number; n: number; mn: number; mx: number; av: number }>(
      `SELECT CAST((ts - ?) / ? AS INTEGER) AS b, count(*) AS n, min(value) AS mn, max(value) AS mx, avg(value) AS av FROM readings
       WHERE series = (SELECT id FROM series WHERE gateway = ? AND device = ? AND point = ?) AND ts >= ? AND ts <= ? AND ${GOOD_NUMERIC}
       GROUP BY b ORDER BY b`,
      [q.from, q.bucketMs, q.gateway, q.device, q.point, q.from, q.to],
    );
    return rows.map((r) => ({ ts: q.from + r.b * q.bucketMs, count: r.n, min: r.mn, max: r.mx, avg: r.av }));
  }

  /** Keeps what failed validation, with the reason, for an operator to look at. */
  async quarantine(q: { gateway: string | null; topic: string; code: string; error: string; payload: Buffer }): Promise<void> {
    const db = this.requireDb();
    await db.exclusive(() =>
      db.run('INSERT INTO quarantine(gateway, topic, received_at, code, error, payload) VALUES (?,?,?,?,?,?)', [q.gateway, q.topic, this.clock(), q.code, q.error, q.payload.subarray(0, 256 * 1024)]),
    );
  }

  /** Records a status document or a connection change for a gateway. */
  async setGatewayState(gateway: string, change: { online?: boolean; status?: GatewayStatus }): Promise<void> {
    const db = this.requireDb();
    const now = this.clock();
    await db.exclusive(() =>
      db.run(
        `INSERT INTO gateways(id, online, first_seen, last_seen, status) VALUES (?,?,?,?,?)
         ON CONFLICT(id) DO UPDATE SET online = coalesce(?, online), last_seen = excluded.last_seen, status = coalesce(?, status)`,
        [gateway, change.online ? 1 : 0, now, now, change.status ? JSON.stringify(change.status) : null,
          change.online === undefined ? null : change.online ? 1 : 0, change.status ? JSON.stringify(change.status) : null],
      ),
    );
  }

  async listGateways(): Promise<GatewayRow[]> {
    await this.flushPending();
    const rows = await this.requireDb().all<{ id: string; online: number; first_seen: number; last_seen: number; status: string | null }>('SELECT * FROM gateways ORDER BY id');
    return rows.map((r) => ({ id: r.id, online: r.online === 1, firstSeen: r.first_seen, lastSeen: r.last_seen, status: r.status ? (JSON.parse(r.status) as GatewayStatus) : null }));
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
    return rows.map((r) => {
      const ev: StoredEvent = { v: 1, gateway: r.gateway as string, id: r.id as string, ts: r.ts as number, receivedAt: r.received_at as number, type: r.type as string, severity: r.severity as StoredEvent['severity'], message: r.message as string };
      if (r.device !== null) ev.device = r.device as string;
      if (r.point !== null) ev.point = r.point as string;
      if (r.code !== null) ev.code = r.code as string;
      if (r.data !== null) ev.data = JSON.parse(r.data as string) as Record<string, unknown>;
      return ev;
    });
  }

  async quarantined(limit = 100): Promise<Array<{ gateway: string | null; topic: string; code: string; error: string; receivedAt: number }>> {
    const rows = await this.requireDb().all<{ gateway: string | null; topic: string; code: string; error: string; received_at: number }>('SELECT gateway, topic, code, error, received_at FROM quarantine ORDER BY n DESC LIMIT ?', [limit]);
    return rows.map((r) => ({ gateway: r.gateway, topic: r.topic, code: r.code, error: r.error, receivedAt: r.received_at }));
  }

  /** Readings stored per (device, point) of a gateway, and how many of them are duplicates of (device, point, ts). */
  async readingCounts(gateway: string): Promise<{ total: number; distinct: number }> {
    const r = await this.requireDb().get<{ total: number; distinct_: number }>(
      `SELECT count(*) AS total, (SELECT count(*) FROM (SELECT DISTINCT r.series, r.ts FROM readings r JOIN series s ON s.id = r.series WHERE s.gateway = ?)) AS distinct_
       FROM readings r JOIN series s ON s.id = r.series WHERE s.gateway = ?`,
      [gateway, gateway],
    );
    return { total: r?.total ?? 0, distinct: r?.distinct_ ?? 0 };
  }
}
