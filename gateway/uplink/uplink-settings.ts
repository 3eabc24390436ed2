/**
 * The uplink's settings, counters and small helpers (topic filter matching,
 * comparing mqtt.js options), apart from the connection logic in uplink.ts.
 */
import type { IClientOptions } from 'mqtt';
import type { GatewayStatus } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { Outbox } from '../outbox/outbox.js';
import type { LookupAll } from './hub-ring.js';

/** Receives the messages of one subscription. */
export type MessageHandler = (payload: Buffer, topic: string, retained: boolean) => void;

/** Settings {@link Uplink.reconfigure} may change. Connection settings reconnect; the others apply at once. */
export type UplinkSettings = Pick<UplinkDeps, 'url' | 'username' | 'password' | 'mqttOptions' | 'keepaliveS' | 'reconnect' | 'batchSize' | 'window' | 'statusIntervalMs' | 'statusExtra'>;

/** True when MQTT topic filter `filter` matches `topic` (MQTT 3.1.1 §4.7.1: `+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

/**
 * How long a connection attempt waits for CONNACK (mqtt.js `connectTimeout`).
 * Generous on purpose: after an outage a hub verifies thousands of logins in a
 * queue; a gateway that gives up on a queued login and tries again only
 * lengthens that queue (bench:reconnect-storm).
 */
export const CONNECT_TIMEOUT_MS = 30_000;

/** Dependencies and settings of the {@link Uplink}. */
export interface UplinkDeps {
  gatewayId: string;
  /**
   * The hub: one address, a list, or comma-separated addresses (contract/hub-url.ts);
   * the uplink fails over between them and between a name's records (hub-ring.ts).
   */
  url: string | readonly string[];
  /** Resolves a hub name to all its records at each attempt; default the system resolver (tests inject one). */
  lookup?: LookupAll;
  username?: string;
  password?: string;
  logger: Logger;
  outbox: Outbox;
  version: string;
  /** Most readings per telemetry message; the batch size adapts between `minBatchSize` and this. */
  batchSize: number;
  /** Smallest adaptive batch. Default 50. */
  minBatchSize?: number;
  /** Acknowledgement round trip above which the batch size halves (ms). Default 1000. */
  targetRttMs?: number;
  /** Cap on readings sent per second (0 or absent: as fast as the link allows), so a fleet reconnecting at once does not flatten the hub. */
  maxReadingsPerSec?: number;
  /** Unacknowledged messages allowed in flight. */
  window: number;
  statusIntervalMs: number;
  /** Least time between two statuses sent for a change ({@link Uplink.statusChanged}); default 1000 ms. */
  minStatusGapMs?: number;
  keepaliveS: number;
  reconnect: { minMs: number; maxMs: number };
  /** Extra status fields (device states), read at each status publish. */
  statusExtra?: () => Partial<GatewayStatus>;
  /** Extra mqtt.js options (TLS material). */
  mqttOptions?: Partial<IClientOptions>;
  clock?: () => number;
}

/** Uplink counters. */
export interface UplinkStats {
  connected: boolean;
  /** Current adaptive batch size. */
  batchSize: number;
  /** Readings acknowledged per second over the last 10 s. */
  drainPerS: number;
  /** Why the last connection attempt or connection failed (cleared on connect). */
  lastError: string | null;
  batchesSent: number;
  batchesAcked: number;
  readingsAcked: number;
  eventsAcked: number;
  inFlight: number;
  connects: number;
  /** The hub address (`hub.url` entry) connected to now; null while not connected. */
  hub: string | null;
  /** The IP that address resolved to for this connection. */
  hubAddress: string | null;
  /** Every configured hub address, in ring order. */
  hubs: string[];
  /** Connections made to a different hub address than the one before, since start. */
  failovers: number;
}

/** Compares mqtt.js options that may hold Buffers (TLS material). */
export function sameOptions(a: Partial<IClientOptions> | undefined, b: Partial<IClientOptions> | undefined): boolean {
  const norm = (o: Partial<IClientOptions> | undefined): string => JSON.stringify(o ?? {}, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? `buf:${String((v as { data: number[] }).data)}` : v));
  return norm(a) === norm(b);
}
