/**
 * One hub node's link to the others (issue 16, docs/cluster.md): the Redis
 * connections, the Aedes message bus across nodes (mqemitter-redis, channels
 * under the cluster's key prefix), the shared persistence
 * (cluster-persistence.ts), the retained-message ledger (bounds per client
 * cluster-wide), Redis health for readiness, and the cross-node client view:
 *
 * - presence: which node holds which client connection, from the
 *   `$SYS/<node>/new|disconnect/clients` messages Aedes already sends, a
 *   Redis hash read at start, and Aedes' node heartbeats (a node silent for
 *   three heartbeats holds nothing);
 * - takeover: a client that connects on another node closes its connection
 *   here (Aedes does that); this link remembers it, so the old connection's
 *   will and disconnect do not mark the gateway offline;
 * - close everywhere: revocation on any node closes the connection wherever
 *   it is (`$SYS/ioc-edge/close` on the bus).
 *
 * The broker (hub/broker.ts) takes this as its `cluster` dependency; only
 * hub/hub.ts builds it.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Aedes, Client } from 'aedes';
import { Redis } from 'ioredis';
import { IocError } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { BoundedPersistenceOptions } from '../broker/bounded-persistence.js';
import type { RetainedLedger } from '../broker/retained-ledger.js';
import type { StoreHealth } from '../store/port.js';
import type { ClusterSettings } from './cluster-options.js';
import { ClusterPersistence } from './cluster-persistence.js';

/** The mqemitter interface Aedes uses. */
export interface MessageBus {
  on(topic: string, fn: (packet: { topic: string; payload: unknown }, done: () => void) => void, cb?: () => void): unknown;
  emit(packet: { topic: string; payload: unknown }, cb?: (err?: Error) => void): void;
  close(cb: () => void): void;
}

const require = createRequire(import.meta.url);
const { MQEmitterRedisPrefix } = require('mqemitter-redis') as { MQEmitterRedisPrefix: new (prefix: string, opts: object) => MessageBus & { state: NodeJS.EventEmitter } };

const CLOSE_TOPIC = '$SYS/ioc-edge/close';
const PRESENCE = 'presence';
const HDEL_IF = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0`;
const ADMIT_RETAINED = `
if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[2])
return 1`;

type Cmd = Redis & {
  iocPresenceDel(key: string, field: string, value: string): Promise<number>;
  iocAdmitRetained(key: string, bound: number, topic: string): Promise<number>;
};

/** Dependencies of {@link ClusterLink}. */
export interface ClusterLinkDeps {
  settings: ClusterSettings;
  logger: Logger;
  /** How long start waits for Redis (ms, default 5,000). */
  connectTimeoutMs?: number;
}

/** A hub node's connection to the cluster. */
export class ClusterLink {
  /** Aedes' id for this process: the node id and a boot id, so a restarted node never shadows its predecessor's wills. */
  readonly brokerId: string;
  private cmd: Cmd | null = null;
  private pub: Redis | null = null;
  private sub: Redis | null = null;
  private bus: (MessageBus & { state: NodeJS.EventEmitter }) | null = null;
  private aedes: Aedes | null = null;
  private readonly startedAt = Date.now();
  private lastError = '';
  /** Remote connections: client id → broker id, from the bus and the Redis hash. */
  private readonly remote = new Map<string, string>();
  /**
   * When each other node was last heard on the bus besides Aedes' heartbeats:
   * its birth (Aedes announces it at start, before the node listens) and its
   * clients' connections. Aedes records a node only at its first heartbeat,
   * one heartbeat period after its start (15 s by default), and the gateways
   * that connected to a node that young were swept offline by the other
   * nodes (cluster-mqtt takeover test, seen in CI), and Aedes itself
   * published the wills of their clients (its will sweep, every four
   * heartbeats, takes a node it has no heartbeat of for dead): so a node
   * heard is also recorded in Aedes' own table ({@link noteHeard}).
   */
  private readonly heard = new Map<string, number>();

  /** Records that another node was heard now, here and in Aedes' table of nodes (its will sweep reads it). */
  private noteHeard(brokerId: string): void {
    if (brokerId === this.brokerId) return;
    const now = Date.now();
    this.heard.set(brokerId, now);
    const table = (this.aedes as unknown as { brokers?: Record<string, number> } | null)?.brokers;
    if (table && (table[brokerId] ?? 0) < now) table[brokerId] = now;
  }
  /** Local clients whose connection a newer one on another node took over. */
  private readonly takenOver = new WeakSet<Client>();
  private closeLocal: (clientId: string) => boolean = () => false;

  constructor(private readonly deps: ClusterLinkDeps) {
    this.brokerId = `${deps.settings.nodeId}.${randomBytes(3).toString('hex')}`;
  }

  get nodeId(): string {
    return this.deps.settings.nodeId;
  }

  get heartbeatMs(): number {
    return this.deps.settings.heartbeatMs;
  }

  /** The bus for Aedes' `mq` option (after start). */
  get mq(): MessageBus {
    if (!this.bus) throw new Error('cluster link not started');
    return this.bus;
  }

  private connection(name: string, keyPrefix?: string): Redis {
    const r = new Redis(this.deps.settings.redisUrl, {
      ...(keyPrefix ? { keyPrefix } : {}),
      connectionName: `ioc-edge:${this.nodeId}:${name}`,
      lazyConnect: true,
      // Fail commands quickly while Redis is away: the node refuses telemetry meanwhile, so nothing waits on them.
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(100 * times, 1000),
    });
    r.on('error', (err: Error) => {
      const msg = `Redis at ${r.options.host}:${r.options.port} unreachable: ${err.message}`;
      if (msg !== this.lastError) this.deps.logger.warn({ conn: name, err: err.message, code: 'HUB_ERR_CLUSTER_UNAVAILABLE' }, 'Redis connection failed');
      this.lastError = msg;
    });
    r.on('close', () => {
      if (!this.lastError) this.lastError = `Redis at ${r.options.host}:${r.options.port} unreachable: connection closed`;
    });
    r.on('ready', () => {
      if (this.lastError && [this.cmd, this.pub, this.sub].every((c) => c?.status === 'ready')) {
        this.deps.logger.info({ node: this.nodeId }, 'Redis connections ready again');
        this.lastError = '';
      }
    });
    return r;
  }

  async start(): Promise<void> {
    const s = this.deps.settings;
    this.cmd = this.connection('cmd', s.keyPrefix) as Cmd;
    this.pub = this.connection('pub');
    this.sub = this.connection('sub');
    this.cmd.defineCommand('iocPresenceDel', { numberOfKeys: 1, lua: HDEL_IF });
    this.cmd.defineCommand('iocAdmitRetained', { numberOfKeys: 1, lua: ADMIT_RETAINED });
    const timeout = this.deps.connectTimeoutMs ?? 5000;
    try {
      await Promise.race([
        Promise.all([this.cmd.connect(), this.pub.connect(), this.sub.connect()]),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout).unref()),
      ]);
      for (const [id, broker] of Object.entries(await this.cmd.hgetall(PRESENCE))) this.remote.set(id, broker);
    } catch (err) {
      await this.stop();
      throw new IocError('HUB_ERR_CLUSTER_UNAVAILABLE', `Redis at ${s.redisUrl.replace(/\/\/[^@/]*@/, '//***@')} unreachable at start: ${(err as Error).message}; start it or fix --redis`, { cause: err });
    }
    // Channels under the cluster's prefix; matchEmptyLevels as Aedes' own default bus [MQTT-4.7.1-3].
    this.bus = new MQEmitterRedisPrefix(`${s.keyPrefix}mq/`, { pubConn: this.pub, subConn: this.sub, matchEmptyLevels: true, concurrency: 0 });
    this.bus.state.on('error', () => undefined); // logged by the connections' own handlers
    this.replaceBusClose(this.bus, this.pub, this.sub);
    // Registered before Aedes' own listener: the old connection is marked before Aedes closes it.
    this.bus.on('$SYS/+/birth', (packet, done) => {
      this.noteHeard(packet.topic.split('/')[1]!);
      done();
    });
    this.bus.on('$SYS/+/new/clients', (packet, done) => {
      const from = packet.topic.split('/')[1]!;
      const id = String(packet.payload);
      if (from !== this.brokerId) {
        this.noteHeard(from);
        this.remote.set(id, from);
        const c = (this.aedes as unknown as { clients?: Record<string, Client> } | null)?.clients?.[id];
        if (c) this.takenOver.add(c);
      }
      done();
    });
    this.bus.on('$SYS/+/disconnect/clients', (packet, done) => {
      const from = packet.topic.split('/')[1]!;
      const id = String(packet.payload);
      if (this.remote.get(id) === from) this.remote.delete(id);
      done();
    });
    this.bus.on(CLOSE_TOPIC, (packet, done) => {
      const id = String(packet.payload);
      // This node's own request comes back too: its broker closed the client already.
      if (this.closeLocal(id)) this.deps.logger.info({ client: id, node: this.nodeId }, 'connection closed on request of the cluster');
      done();
    });
  }

  /**
   * Called by the broker once Aedes runs: records this node's connections in
   * the presence hash and closes local clients on request.
   */
  attach(aedes: Aedes, closeLocal: (clientId: string) => boolean): void {
    this.aedes = aedes;
    this.closeLocal = closeLocal;
    aedes.on('client', (c) => {
      this.remote.delete(c.id);
      this.cmd?.hset(PRESENCE, c.id, this.brokerId).catch(() => undefined);
    });
    aedes.on('clientDisconnect', (c) => {
      this.cmd?.iocPresenceDel(PRESENCE, c.id, this.brokerId).catch(() => undefined);
    });
  }

  /** The persistence for Aedes: shared in Redis, bounded per session cluster-wide. */
  persistence(opts: BoundedPersistenceOptions): ClusterPersistence {
    if (!this.cmd) throw new Error('cluster link not started');
    return new ClusterPersistence({
      ...opts, redis: this.cmd, keyPrefix: this.deps.settings.keyPrefix,
      onStreamError: (what, err) => this.deps.logger.warn({ err: err.message, code: 'HUB_ERR_CLUSTER_UNAVAILABLE' }, `reading ${what} from Redis failed; the subscriber gets none of the rest`),
    });
  }

  /** Retained topics per client outside the contract's namespace, counted in Redis (all nodes). */
  readonly retained: RetainedLedger = {
    admit: async (clientId, topic, bound) => (await this.cmd!.iocAdmitRetained(`retained-by:${encodeURIComponent(clientId)}`, bound, topic)) === 1,
    release: async (clientId, topic) => {
      await this.cmd!.srem(`retained-by:${encodeURIComponent(clientId)}`, topic);
    },
  };

  /** True when this local client's connection was taken over by a newer one on another node. */
  wasTakenOver(client: Client): boolean {
    return this.takenOver.has(client);
  }

  /** A live node holds a connection of this client id, other than this node. */
  connectedElsewhere(clientId: string): boolean {
    const b = this.remote.get(clientId);
    if (!b || b === this.brokerId) return false;
    const seen = this.lastHeard(b);
    const window = 3 * this.heartbeatMs;
    if (seen !== undefined) return seen + window >= Date.now();
    // Not heard yet: trust the record only while this node is too young to have heard every heartbeat.
    return Date.now() - this.startedAt < window;
  }

  /**
   * Broker ids of the nodes heard within three heartbeats, this one included;
   * null while this node is younger than that (it may not have heard every
   * live node yet).
   */
  liveBrokers(now = Date.now()): string[] | null {
    const window = 3 * this.heartbeatMs;
    if (now - this.startedAt < window) return null;
    const brokers = (this.aedes as unknown as { brokers?: Record<string, number> } | null)?.brokers ?? {};
    for (const [id, at] of this.heard) if (at + 100 * window < now) this.heard.delete(id); // nodes long gone
    const ids = new Set([...Object.keys(brokers), ...this.heard.keys()]);
    ids.delete(this.brokerId);
    return [this.brokerId, ...[...ids].filter((id) => (this.lastHeard(id) ?? 0) + window >= now)];
  }

  /** When another node was last heard: its heartbeat (Aedes), its birth or a client connecting to it. */
  private lastHeard(brokerId: string): number | undefined {
    const beat = (this.aedes as unknown as { brokers?: Record<string, number> } | null)?.brokers?.[brokerId];
    const other = this.heard.get(brokerId);
    if (beat === undefined) return other;
    return other === undefined ? beat : Math.max(beat, other);
  }

  /**
   * mqemitter-redis 7 closes by sending QUIT on its two connections and
   * waiting for both to end, without handling QUIT's promise. While Redis is
   * away the connections keep reconnecting, so they never end: Aedes' close,
   * and so the node's stop, hung for good, and QUIT's rejection
   * (MaxRetriesPerRequestError) was unhandled, which the process policy
   * turns into a fatal exit. Here a ready connection gets QUIT (bounded),
   * any other is disconnected at once, and then the emitter's own close runs.
   */
  private replaceBusClose(bus: MessageBus, ...conns: Array<Redis | null>): void {
    const b = bus as unknown as { closing: boolean; closed: boolean; _close(cb: () => void): void; close(cb?: () => void): unknown };
    b.close = (cb: () => void = () => undefined) => {
      if (b.closed || b.closing) {
        cb();
        return b;
      }
      b.closing = true;
      void Promise.all(conns.map(async (c) => {
        if (!c) return;
        if (c.status !== 'ready') {
          c.disconnect();
          return;
        }
        let timer: NodeJS.Timeout | undefined;
        const quit = c.quit().then(() => undefined, () => c.disconnect());
        const late = new Promise<void>((resolve) => (timer = setTimeout(() => (c.disconnect(), resolve()), 2000)));
        await Promise.race([quit, late]);
        clearTimeout(timer);
      })).finally(() => b._close(cb));
      return b;
    };
  }

  /** Asks every other node to close the connection of this client id (the broker closes its own). */
  closeEverywhere(clientId: string): void {
    this.bus?.emit({ topic: CLOSE_TOPIC, payload: clientId }, (err) => {
      if (err) this.deps.logger.error({ err: err.message, client: clientId, code: 'HUB_ERR_CLUSTER_UNAVAILABLE' }, 'could not ask the other nodes to close a connection; it ends at its next reconnect (the credential is refused everywhere)');
    });
  }

  /** Redis health for readiness: every connection ready, else why not. */
  health(): StoreHealth {
    const conns = [this.cmd, this.pub, this.sub];
    if (conns.every((c) => c?.status === 'ready')) return { ok: true };
    const h = this.cmd?.options;
    return { ok: false, reason: this.lastError || `Redis at ${h?.host ?? '?'}:${h?.port ?? '?'} unreachable: not connected` };
  }

  /** Closes the Redis connections (after the broker has closed Aedes, which quits the bus's two). */
  async stop(): Promise<void> {
    for (const c of [this.cmd, this.pub, this.sub]) {
      if (!c) continue;
      if (c.status === 'ready') await c.quit().catch(() => c.disconnect());
      else c.disconnect();
    }
    this.cmd = this.pub = this.sub = null;
  }
}
