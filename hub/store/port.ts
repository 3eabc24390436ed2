/**
 * The hub's storage port for the telemetry path: what ingest, the broker, the
 * API, metrics and the gateway view need of the durable store, and nothing of
 * how it is kept. Two backends satisfy it:
 *
 * - SQLite (`hub/store/sqlite/hub-store.ts`, `HubStore`): one process, files under the data
 *   directory; the default;
 * - PostgreSQL (`hub/store/postgres/`, `PgTelemetryStore`): for a city's
 *   operations centre whose database is backed up, replicated and monitored.
 *
 * The composition root (`hub/hub.ts`) chooses one; services see only these
 * interfaces. Both backends run one conformance suite
 * (`hub/store/test/store-conformance.ts`).
 *
 * Guarantees every implementation gives:
 * - {@link TelemetryPort.commitBatch} resolves only after the batch is durably
 *   committed (the caller may PUBACK then, and not before), and a batch is
 *   stored at most once per (gateway, epoch, seq) — also when two hub
 *   processes commit the same batch at the same moment;
 * - a failed commit rejects with `HUB_ERR_COMMIT` and leaves nothing behind;
 * - reads see every commit that resolved before them (written-behind state is
 *   flushed before it is read).
 */
import type { GatewayEvent, GatewayStatus } from '../../contract/index.js';
import type { AlarmQuery, StoredAlarm } from './model/alarms.js';
import type { StoredReading } from './model/readings.js';
import type { BatchToCommit } from './model/telemetry.js';
import type { GatewayRow, StoredEvent } from './model/telemetry.js';

export type { AlarmQuery, BatchToCommit, GatewayRow, StoredAlarm, StoredEvent, StoredReading };

/** Counters of the commit path (for metrics and the demo). */
export interface CommitCounters {
  commits: number;
  batches: number;
  readings: number;
  duplicates: number;
}

/** A quarantined payload as listed (the payload bytes are kept, not listed). */
export interface QuarantinedRow {
  gateway: string | null;
  topic: string;
  code: string;
  error: string;
  receivedAt: number;
}

/** One bucket of a downsampled history. */
export interface HistoryBucket {
  /** Bucket start (ms). */
  ts: number;
  count: number;
  min: number;
  max: number;
  avg: number;
}

/** History query of one point: `from` and `to` inclusive (ms). */
export interface PointRange {
  gateway: string;
  device: string;
  point: string;
  from: number;
  to: number;
}

/** Event query: `type` is a prefix (`alarm.`), `since` inclusive (ms, event time). */
export interface EventQuery {
  gateway?: string;
  device?: string;
  type?: string;
  severity?: string;
  since?: number;
  limit: number;
}

/** The limits ingest and the retention job read from the store (part of the hub's data limits, `hub/data-limits.ts`). */
export interface StoreLimits {
  /** How far ahead of / behind the hub's clock a reading or event may be stamped (ms; pastMs 0 = no lower bound). */
  clock: { futureMs: number; pastMs: number };
  /** At most one `ingest.quarantined` event per gateway in this window (ms). */
  quarantineEventMs: number;
  /** Raw readings are removed once older than `rawMs`. */
  retention: { rawMs: number; intervalMs: number };
  /** Events are removed once older than `keepMs` (event time). */
  events: { keepMs: number; maxPerGateway: number };
}

/** What one retention pass removed (backends may report more). */
export interface RetentionSummary {
  /** Raw readings removed for their age. */
  age: number;
  /** Events removed. */
  events: number;
}

/** Readings refused or deleted, by reason (`ioc_edge_hub_readings_dropped_total{reason}`; see HubStore). */
export interface DroppedCounters {
  future: number;
  past: number;
  series_limit: number;
  age: number;
  size: number;
  rollup_age: number;
}

/** What the store deleted to stay in its budgets. */
export interface RetainedCounters {
  quarantineDropped: number;
  eventsDropped: number;
  alarmsDropped: number;
  runs: number;
}

/** Telemetry, events, alarms, quarantine and the gateways' connection state. */
export interface TelemetryPort {
  readonly counters: CommitCounters;
  readonly limits: StoreLimits;
  readonly dropped: DroppedCounters;
  readonly retained: RetainedCounters;
  /** Quarantine rows and payload bytes held now (read synchronously by metrics). */
  quarantineUsage(): { rows: number; bytes: number };
  start(): Promise<void>;
  stop(): Promise<void>;

  /** Commits a batch durably or recognises it as a replay; resolves only after COMMIT. Rejects with `HUB_ERR_COMMIT`. */
  commitBatch(batch: BatchToCommit): Promise<'stored' | 'duplicate'>;
  /** Counts readings ingest refused before committing (clock window), for metrics. */
  noteRefused(reason: 'future' | 'past', n: number): void;
  /** One retention pass now (also run by the store's own timer); null when the store is closed or the pass failed. */
  runRetention(now?: number): Promise<RetentionSummary | null>;
  /** Writes what is written behind (newest values, last-seen times) now. */
  flushPending(): Promise<void>;
  /** Stores an event once per (gateway, id); false for a replay. Alarm events update the alarm state atomically with it. */
  commitEvent(gateway: string, ev: GatewayEvent): Promise<boolean>;
  /** Keeps a payload that failed validation, with the reason. */
  quarantine(q: { gateway: string | null; topic: string; code: string; error: string; payload: Buffer }): Promise<void>;
  /** Records a status document or a connection change of a gateway. */
  setGatewayState(gateway: string, change: { online?: boolean; status?: GatewayStatus }): Promise<void>;

  listGateways(): Promise<GatewayRow[]>;
  latest(filter: { gateway?: string; device?: string; point?: string; limit?: number }): Promise<StoredReading[]>;
  history(q: PointRange & { limit: number }): Promise<StoredReading[]>;
  downsample(q: PointRange & { bucketMs: number }): Promise<HistoryBucket[]>;
  events(q: EventQuery): Promise<StoredEvent[]>;
  quarantined(limit?: number): Promise<QuarantinedRow[]>;
  alarms(q?: AlarmQuery): Promise<StoredAlarm[]>;
  /** An operator acknowledged alarm `id`; false when there is no such alarm. */
  ackAlarm(id: number, actor: string): Promise<boolean>;
  activeAlarmCounts(): Promise<Array<{ gateway: string; severity: string; count: number }>>;
  /** Readings stored for a gateway, and how many distinct (series, ts) they hold (a test of exactly-once). */
  readingCounts(gateway: string): Promise<{ total: number; distinct: number }>;
}

/** The backend's health, for readiness and the API's 503. */
export interface StoreHealth {
  ok: boolean;
  /** Why not, for people (`PostgreSQL at 127.0.0.1:5432 unreachable: connect ECONNREFUSED`). */
  reason?: string;
}

/** Implemented by backends that can lose their database while running (PostgreSQL). */
export interface HealthReporting {
  health(): StoreHealth;
}

/** True when `s` reports its health. */
export function reportsHealth(s: object): s is HealthReporting {
  return typeof (s as Partial<HealthReporting>).health === 'function';
}
