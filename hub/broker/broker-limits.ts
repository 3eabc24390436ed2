/**
 * The broker's per-client bounds (DESIGN.md: "every per-client resource has a
 * bound … a client that exceeds one is refused or disconnected; the others
 * never notice"). One settings object with defaults, read by the broker
 * (hub/broker.ts), its bounded persistence (bounded-persistence.ts) and the
 * subscription book (subscription-book.ts). docs/security.md lists each limit
 * with its default and how to change it.
 */

/** Roles the subscription bound distinguishes. */
export type LimitRole = 'gateway' | 'consumer' | 'service' | 'integration' | 'claim' | 'open';

/** Per-client bounds of the MQTT broker. */
export interface BrokerLimits {
  /**
   * Topic filters one session may hold, by role. A gateway subscribes to a
   * fixed set (config/desired, cmd/+, fw/offer, fw/cancel, fw/chunk); the
   * others are bounded by one configurable figure. Filters past the bound are
   * refused with SUBACK 0x80 (MQTT 3.1.1 §3.9.3) and logged once per client.
   * The bound also caps the filters one SUBSCRIBE can add.
   */
  maxSubscriptions: { gateway: number; other: number };
  /** Largest retained payload, in bytes; a larger retained PUBLISH is delivered but not retained. */
  maxRetainedBytes: number;
  /**
   * Retained topics one client may hold outside the contract's namespace
   * (integration accounts, an open hub). Inside `ioc/v1/…` only the topics the
   * contract retains (status, config/desired) ever are: one per gateway.
   */
  maxRetainedPerClient: number;
  /** QoS 1/2 messages kept for one persistent session (offline queue); the oldest are dropped and counted. */
  maxQueuedPerSession: number;
  /**
   * Payload bytes kept for one persistent session's queue; past it the oldest are
   * dropped and counted. Never more than half of `maxOutgoingBytes` (brokerLimits()
   * clamps it): Aedes writes a returning session's whole queue at once, and a
   * backlog past the outgoing bound would disconnect a client that does read.
   */
  maxQueuedBytesPerSession: number;
  /** Bytes waiting to be written to one client; past it the client is disconnected (it is not reading). */
  maxOutgoingBytes: number;
  /** Connections at once per consumer/service/integration account (client ids `name` or `name:suffix`). */
  maxConnectionsPerAccount: number;
  /** Longest client id accepted, in characters (MQTT 3.1.1 sets no bound; 3.1 said 23). */
  maxClientIdLength: number;
  /** Inbound QoS 2 messages awaiting PUBREL per client (Aedes `maxInflightInbound`). */
  maxInflightInbound: number;
  /**
   * Connections from one source address that have not completed their CONNECT
   * (no CONNACK 0 yet): bounds a slow-loris of idle sockets. Generous, because a
   * whole fleet behind one NAT reconnects at once after a hub restart.
   */
  maxPendingPerSource: number;
  /**
   * MQTT login checks at once. Each is an identity read (a few hundred µs on
   * libuv's 4 threads, which the SQLite commits PUBACKs wait for also use) and
   * a SHA-256; 2 slots bounded a 10,000-gateway return to ~1,500 logins/s
   * (bench:reconnect-storm: 0.7 s waiting for a slot per login), 8 let the
   * main thread be the limit. A deployment that chose scrypt hashes
   * (`auth.scrypt`) should set 2: each scrypt holds a thread for 1.5–2 ms.
   */
  maxConcurrentLogins: number;
  /**
   * The MQTT listener's accept queue (listen(2) backlog; Linux caps it at
   * net.core.somaxconn). Node's default of 511 overflows within a quarter of a
   * second when a fleet returns at 2,000–3,000 connects/s: the kernel drops the
   * SYNs and each gateway waits out TCP's SYN retransmits (1, 3, 7, 15, 31 s),
   * some past their CONNACK timeout (bench:reconnect-storm: 81,000 listen
   * overflows, ~3 % of 10,000 gateways back only after 30 s).
   */
  listenBacklog: number;
  /** TCP keep-alive probe delay, ms: a peer that vanished (keepalive 0 in CONNECT, half-open TCP) is found by the OS. */
  tcpKeepAliveMs: number;
  /**
   * Sustained PUBLISHes per second per connection (token bucket refill,
   * publish-rate.ts). Generous for a gateway: its uplink keeps a window of 8
   * batches in flight, tens to hundreds of messages a second even while it
   * drains a backlog; bench:hub's synthetic publishers reach ~5,500 each.
   * Past it a client's messages are held (PUBACK later, its socket not read
   * meanwhile), so one client gets at most about a fifth of what the broker
   * carries here (~53k QoS 0 messages/s).
   */
  publishRate: number;
  /** PUBLISHes one connection may send at once above the rate (bucket size). */
  publishBurst: number;
  /** Messages held for the rate at once, past which the client is disconnected (a flood, not a burst). */
  publishMaxHeld: number;
}

/** Defaults: generous for real use, small against abuse. */
export const DEFAULT_BROKER_LIMITS: BrokerLimits = {
  maxSubscriptions: { gateway: 16, other: 256 },
  maxRetainedBytes: 64 * 1024,
  maxRetainedPerClient: 100,
  maxQueuedPerSession: 10_000,
  maxQueuedBytesPerSession: 4 * 1024 * 1024,
  maxOutgoingBytes: 8 * 1024 * 1024,
  maxConnectionsPerAccount: 64,
  maxClientIdLength: 128,
  maxInflightInbound: 100,
  tcpKeepAliveMs: 60_000,
  maxConcurrentLogins: 8,
  listenBacklog: 4096,
  maxPendingPerSource: 1024,
  publishRate: 10_000,
  publishBurst: 20_000,
  publishMaxHeld: 500,
};

/** Partial settings over the defaults (nested maxSubscriptions merged too). */
export function brokerLimits(partial: BrokerLimitSettings = {}): BrokerLimits {
  const l = { ...DEFAULT_BROKER_LIMITS, ...partial, maxSubscriptions: { ...DEFAULT_BROKER_LIMITS.maxSubscriptions, ...partial.maxSubscriptions } };
  l.maxQueuedBytesPerSession = Math.min(l.maxQueuedBytesPerSession, Math.floor(l.maxOutgoingBytes / 2));
  return Object.freeze(l);
}

/** What the bounds refused or dropped, for metrics, logs and benchmarks. */
export interface BrokerLimitCounters {
  /** Filters refused with 0x80 for the subscription bound. */
  subscriptionsRefused: number;
  /** Filters refused with 0x80 for containing U+0000 [MQTT-4.7.3-2]. */
  nulFiltersRefused: number;
  /** Retained PUBLISHes delivered without being retained (topic, size or count). */
  retainRefused: number;
  /** Messages dropped from full offline queues (oldest first). */
  queueDropped: number;
  /** Clients disconnected for not reading (outgoing buffer past the bound). */
  slowReaders: number;
  /** Quarantined payloads not forwarded to a subscriber. */
  quarantinedNotForwarded: number;
  /** CONNECTs refused for the per-account connection bound or the client id length. */
  connectionsRefused: number;
  /** PUBLISHes held for the per-client publish rate (PUBACK delayed). */
  publishesDelayed: number;
  /** Clients disconnected past the publish rate's hard limit. */
  publishRateDisconnects: number;
}

/** Fresh zeroed counters. */
export function limitCounters(): BrokerLimitCounters {
  return { subscriptionsRefused: 0, nulFiltersRefused: 0, retainRefused: 0, queueDropped: 0, slowReaders: 0, quarantinedNotForwarded: 0, connectionsRefused: 0, publishesDelayed: 0, publishRateDisconnects: 0 };
}

/** Settings as a hub takes them: any field may be left out. */
export type BrokerLimitSettings = Partial<Omit<BrokerLimits, 'maxSubscriptions'>> & { maxSubscriptions?: Partial<BrokerLimits['maxSubscriptions']> };

const NUMERIC: ReadonlyArray<keyof Omit<BrokerLimits, 'maxSubscriptions'>> = [
  'maxRetainedBytes', 'maxRetainedPerClient', 'maxQueuedPerSession', 'maxQueuedBytesPerSession', 'maxOutgoingBytes', 'maxConnectionsPerAccount', 'maxClientIdLength', 'maxInflightInbound', 'tcpKeepAliveMs', 'maxConcurrentLogins', 'listenBacklog', 'maxPendingPerSource', 'publishRate', 'publishBurst', 'publishMaxHeld',
];

/**
 * Parses `NAME=N` settings (`hub run --broker-limit`): any numeric field of
 * {@link BrokerLimits}, or `maxSubscriptions.gateway` / `maxSubscriptions.other`.
 * Throws with a message naming the setting and the value.
 */
export function parseBrokerLimits(items: readonly string[]): BrokerLimitSettings {
  const out: BrokerLimitSettings & Record<string, unknown> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    const raw = eq < 0 ? '' : item.slice(eq + 1);
    const n = Number(raw);
    if (raw === '' || !Number.isInteger(n) || n < 1) throw new Error(`--broker-limit ${name}: '${raw}' is not a whole number ≥ 1`);
    if (name === 'maxSubscriptions.gateway' || name === 'maxSubscriptions.other') {
      out.maxSubscriptions = { ...out.maxSubscriptions, [name.slice('maxSubscriptions.'.length)]: n };
    } else if ((NUMERIC as readonly string[]).includes(name)) {
      out[name] = n;
    } else {
      throw new Error(`--broker-limit: unknown limit '${name}'; one of ${[...NUMERIC, 'maxSubscriptions.gateway', 'maxSubscriptions.other'].join(', ')}`);
    }
  }
  return out;
}
