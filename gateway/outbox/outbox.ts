/**
 * The outbox interface: the gateway's durable store-and-forward buffer between
 * the drivers (which append readings) and the uplink (which drains batches and
 * acknowledges them once the hub has committed them). Every implementation
 * must pass the conformance suite in `gateway/outbox/test/outbox-conformance.ts`.
 */
import type { EventEmitter } from 'node:events';
import type { GatewayEvent, Reading } from '../../contract/index.js';

/** A batch reserved for sending. Its `seq` is persisted: a resend after a crash reuses it. */
export interface OutboxBatch {
  epoch: string;
  seq: number;
  /** Number of readings in the payload. */
  count: number;
  /** Ready-to-publish JSON of a contract TelemetryBatch. */
  payload: string;
  historical: boolean;
}

/** Budgets; a reading is dropped (counted, with an event) only when one is exceeded. */
export interface OutboxLimits {
  maxRows: number;
  /** Payload bytes of waiting readings (JSON), a close proxy of the pages they use on disk. */
  maxBytes: number;
  maxAgeMs: number;
  /** Events kept at most; past it the oldest info events go first, then the oldest of any severity. */
  maxEvents?: number;
  /** Readings held in memory waiting for the disk (slow or refusing writes); past it the oldest are dropped, counted. Default 50,000. */
  maxBufferedRows?: number;
}

/** Counters and gauges for status messages and metrics. */
export interface OutboxStats {
  /** Readings waiting (durable or still in the write buffer). */
  rows: number;
  /** Approximate payload bytes waiting. */
  bytes: number;
  /** Sample time of the oldest waiting reading, or null when empty. */
  oldestTs: number | null;
  /** Readings ever appended since start. */
  appended: number;
  /** Readings dropped by a budget since start. */
  dropped: number;
  /** Readings acknowledged by the hub since start. */
  acked: number;
  /** Events waiting. */
  events: number;
  /** Readings waiting in the backlog region (sent as historical), approximate. */
  historical: number;
  /** Readings in memory, not yet written (included in `rows`). */
  buffered: number;
  /**
   * Milliseconds since the oldest reading not yet committed was appended (0
   * when everything is committed): what a process crash now would lose.
   * The crash window of docs/durability.md.
   */
  uncommittedMs?: number;
  /** Longest time from append to commit of any flush since start (ms). */
  commitLagMaxMs?: number;
}

/**
 * The outbox. `append` never blocks and never throws on a full buffer: budgets
 * drop the oldest readings, counted. Emits `'readable'` when there is something
 * new to send, `'overflow'` (`{dropped, reason}`) when a budget dropped readings
 * and `'committed'` (`{rows, lagMs}`: oldest append to commit) after each write.
 */
export interface Outbox extends EventEmitter {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Buffers readings; they are written durably within the flush interval. */
  append(readings: readonly Reading[]): void;
  /** Stores an event durably (events are sent before telemetry). */
  appendEvent(event: GatewayEvent): Promise<void>;
  /** Writes everything buffered now. */
  flush(): Promise<void>;
  /**
   * Reserves the next batch of at most `maxRows` readings, or returns a batch
   * reserved before a restart and never acknowledged. Null when nothing waits.
   */
  nextBatch(maxRows: number): Promise<OutboxBatch | null>;
  /** The hub committed batch `seq`: delete its readings. Idempotent. */
  ack(seq: number): Promise<void>;
  /** Events not yet acknowledged and not currently handed out, oldest first. */
  nextEvents(max: number): Promise<GatewayEvent[]>;
  /** The hub committed event `id`. Idempotent. */
  ackEvent(id: string): Promise<void>;
  stats(): OutboxStats;
  /** The outbox instance id (new for a fresh file). */
  readonly epoch: string;
}
