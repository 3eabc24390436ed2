/**
 * The hub's limits on stored data (issue 13): how far from the hub's clock a
 * reading or event may be stamped, how much the quarantine may hold, how
 * many points one gateway may create, and how long readings, rollups and
 * events are kept. One frozen object built once from the hub options
 * ({@link resolveDataLimits}); the store, ingest and the retention job read
 * it. Every limit, its default and its `hub run` flag: docs/security.md
 * ("Data limits").
 */
import { IocError } from '../contract/index.js';

const DAY = 86_400_000;

/** One rollup level: min/max/sum/count of good numeric readings per `bucketMs`, kept `keepMs`. */
export interface RollupLevel {
  bucketMs: number;
  keepMs: number;
}

/** Limits on what the hub stores. All durations in ms, sizes in bytes; 0 turns a size cap off where noted. */
export interface DataLimits {
  /** Timestamps accepted from gateways, relative to the hub's clock. */
  clock: {
    /** A reading or event stamped more than this ahead of the hub's clock is refused (default 5 min). */
    futureMs: number;
    /**
     * A reading or event older than this is refused (default 0: no lower
     * bound). A backlog drained after a long outage is legitimate, however
     * old; an ancient timestamp pins nothing (`latest` keeps the newest) and
     * raw retention rolls it up at its next pass.
     */
    pastMs: number;
  };
  /** Quarantine of payloads that failed validation. */
  quarantine: {
    /** Bytes of one bad payload kept (the rest is cut; default 16 KiB). */
    maxMessageBytes: number;
    /** Rows and payload bytes kept per gateway; the oldest go first (defaults 1,000 rows, 4 MiB). */
    maxRowsPerGateway: number;
    maxBytesPerGateway: number;
    /** Rows and payload bytes kept overall (defaults 20,000 rows, 64 MiB). */
    maxRows: number;
    maxBytes: number;
    /** Payloads kept per gateway per second, in bursts of twice that; the rest are counted as dropped, not written (default 10). */
    perSecond: number;
  };
  /** Readings and their rollups. */
  retention: {
    /** Raw readings are rolled up and deleted once older than this (default 30 days). */
    rawMs: number;
    /** Rollup levels, finest first; each bucket width divides the next, each kept longer than the one before (default 1 min for 90 days, 1 h for 730 days). */
    rollups: RollupLevel[];
    /** Once the store's live pages pass this, the oldest raw readings are rolled up and deleted before their age (default 0: no size cap). */
    maxBytes: number;
    /** How often the retention job runs (default 60 s). */
    intervalMs: number;
    /**
     * Readings rolled up and deleted per transaction: bounds how long a commit
     * may wait behind the job (default 1,000; bench:retention on a loaded
     * 2-core machine: 5,000 → commit p50 71 ms during a pass, 1,000 → 13 ms
     * at 38k readings/s, 500 → 11 ms at 30k/s).
     */
    chunkRows: number;
  };
  /** Gateway events (alarm history is kept with its alarm). */
  events: {
    /** Events older than this (event time) are deleted (default 365 days). */
    keepMs: number;
    /** Events kept per gateway, oldest deleted first (default 100,000). */
    maxPerGateway: number;
  };
  /** Points (device, point names) one gateway may create; readings of further new points are refused and counted (default 50,000). */
  maxSeriesPerGateway: number;
  /** At most one `ingest.quarantined` event per gateway in this window; the rest are counted in the next one (default 60 s). */
  quarantineEventMs: number;
  /** Seq ranges kept per gateway epoch (the dedupe record); past it the lowest gaps are closed (default 1,000). */
  maxSeqRanges: number;
  /** Epochs whose dedupe record is kept per gateway; the least recently used are deleted by retention (default 1,000). */
  maxEpochsPerGateway: number;
}

/** Partial limits as given in the hub options. */
export type DataLimitOptions = {
  [K in keyof DataLimits]?: DataLimits[K] extends object ? (DataLimits[K] extends unknown[] ? DataLimits[K] : Partial<DataLimits[K]>) : DataLimits[K];
};

/** The defaults. */
export const DEFAULT_DATA_LIMITS: DataLimits = deepFreeze({
  clock: { futureMs: 5 * 60_000, pastMs: 0 },
  quarantine: { maxMessageBytes: 16 * 1024, maxRowsPerGateway: 1000, maxBytesPerGateway: 4 * 1024 * 1024, maxRows: 20_000, maxBytes: 64 * 1024 * 1024, perSecond: 10 },
  retention: { rawMs: 30 * DAY, rollups: [{ bucketMs: 60_000, keepMs: 90 * DAY }, { bucketMs: 3_600_000, keepMs: 730 * DAY }], maxBytes: 0, intervalMs: 60_000, chunkRows: 1000 },
  events: { keepMs: 365 * DAY, maxPerGateway: 100_000 },
  maxSeriesPerGateway: 50_000,
  quarantineEventMs: 60_000,
  maxSeqRanges: 1000,
  maxEpochsPerGateway: 1000,
});

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function bad(name: string, value: unknown, want: string): IocError {
  return new IocError('CONFIG_ERR_INVALID', `data limit ${name} is ${JSON.stringify(value) ?? String(value)}: it must be ${want}`);
}

/**
 * Merges `opts` over the defaults and checks every value; throws
 * CONFIG_ERR_INVALID naming the limit and the value. The result is frozen.
 */
export function resolveDataLimits(opts: DataLimitOptions = {}): DataLimits {
  const d = DEFAULT_DATA_LIMITS;
  const out: DataLimits = {
    clock: { ...d.clock, ...opts.clock },
    quarantine: { ...d.quarantine, ...opts.quarantine },
    retention: { ...d.retention, ...opts.retention, rollups: (opts.retention?.rollups ?? d.retention.rollups).map((r) => ({ ...r })) },
    events: { ...d.events, ...opts.events },
    maxSeriesPerGateway: opts.maxSeriesPerGateway ?? d.maxSeriesPerGateway,
    quarantineEventMs: opts.quarantineEventMs ?? d.quarantineEventMs,
    maxSeqRanges: opts.maxSeqRanges ?? d.maxSeqRanges,
    maxEpochsPerGateway: opts.maxEpochsPerGateway ?? d.maxEpochsPerGateway,
  };
  const int = (name: string, v: number, min: number): void => {
    if (!Number.isSafeInteger(v) || v < min) throw bad(name, v, `a whole number ≥ ${min}`);
  };
  int('clock.futureMs', out.clock.futureMs, 0);
  int('clock.pastMs', out.clock.pastMs, 0);
  for (const k of ['maxMessageBytes', 'maxRowsPerGateway', 'maxBytesPerGateway', 'maxRows', 'maxBytes', 'perSecond'] as const) int(`quarantine.${k}`, out.quarantine[k], 1);
  int('retention.rawMs', out.retention.rawMs, 60_000);
  int('retention.maxBytes', out.retention.maxBytes, 0);
  int('retention.intervalMs', out.retention.intervalMs, 100);
  int('retention.chunkRows', out.retention.chunkRows, 1);
  int('events.keepMs', out.events.keepMs, 60_000);
  int('events.maxPerGateway', out.events.maxPerGateway, 1);
  int('maxSeriesPerGateway', out.maxSeriesPerGateway, 1);
  int('quarantineEventMs', out.quarantineEventMs, 0);
  int('maxSeqRanges', out.maxSeqRanges, 1);
  int('maxEpochsPerGateway', out.maxEpochsPerGateway, 1);
  const levels = out.retention.rollups;
  if (levels.length > 4) throw bad('retention.rollups', levels.length, 'at most 4 levels');
  levels.forEach((l, i) => {
    int(`retention.rollups[${i}].bucketMs`, l.bucketMs, 1000);
    int(`retention.rollups[${i}].keepMs`, l.keepMs, 0);
    const prev = levels[i - 1];
    if (prev && (l.bucketMs <= prev.bucketMs || l.bucketMs % prev.bucketMs !== 0)) throw bad(`retention.rollups[${i}].bucketMs`, l.bucketMs, `a multiple of the previous level's ${prev.bucketMs} ms`);
    if (prev && l.keepMs < prev.keepMs) throw bad(`retention.rollups[${i}].keepMs`, l.keepMs, `at least the previous level's ${prev.keepMs} ms`);
    if (l.keepMs < out.retention.rawMs) throw bad(`retention.rollups[${i}].keepMs`, l.keepMs, `at least retention.rawMs (${out.retention.rawMs} ms): rollups hold what raw retention deleted`);
  });
  return deepFreeze(out);
}

/**
 * Parses a rollup list like `1m:90d,1h:730d` (bucket width : kept for) with
 * `parseDuration` (seconds); throws CONFIG_ERR_INVALID naming the part.
 */
export function parseRollups(s: string, parseDuration: (s: string) => number): RollupLevel[] {
  if (s.trim() === '' || s.trim() === 'none') return [];
  return s.split(',').map((part) => {
    const [w, k] = part.split(':');
    const bucket = parseDuration(w ?? '');
    const keep = parseDuration(k ?? '');
    if (!Number.isFinite(bucket) || !Number.isFinite(keep) || k === undefined) throw new IocError('CONFIG_ERR_INVALID', `rollup level '${part}' is not WIDTH:KEEP (for example 1m:90d)`);
    return { bucketMs: bucket * 1000, keepMs: keep * 1000 };
  });
}

/** Readings a store refused or deleted, by reason (`ioc_edge_hub_readings_dropped_total{reason}`). */
export interface DroppedReadings {
  /** Stamped further ahead of the hub's clock than the skew allowance (refused at ingest, or deleted if stored before). */
  future: number;
  /** Stamped further back than the clock window allows (refused at ingest). */
  past: number;
  /** A new point of a gateway already at its points cap (refused). */
  series_limit: number;
  /** Raw readings rolled up and deleted for their age. */
  age: number;
  /** Raw readings rolled up and deleted early for the size cap. */
  size: number;
  /** Readings that left the last rollup level. */
  rollup_age: number;
}

/** Counters a store keeps about its data limits (for metrics); both backends should have them. */
export interface DataLimitCounters {
  readonly dropped: DroppedReadings;
  /** Quarantine rows deleted for the quota; events and cleared alarms deleted by retention; retention passes. */
  readonly retained: { quarantineDropped: number; eventsDropped: number; alarmsDropped: number; runs: number };
  /** Quarantine rows and payload bytes held now. */
  quarantineUsage(): { rows: number; bytes: number };
}

/** True when a store keeps {@link DataLimitCounters}. */
export function countsDataLimits(s: object): s is DataLimitCounters {
  const c = s as Partial<DataLimitCounters>;
  return typeof c.dropped === 'object' && typeof c.retained === 'object' && typeof c.quarantineUsage === 'function';
}

/** `hub run` flags that set data limits (docs/security.md "Data limits"). */
export interface DataLimitFlags {
  /** `--readings-keep DURATION`: raw readings kept (retention.rawMs). */
  readingsKeep?: string;
  /** `--rollups LIST`: `WIDTH:KEEP,…` or `none`. */
  rollups?: string;
  /** `--readings-max-bytes N[K|M|G]`: size cap of the store (0 = none). */
  readingsMaxBytes?: string;
  /** `--clock-skew DURATION`: how far ahead of the hub's clock a timestamp may be. */
  clockSkew?: string;
  /** `--data-limit NAME=VALUE` (repeatable): any other limit by its dotted name; a value of a `…Ms` limit may be a duration. */
  other?: string[];
}

/**
 * Builds hub options from `hub run` flags; `parseDuration` gives seconds
 * (NaN when malformed). Throws CONFIG_ERR_INVALID naming the flag and value;
 * the result is checked with {@link resolveDataLimits}.
 */
export function dataLimitsFromFlags(f: DataLimitFlags, parseDuration: (s: string) => number): DataLimitOptions {
  const ms = (flag: string, s: string): number => {
    const sec = parseDuration(s);
    if (!Number.isFinite(sec)) throw new IocError('CONFIG_ERR_INVALID', `${flag} '${s}' is not a duration (for example 90s, 5m, 12h, 30d)`);
    return sec * 1000;
  };
  const bytes = (flag: string, s: string): number => {
    const m = /^(\d+)\s*([KMG]?)i?B?$/i.exec(s.trim());
    if (!m) throw new IocError('CONFIG_ERR_INVALID', `${flag} '${s}' is not a size (bytes, or with K, M, G)`);
    return Number(m[1]) * 1024 ** ['', 'K', 'M', 'G'].indexOf(m[2]!.toUpperCase());
  };
  const o: { clock?: Record<string, number>; quarantine?: Record<string, number>; retention?: Record<string, unknown>; events?: Record<string, number>; [k: string]: unknown } = {};
  const set = (pathName: string, value: unknown): void => {
    const [a, b, extra] = pathName.split('.');
    const groups = ['clock', 'quarantine', 'retention', 'events'];
    const top = ['maxSeriesPerGateway', 'quarantineEventMs', 'maxSeqRanges', 'maxEpochsPerGateway'];
    const group = DEFAULT_DATA_LIMITS[a as keyof DataLimits] as unknown as Record<string, unknown> | undefined;
    if (extra !== undefined || (b === undefined ? !top.includes(a!) : !groups.includes(a!) || group?.[b] === undefined || b === 'rollups')) {
      throw new IocError('CONFIG_ERR_INVALID', `--data-limit '${pathName}' is not a data limit; known: ${[...top, ...groups.flatMap((g) => Object.keys(DEFAULT_DATA_LIMITS[g as keyof DataLimits] as object).filter((k) => k !== 'rollups').map((k) => `${g}.${k}`))].join(', ')}`);
    }
    if (b === undefined) o[a!] = value;
    else ((o[a!] ??= {}) as Record<string, unknown>)[b] = value;
  };
  if (f.readingsKeep !== undefined) set('retention.rawMs', ms('--readings-keep', f.readingsKeep));
  if (f.readingsMaxBytes !== undefined) set('retention.maxBytes', bytes('--readings-max-bytes', f.readingsMaxBytes));
  if (f.clockSkew !== undefined) set('clock.futureMs', ms('--clock-skew', f.clockSkew));
  for (const kv of f.other ?? []) {
    const i = kv.indexOf('=');
    if (i < 1) throw new IocError('CONFIG_ERR_INVALID', `--data-limit '${kv}' is not NAME=VALUE`);
    const name = kv.slice(0, i);
    const raw = kv.slice(i + 1);
    const value = name.endsWith('Ms') && !/^\d+$/.test(raw) ? ms(`--data-limit ${name}`, raw) : /Bytes$/.test(name) ? bytes(`--data-limit ${name}`, raw) : Number(raw);
    if (!Number.isSafeInteger(value)) throw new IocError('CONFIG_ERR_INVALID', `--data-limit ${name}: '${raw}' is not a whole number`);
    set(name, value);
  }
  if (f.rollups !== undefined) (o.retention ??= {}).rollups = parseRollups(f.rollups, parseDuration);
  const out = o as DataLimitOptions;
  resolveDataLimits(out); // throws naming the limit
  return out;
}
