/**
 * The broker's persistence on a cluster: aedes-persistence-redis 11 (shared
 * sessions, subscriptions, retained messages, offline queues and wills in
 * Redis) with the hub's per-client bounds held cluster-wide, the same bounds
 * the one-node BoundedPersistence (hub/broker/bounded-persistence.ts) holds in
 * memory:
 *
 * - offline queues: at most `maxQueuedPerSession` messages and about
 *   `maxQueuedBytesPerSession` bytes (encoded size) per session, trimmed
 *   oldest-first in one Lua script after each enqueue; a trimmed packet's
 *   reference count is decremented and the packet deleted at zero, so a
 *   session that never returns holds at most its bound (the memory growth of
 *   aedes-persistence-redis issue #73 came from unbounded `packet:*` keys);
 *   packets also expire after `packetTtlSeconds`;
 * - quarantined payloads are never queued; only granted filters are stored
 *   (the SubscriptionBook, as in BoundedPersistence);
 * - last wills: Aedes deletes a reconnecting client's old will under the
 *   wrong key (`will:undefined:<id>`), so a will left by a node that died was
 *   published later even though the client had come back on another node.
 *   Here the node holding a client's will is recorded, and a client that
 *   connects anywhere removes the will an earlier node holds for it.
 *
 * Everything else is the upstream implementation, called through.
 */
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Client, Subscription } from 'aedes';
import type { Redis } from 'ioredis';
import type { BrokerLimitCounters } from '../broker/broker-limits.js';
import { isQuarantined } from '../broker/quarantine-mark.js';
import type { SubscriptionBook } from '../broker/subscription-book.js';

/** A packet as the persistence sees it (the fields used here). */
interface Pkt {
  topic: string;
  payload: Buffer;
  brokerId?: string;
  brokerCounter?: number;
  messageId?: number;
  [k: string]: unknown;
}

/** The upstream class (aedes-persistence-redis/asyncPersistence.js), as used here. */
interface RedisAsyncPersistence {
  setup(broker: unknown): Promise<void>;
  storeRetained(packet: Pkt): Promise<void>;
  createRetainedStream(pattern: string): AsyncIterable<Pkt>;
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<Pkt>;
  addSubscriptions(client: Client, subs: Subscription[]): Promise<void>;
  removeSubscriptions(client: Client, subs: string[]): Promise<void>;
  subscriptionsByClient(client: Client): Promise<Subscription[]>;
  countOffline(): Promise<{ subsCount: number; clientsCount: number }>;
  subscriptionsByTopic(topic: string): Promise<Array<Subscription & { clientId: string }>>;
  cleanSubscriptions(client: Client): Promise<void>;
  outgoingEnqueue(sub: { clientId: string }, packet: Pkt): Promise<void>;
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: Pkt): Promise<void>;
  outgoingUpdate(client: Client, packet: Pkt): Promise<void>;
  outgoingClearMessageId(client: Client, packet: Pkt): Promise<Pkt | undefined>;
  outgoingStream(client: Client): AsyncIterable<Pkt>;
  incomingStorePacket(client: Client, packet: Pkt): Promise<void>;
  incomingGetPacket(client: Client, packet: Pkt): Promise<Pkt>;
  incomingDelPacket(client: Client, packet: Pkt): Promise<void>;
  putWill(client: Client, packet: Pkt): Promise<void>;
  getWill(client: Client): Promise<Pkt | null>;
  delWill(client: { id: string; brokerId?: string }): Promise<Pkt | null>;
  streamWill(brokers?: Record<string, number>): AsyncIterable<Pkt & { clientId: string; brokerId: string }>;
  getClientList(topic: string): Iterable<string>;
}

const require = createRequire(import.meta.url);
const Upstream = require('aedes-persistence-redis/asyncPersistence.js') as new (opts: object) => RedisAsyncPersistence;

/** Key of a session's offline queue, as upstream names it (ioredis adds the prefix). */
const outgoingKey = (clientId: string): string => `outgoing:${encodeURIComponent(clientId)}`;
/** Hash: client id → approximate bytes in its queue (this file's). */
const QUEUE_BYTES = 'outgoing-bytes';
/** Hash: client id → the node whose `will:<node>:<client>` key holds its will (this file's). */
const WILL_OWNER = 'will-owner';
/** Hash: client id → messages dropped from its full queue (cluster-wide, this file's). */
const QUEUE_DROPS = 'outgoing-drops';

/**
 * Trims one queue to its bounds. KEYS: queue list, bytes hash, drops hash.
 * ARGV: max messages, max bytes, key prefix, client id. The newest entry's
 * encoded size is added first; while over a bound (and more than one entry
 * left) the oldest is popped, its reference count decremented, the packet
 * deleted at zero. Returns the number dropped.
 */
const TRIM = `
local n = redis.call('LLEN', KEYS[1])
if n == 0 then redis.call('HDEL', KEYS[2], ARGV[4]) return 0 end
local newest = redis.call('LINDEX', KEYS[1], -1)
local size = redis.call('STRLEN', ARGV[3] .. newest)
local bytes
if n == 1 then redis.call('HSET', KEYS[2], ARGV[4], size) bytes = size
else bytes = redis.call('HINCRBY', KEYS[2], ARGV[4], size) end
local maxN = tonumber(ARGV[1])
local maxB = tonumber(ARGV[2])
local dropped = 0
while n > 1 and (n > maxN or bytes > maxB) do
  local k = redis.call('LPOP', KEYS[1])
  bytes = bytes - redis.call('STRLEN', ARGV[3] .. k)
  if string.sub(k, 1, 7) == 'packet:' then
    local left = redis.call('DECR', ARGV[3] .. k .. ':offlineCount')
    if left <= 0 then redis.call('DEL', ARGV[3] .. k, ARGV[3] .. k .. ':offlineCount') end
  else
    redis.call('DEL', ARGV[3] .. k)
  end
  n = n - 1
  dropped = dropped + 1
end
if bytes < 0 then bytes = 0 end
redis.call('HSET', KEYS[2], ARGV[4], bytes)
if dropped > 0 then redis.call('HINCRBY', KEYS[3], ARGV[4], dropped) end
return dropped
`;

/** Deletes a hash field only while it still holds the expected value. KEYS: hash. ARGV: field, value. */
const HDEL_IF = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0`;

/** Settings of {@link ClusterPersistence}. */
export interface ClusterPersistenceOptions {
  /** The command connection (with the cluster's key prefix); shared with the rest of the cluster link. */
  redis: Redis;
  keyPrefix: string;
  maxQueuedPerSession: number;
  maxQueuedBytesPerSession: number;
  book: SubscriptionBook;
  counters: BrokerLimitCounters;
  onDrop?: (clientId: string, dropped: number) => void;
  /** A read streamed to Aedes failed and was cut short (Redis away); for the log. */
  onStreamError?: (what: string, err: Error) => void;
  /** Seconds a queued packet lives in Redis (default 7 days). */
  packetTtlSeconds?: number;
}

/**
 * The connection as the upstream persistence sees it: every command's promise
 * gets a handler attached, and the same promise is returned, so a caller that
 * awaits it still gets the error. Why: aedes-persistence-redis 11 issues some
 * commands without awaiting them (`lrem`/`rpush` in putWill and delWill);
 * while Redis is away their MaxRetriesPerRequestError or "Connection is
 * closed" was an unhandled rejection, which ended the node process (a Redis
 * restart under load, hub/cluster/test/cluster-load.test.ts).
 */
function markRejectionsHandled(redis: Redis): Redis {
  return new Proxy(redis, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]): unknown => {
        const r = (v as (...a: unknown[]) => unknown).apply(target, args);
        if (r instanceof Promise) r.catch(() => undefined);
        return r;
      };
    },
  });
}

/** aedes-persistence-redis with cluster-wide per-session bounds and cross-node will clean-up. */
export class ClusterPersistence {
  private readonly inner: RedisAsyncPersistence;
  private brokerId = '';
  private readonly dropsSeen = new Map<string, number>();

  constructor(private readonly opts: ClusterPersistenceOptions) {
    const ttl = opts.packetTtlSeconds ?? 7 * 86_400;
    this.inner = new Upstream({ conn: markRejectionsHandled(opts.redis), packetTTL: () => ttl, maxSessionDelivery: opts.maxQueuedPerSession });
    opts.redis.defineCommand('iocTrimQueue', { numberOfKeys: 3, lua: TRIM });
    opts.redis.defineCommand('iocHdelIf', { numberOfKeys: 1, lua: HDEL_IF });
  }

  private get cmd(): Redis & { iocTrimQueue(...a: Array<string | number>): Promise<number>; iocHdelIf(...a: string[]): Promise<number> } {
    return this.opts.redis as never;
  }

  // Aedes checks that setup is an AsyncFunction.
  async setup(broker: { id: string }): Promise<void> {
    this.brokerId = broker.id;
    await this.inner.setup(broker);
  }

  storeRetained(packet: Pkt): Promise<void> {
    return this.inner.storeRetained(packet);
  }

  // Aedes 1.2 pipes these (stream.pipe); upstream 11.x returns async generators. Aedes pipes the
  // retained messages of a SUBSCRIBE without an 'error' listener on the source: a Redis failure
  // while they were read (hscanStream: MaxRetriesPerRequestError) was an uncaught exception that
  // ended the node. The stream ends instead, without the rest of them, and the failure is reported.
  createRetainedStream(pattern: string): Readable {
    return Readable.from(this.endOnError(this.inner.createRetainedStream(pattern), 'retained messages'));
  }

  createRetainedStreamCombi(patterns: string[]): Readable {
    return Readable.from(this.endOnError(this.inner.createRetainedStreamCombi(patterns), 'retained messages'));
  }

  private async *endOnError<T>(source: AsyncIterable<T>, what: string): AsyncGenerator<T> {
    try {
      yield* source;
    } catch (err) {
      this.opts.onStreamError?.(what, err as Error);
    }
  }

  async addSubscriptions(client: Client, subs: Subscription[]): Promise<void> {
    const fresh = this.opts.book.toPersist(client, subs);
    if (fresh.length > 0) await this.inner.addSubscriptions(client, fresh);
  }

  removeSubscriptions(client: Client, subs: string[]): Promise<void> {
    return this.inner.removeSubscriptions(client, subs);
  }

  subscriptionsByClient(client: Client): Promise<Subscription[]> {
    return this.inner.subscriptionsByClient(client);
  }

  countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return this.inner.countOffline();
  }

  subscriptionsByTopic(topic: string): Promise<Array<Subscription & { clientId: string }>> {
    return this.inner.subscriptionsByTopic(topic);
  }

  cleanSubscriptions(client: Client): Promise<void> {
    return this.inner.cleanSubscriptions(client);
  }

  async outgoingEnqueue(sub: { clientId: string }, packet: Pkt): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet);
  }

  async outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: Pkt): Promise<void> {
    if (!subs || subs.length === 0 || isQuarantined(packet.payload)) return;
    await this.inner.outgoingEnqueueCombi(subs, packet);
    for (const s of subs) {
      const dropped = await this.cmd.iocTrimQueue(outgoingKey(s.clientId), QUEUE_BYTES, QUEUE_DROPS, this.opts.maxQueuedPerSession, this.opts.maxQueuedBytesPerSession, this.opts.keyPrefix, s.clientId);
      if (dropped > 0) this.noteDrops(s.clientId, dropped);
    }
  }

  private noteDrops(clientId: string, drop: number): void {
    this.opts.counters.queueDropped += drop;
    const n = (this.dropsSeen.get(clientId) ?? 0) + drop;
    if (this.dropsSeen.size > 10_000 && !this.dropsSeen.has(clientId)) this.dropsSeen.clear();
    this.dropsSeen.set(clientId, n);
    if (n === drop || Math.floor(n / 1000) !== Math.floor((n - drop) / 1000)) this.opts.onDrop?.(clientId, n);
  }

  async outgoingUpdate(client: Client, packet: Pkt): Promise<void> {
    try {
      await this.inner.outgoingUpdate(client, packet);
    } catch (err) {
      // Upstream throws for a packet it no longer knows (trimmed from a full queue while being
      // sent); Aedes would then close the client. Send it anyway, as BoundedPersistence does.
      if ((err as Error).message !== 'unknown key' && (err as Error).message !== 'no such packet') throw err;
    }
  }

  outgoingClearMessageId(client: Client, packet: Pkt): Promise<Pkt | undefined> {
    return this.inner.outgoingClearMessageId(client, packet);
  }

  outgoingStream(client: Client): Readable {
    return Readable.from(this.inner.outgoingStream(client));
  }

  incomingStorePacket(client: Client, packet: Pkt): Promise<void> {
    return this.inner.incomingStorePacket(client, packet);
  }

  incomingGetPacket(client: Client, packet: Pkt): Promise<Pkt> {
    return this.inner.incomingGetPacket(client, packet);
  }

  incomingDelPacket(client: Client, packet: Pkt): Promise<void> {
    return this.inner.incomingDelPacket(client, packet);
  }

  async putWill(client: Client, packet: Pkt): Promise<void> {
    await this.inner.putWill(client, packet);
    await this.opts.redis.hset(WILL_OWNER, client.id, this.brokerId);
  }

  getWill(client: Client): Promise<Pkt | null> {
    return this.inner.getWill(client);
  }

  /**
   * Aedes calls this with the connecting client (no `brokerId`) to drop the
   * client's previous will, and with `{id, brokerId}` after a will was
   * published or a clean disconnect. The first form removes the will that
   * any node holds for that client id.
   */
  async delWill(client: { id: string; brokerId?: string }): Promise<Pkt | null> {
    if (client.brokerId === undefined) {
      const owner = await this.opts.redis.hget(WILL_OWNER, client.id);
      const own = await this.inner.delWill({ id: client.id, brokerId: this.brokerId });
      if (owner && owner !== this.brokerId) {
        await this.inner.delWill({ id: client.id, brokerId: owner });
        await this.cmd.iocHdelIf(WILL_OWNER, client.id, owner);
      }
      return own;
    }
    const will = await this.inner.delWill(client);
    await this.cmd.iocHdelIf(WILL_OWNER, client.id, client.brokerId);
    return will;
  }

  streamWill(brokers?: Record<string, number>): Readable {
    return Readable.from(this.inner.streamWill(brokers));
  }

  getClientList(topic: string): Iterable<string> {
    return this.inner.getClientList(topic);
  }

  /** Messages in this session's queue now (cluster-wide). */
  async queuedFor(clientId: string): Promise<number> {
    return this.opts.redis.llen(outgoingKey(clientId));
  }

  /** Messages dropped from this session's full queue (cluster-wide, since the key was made). */
  async droppedFor(clientId: string): Promise<number> {
    return Number((await this.opts.redis.hget(QUEUE_DROPS, clientId)) ?? 0);
  }

  /** Nothing to release: the Redis connections belong to the cluster link, which closes them. */
  async destroy(): Promise<void> {}
}
