/**
 * The MQTT broker: Aedes 1.x with the hub's hooks, listening on TCP.
 * Authentication and ACL hooks are added by the identity service; this file
 * wires the ingest into `authorizePublish`, tracks connections and enforces
 * the per-client bounds of hub/broker/broker-limits.ts around those hooks:
 *
 * - SUBSCRIBE: a filter with U+0000 is refused [MQTT-4.7.3-2]; filters past a
 *   session's bound (per role) get 0x80, logged once per client;
 * - PUBLISH: retained only where the contract retains (status,
 *   config/desired), small enough, and (outside the contract's namespace) a
 *   bounded number per client; otherwise delivered without being retained;
 * - forwarding: payloads the ingest quarantined are never forwarded; a client
 *   whose unread output passes `maxOutgoingBytes` is disconnected;
 * - offline queues are capped in the persistence (hub/broker/bounded-persistence.ts);
 * - optional PROXY protocol v1/v2 from trusted load balancers (hub/broker/proxy-protocol.ts);
 * - on a cluster (`cluster`, built by hub/cluster/cluster-link.ts): the bus and
 *   persistence in Redis, the retained bound counted in Redis, telemetry refused
 *   while Redis is away, a connection taken over on another node closed here
 *   without marking the gateway offline, connection checks cluster-wide.
 */
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { Aedes, type AedesOptions, type Client, type PublishPacket, type Subscription } from 'aedes';
import { IocError, parseTopic, ROOT } from '../contract/index.js';
import type { Logger } from '../lib/index.js';
import { brokerLimits, limitCounters, type BrokerLimits, type LimitRole } from './broker/broker-limits.js';
import { BoundedPersistence, type BoundedPersistenceOptions } from './broker/bounded-persistence.js';
import { memoryRetainedLedger, type RetainedLedger } from './broker/retained-ledger.js';
import { readProxyStart, type ProxyProtocolOptions } from './broker/proxy-protocol.js';
import { isQuarantined } from './broker/quarantine-mark.js';
import { SubscriptionBook } from './broker/subscription-book.js';
import { PublishRate } from './broker/publish-rate.js';
import type { HubEvents } from './hub-events.js';
import { PacketGuard, type PacketLimits } from './identity/packet-guard.js';
import type { Ingest } from './ingest.js';
import type { TelemetryPort } from './store/port.js';

/** Dependencies and settings of the {@link Broker}. */
export interface BrokerDeps {
  logger: Logger;
  ingest: Ingest;
  store: TelemetryPort;
  events: HubEvents;
  host: string;
  port: number;
  /** Extra Aedes options (authenticate, authorizeSubscribe… from the identity service). */
  aedesOptions?: Partial<AedesOptions>;
  /** Listen with TLS (certificate and key already loaded) instead of plain TCP. */
  tls?: tls.TlsOptions;
  /** Packet size limits enforced before Aedes buffers a packet (see PacketGuard); omitted: no guard. */
  packetLimits?: PacketLimits;
  /** Which gateway a client speaks for (from its authenticated identity); default: its client id, if a valid gateway id. */
  gatewayOf?: (client: Client) => string | null;
  /** Per-client bounds (defaults: DEFAULT_BROKER_LIMITS). */
  limits?: BrokerLimits;
  /** The role a client's bounds are chosen by (default: 'open'). */
  roleOf?: (client: Client) => LimitRole;
  /** Read the PROXY protocol (v1/v2) header from these trusted load balancers. */
  proxyProtocol?: ProxyProtocolOptions;
  /** This node's link to the other hub nodes (hub/cluster/cluster-link.ts); absent: one node. */
  cluster?: BrokerCluster;
}

/** What the broker needs of the cluster link (hub/cluster/cluster-link.ts). */
export interface BrokerCluster {
  /** Aedes' id for this process (node id and boot id). */
  readonly brokerId: string;
  readonly nodeId: string;
  readonly heartbeatMs: number;
  /** The message bus across nodes (Aedes `mq`). */
  readonly mq: object;
  persistence(opts: BoundedPersistenceOptions): object;
  readonly retained: RetainedLedger;
  health(): { ok: boolean; reason?: string };
  attach(aedes: Aedes, closeLocal: (clientId: string) => boolean): void;
  wasTakenOver(client: Client): boolean;
  connectedElsewhere(clientId: string): boolean;
  closeEverywhere(clientId: string): void;
}

/** Contract topic kinds that are retained (contract/topics.ts): the rest never are. */
const RETAINED_KINDS = new Set(['status', 'config/desired']);
const NAMESPACE = `${ROOT.split('/')[0]}/`;

/** Aedes plus its TCP listener. */
export class Broker {
  private aedes: Aedes | null = null;
  private server: net.Server | tls.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly book = new SubscriptionBook();
  private persistence: BoundedPersistence | null = null;
  /** Connections per source address that have not completed CONNECT yet. */
  private readonly pending = new Map<string, number>();
  /** Releases a connection's pending slot (once it is a client, or closed). */
  private readonly pendingRelease = new WeakMap<object, () => void>();
  /** Per-client publish rate (token buckets and the messages they hold). */
  private rate: PublishRate | null = null;
  /** Retained topics outside the contract's namespace, by the client id that set them (Redis on a cluster). */
  private readonly retainedBy: RetainedLedger;
  /** Connections closed for an oversized packet. */
  readonly counters = { oversized: 0, proxyRefused: 0 };
  /** What the per-client bounds refused, dropped or disconnected. */
  readonly limitCounters = limitCounters();
  readonly limits: BrokerLimits;

  constructor(private readonly deps: BrokerDeps) {
    this.limits = deps.limits ?? brokerLimits();
    this.retainedBy = deps.cluster?.retained ?? memoryRetainedLedger();
  }

  /** The bound port (after start). */
  get port(): number {
    const addr = this.server?.address();
    return addr && typeof addr === 'object' ? addr.port : 0;
  }

  /** The running Aedes instance. */
  get instance(): Aedes {
    if (!this.aedes) throw new Error('broker not started');
    return this.aedes;
  }

  /** Messages waiting in a persistent session's offline queue, and those dropped from it (full). */
  queueOf(clientId: string): { queued: number; dropped: number; bytes: number } {
    return { queued: this.persistence?.queuedFor(clientId) ?? 0, dropped: this.persistence?.droppedFor(clientId) ?? 0, bytes: this.persistence?.queuedBytesFor(clientId) ?? 0 };
  }

  async start(): Promise<void> {
    const { logger, store, events } = this.deps;
    const limits = this.limits;
    const lc = this.limitCounters;
    const roleOf = this.deps.roleOf ?? ((): LimitRole => 'open');
    const persistenceOpts: BoundedPersistenceOptions = {
      maxQueuedPerSession: limits.maxQueuedPerSession, maxQueuedBytesPerSession: limits.maxQueuedBytesPerSession, book: this.book, counters: lc,
      onDrop: (client, dropped) => logger.warn({ client, dropped, bound: limits.maxQueuedPerSession, code: 'HUB_ERR_LIMIT' }, 'offline queue full: oldest messages dropped'),
    };
    const cluster = this.deps.cluster;
    if (!cluster) this.persistence = new BoundedPersistence(persistenceOpts);
    const opts = this.deps.aedesOptions ?? {};
    const rate = (this.rate = new PublishRate({ logger, limits, counters: lc }));
    const aedes = await Aedes.createBroker({
      ...opts,
      persistence: (cluster ? cluster.persistence(persistenceOpts) : this.persistence) as AedesOptions['persistence'],
      ...(cluster
        ? {
            id: cluster.brokerId, mq: cluster.mq as AedesOptions['mq'], heartbeatInterval: cluster.heartbeatMs,
            // The bus puts its channel prefix in front of every topic as one more level: qlobber allows 100.
            maxTopicLevels: 99,
          }
        : {}),
      maxInflightInbound: limits.maxInflightInbound,
      // No queue on the message bus (Aedes' default holds messages past 100 in flight). mqemitter starts a
      // queued message from inside the callback of the one before, so a queue of messages whose listeners
      // finish at once (only the hub's own services, or none) was drained by recursion and overflowed the
      // stack (test/bus-recursion.test.ts). Every client's socket bounds what it has in flight already.
      concurrency: 0,
      preConnect: (client, packet, cb) => {
        if ((packet.clientId ?? '').length > limits.maxClientIdLength) {
          lc.connectionsRefused++;
          logger.warn({ addr: (client.conn as { remoteAddress?: string }).remoteAddress, length: packet.clientId.length, bound: limits.maxClientIdLength, code: 'HUB_ERR_LIMIT' }, 'client id too long; connection refused');
          cb(Object.assign(new Error(`client id of ${packet.clientId.length} characters (at most ${limits.maxClientIdLength})`), { returnCode: 2 }), false);
          return;
        }
        if (opts.preConnect) opts.preConnect(client, packet, cb);
        else cb(null, true);
      },
      // The client's publish rate first (broker/publish-rate.ts): held past it, disconnected past its hard limit.
      // The steps are methods rather than closures made per publish: this runs for every message.
      authorizePublish: (client, packet, cb) => rate.admit(client, () => this.authorizePublish(client, packet, cb), cb),
      authorizeSubscribe: (client, sub, cb) => this.authorizeSubscribe(client, sub, roleOf, cb),
      authorizeForward: (client, packet) => {
        if (isQuarantined(packet.payload)) {
          lc.quarantinedNotForwarded++;
          return null;
        }
        const conn = client.conn as unknown as { pendingBytes?: number; writableLength?: number };
        const pending = conn.pendingBytes ?? conn.writableLength ?? 0;
        if (pending > limits.maxOutgoingBytes) {
          lc.slowReaders++;
          logger.warn({ client: client.id, pendingBytes: pending, bound: limits.maxOutgoingBytes, code: 'HUB_ERR_SLOW_CONSUMER' }, 'client is not reading its messages; disconnected');
          client.close();
          return null;
        }
        return opts.authorizeForward ? opts.authorizeForward(client, packet) : packet;
      },
    });
    this.aedes = aedes;
    // Persistence failures (Redis away) surface here; without a listener the process would end.
    (aedes as unknown as NodeJS.EventEmitter).on('error', (err: Error) => logger.error({ err: err.message, code: cluster ? 'HUB_ERR_CLUSTER_UNAVAILABLE' : 'HUB_ERR_STORE_IO' }, 'broker persistence failed'));
    cluster?.attach(aedes, (id) => this.closeClient(id));
    const gatewayId = this.deps.gatewayOf ?? ((client: Client): string | null => (parseTopic(`ioc/v1/gw/${client.id}/status`) ? client.id : null));
    aedes.on('client', (client) => {
      const gw = gatewayId(client);
      logger.debug({ client: client.id }, 'client connected');
      if (gw) {
        void store.setGatewayState(gw, { online: true }).catch((err) => logger.error({ err }, 'registry update failed'));
        events.emit('gateway', { gateway: gw, online: true });
      }
    });
    aedes.on('clientDisconnect', (client) => {
      const gw = gatewayId(client);
      logger.debug({ client: client.id }, 'client disconnected');
      // A connection taken over on another node: the gateway is online there.
      if (gw && !this.isConnected(gw, client) && !cluster?.wasTakenOver(client)) {
        void store.setGatewayState(gw, { online: false }).catch((err) => logger.error({ err }, 'registry update failed'));
        events.emit('gateway', { gateway: gw, online: false });
      }
    });
    aedes.on('unsubscribe', (filters, client) => this.book.remove(client, filters));
    aedes.on('clientError', (client, err) => logger.debug({ client: client?.id, err: err.message }, 'client error'));
    aedes.on('connectionError', (client, err) => logger.debug({ client: client?.id, err: err.message }, 'connection error'));

    const packetLimits = this.deps.packetLimits;
    const hand = (socket: net.Socket, remote?: { remoteAddress: string; head: Buffer }): void => {
      const release = this.holdPending(remote?.remoteAddress ?? socket.remoteAddress ?? 'unknown', socket);
      if (!release) return;
      if (!packetLimits) {
        if (remote?.head.length) socket.unshift(remote.head);
        this.pendingRelease.set(socket, release);
        aedes.handle(socket);
        return;
      }
      const guard = new PacketGuard(socket, packetLimits, (info) => {
        this.counters.oversized++;
        logger.warn({ ...info, code: 'HUB_ERR_PACKET_TOO_LARGE' }, 'packet too large; connection closed');
      }, { writableHighWaterMark: limits.maxOutgoingBytes + 4 * 1024 * 1024, ...(remote ? { remoteAddress: remote.remoteAddress, head: remote.head } : {}) });
      this.pendingRelease.set(guard, release);
      aedes.handle(guard);
    };
    // A connection that completed CONNECT no longer counts against its address's pending bound.
    aedes.on('client', (client) => this.pendingRelease.get(client.conn as object)?.());
    const onSocket = (socket: net.Socket): void => {
      // PUBACKs are tiny: without TCP_NODELAY, Nagle's algorithm holds them ~40 ms behind the
      // previous unacknowledged segment, which throttles every QoS 1 publisher.
      socket.setNoDelay(true);
      // A peer that vanished (power cut, half-open TCP) with MQTT keepalive 0 is found by the OS.
      socket.setKeepAlive(true, limits.tcpKeepAliveMs);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      const proxy = this.deps.proxyProtocol;
      if (!proxy) {
        hand(socket);
        return;
      }
      socket.on('error', () => undefined);
      readProxyStart(socket, proxy).then(
        (start) => {
          if (start.header) logger.debug({ proxy: socket.remoteAddress, addr: start.remoteAddress, version: start.header.version }, 'PROXY header');
          hand(socket, start);
        },
        (err: Error) => {
          this.counters.proxyRefused++;
          logger.warn({ addr: socket.remoteAddress, err: err.message, code: 'HUB_ERR_PROXY_HEADER' }, 'PROXY protocol: connection closed');
          socket.destroy();
        },
      );
    };
    if (this.deps.tls && this.deps.proxyProtocol) {
      // The PROXY header precedes the TLS handshake: read it on the raw socket, then start TLS on it.
      const ctx = tls.createSecureContext(this.deps.tls);
      const tlsOpts = this.deps.tls;
      const server = net.createServer((raw) => {
        raw.on('error', () => undefined);
        this.sockets.add(raw);
        raw.once('close', () => this.sockets.delete(raw));
        readProxyStart(raw, this.deps.proxyProtocol!).then(
          (start) => {
            if (start.head.length) raw.unshift(start.head);
            const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx, ...(tlsOpts.requestCert !== undefined ? { requestCert: tlsOpts.requestCert } : {}) });
            secure.on('error', (err) => logger.debug({ err: err.message, addr: start.remoteAddress }, 'TLS handshake failed'));
            secure.once('secure', () => {
              secure.setNoDelay(true);
              hand(secure as unknown as net.Socket, { remoteAddress: start.remoteAddress, head: Buffer.alloc(0) });
            });
          },
          (err: Error) => {
            this.counters.proxyRefused++;
            logger.warn({ addr: raw.remoteAddress, err: err.message, code: 'HUB_ERR_PROXY_HEADER' }, 'PROXY protocol: connection closed');
            raw.destroy();
          },
        );
      });
      this.server = server;
    } else if (this.deps.tls) {
      const server = tls.createServer({ handshakeTimeout: 10_000, ...this.deps.tls }, onSocket);
      server.on('tlsClientError', (err, socket) => logger.debug({ err: err.message, addr: socket.remoteAddress }, 'TLS handshake failed'));
      this.server = server;
    } else {
      this.server = net.createServer(onSocket);
    }
    this.server.listen({ port: this.deps.port, host: this.deps.host, backlog: this.limits.listenBacklog });
    await once(this.server, 'listening');
    logger.info({ host: this.deps.host, port: this.port, tls: this.deps.tls !== undefined, proxyProtocol: this.deps.proxyProtocol ? this.deps.proxyProtocol.trusted : undefined }, 'mqtt listening');
  }

  /**
   * Counts a connection against its source's pending bound; null (and the
   * socket destroyed) when the source already has `maxPendingPerSource`
   * connections that have not completed CONNECT. Returns the release.
   */
  private holdPending(addr: string, socket: net.Socket): (() => void) | null {
    const n = this.pending.get(addr) ?? 0;
    if (n >= this.limits.maxPendingPerSource) {
      this.limitCounters.connectionsRefused++;
      if (this.limitCounters.connectionsRefused === 1 || this.limitCounters.connectionsRefused % 1000 === 0) {
        this.deps.logger.warn({ addr, pending: n, bound: this.limits.maxPendingPerSource, refusedSoFar: this.limitCounters.connectionsRefused, code: 'HUB_ERR_LIMIT' }, 'too many connections from this address without a completed CONNECT; closed');
      }
      socket.destroy();
      return null;
    }
    this.pending.set(addr, n + 1);
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      const m = (this.pending.get(addr) ?? 1) - 1;
      if (m <= 0) this.pending.delete(addr);
      else this.pending.set(addr, m);
    };
    socket.once('close', release);
    return release;
  }

  /**
   * Retained messages only where the contract retains them (status,
   * config/desired), at most `maxRetainedBytes`; outside the contract's
   * namespace (integration accounts, an open hub) at most
   * `maxRetainedPerClient` topics per client. Otherwise the message is
   * delivered as a plain one: refusing the PUBLISH would close a gateway's
   * connection and it would resend forever.
   */
  private async retainPolicy(client: Client | null, packet: PublishPacket): Promise<void> {
    const payload = packet.payload as Buffer;
    if (payload.length === 0) {
      // Clearing a retained message is always allowed.
      if (client) await this.retainedBy.release(client.id, packet.topic);
      return;
    }
    let why: string | null = null;
    if (payload.length > this.limits.maxRetainedBytes) why = `retained payload of ${payload.length} bytes (at most ${this.limits.maxRetainedBytes})`;
    else if (packet.topic.startsWith(NAMESPACE)) {
      const t = parseTopic(packet.topic);
      if (!t || !RETAINED_KINDS.has(t.kind)) why = `the contract does not retain '${packet.topic}'`;
    } else if (client && !(await this.retainedBy.admit(client.id, packet.topic, this.limits.maxRetainedPerClient))) {
      why = `client '${client.id}' already holds ${this.limits.maxRetainedPerClient} retained topics (the most allowed${this.deps.cluster ? ', counted on all hub nodes' : ''})`;
    }
    if (!why) return;
    packet.retain = false;
    this.limitCounters.retainRefused++;
    if (this.limitCounters.retainRefused === 1 || this.limitCounters.retainRefused % 1000 === 0) {
      this.deps.logger.warn({ client: client?.id, topic: packet.topic, refusedSoFar: this.limitCounters.retainRefused, code: 'HUB_ERR_LIMIT' }, `not retained: ${why}; delivered as a plain message`);
    }
  }

  /**
   * On a cluster: no publish is accepted while Redis is away (telemetry is
   * then not acknowledged; the gateway keeps it and sends it again), and the
   * gateway status a closing connection leaves (its will) is stale when the
   * gateway's newer connection lives on another node.
   */
  private clusterRefusal(cluster: BrokerCluster, client: Client | null, packet: PublishPacket): Error | null {
    const h = cluster.health();
    if (!h.ok) return new IocError('HUB_ERR_CLUSTER_UNAVAILABLE', `${h.reason ?? 'Redis is not connected'}; publish not acknowledged by node ${cluster.nodeId}, retry when it is back`);
    const willLike = client === null || (client as { will?: unknown }).will === packet || cluster.wasTakenOver(client);
    if (!willLike) return null;
    const t = parseTopic(packet.topic);
    if (t?.kind !== 'status') return null;
    if ((client && cluster.wasTakenOver(client)) || cluster.connectedElsewhere(t.gateway)) {
      return Object.assign(new Error(`stale last will of '${t.gateway}': it is connected to another hub node`), { code: 'HUB_ERR_STALE_WILL' });
    }
    return null;
  }

  /** After the publish rate: the $SYS and cluster checks, the identity's ACL, the retained policy, then the ingest. */
  private authorizePublish(client: Client | null, packet: PublishPacket, cb: (err: Error | null) => void): void {
    // $SYS/… is the brokers' own channel (takeover, heartbeats, the cluster's close requests): never a client's.
    if (client && packet.topic.startsWith('$SYS/')) {
      cb(Object.assign(new Error(`'${packet.topic}': $SYS topics are reserved to the broker`), { code: 'HUB_ERR_FORBIDDEN' }));
      return;
    }
    const cluster = this.deps.cluster;
    const refusal = cluster ? this.clusterRefusal(cluster, client, packet) : null;
    if (refusal) {
      cb(refusal);
      return;
    }
    const acl = this.deps.aedesOptions?.authorizePublish;
    if (acl) acl(client, packet, (err) => (err ? cb(err) : this.retainThenIngest(client, packet, cb)));
    else this.retainThenIngest(client, packet, cb);
  }

  private retainThenIngest(client: Client | null, packet: PublishPacket, cb: (err: Error | null) => void): void {
    if (!packet.retain) return this.ingestPublish(client, packet, cb);
    this.retainPolicy(client, packet).then(() => this.ingestPublish(client, packet, cb), (err: Error) => cb(err));
  }

  /** The ingest decides whether the publish is acknowledged (and forwarded): PUBACK only after its commit. */
  private ingestPublish(client: Client | null, packet: PublishPacket, cb: (err: Error | null) => void): void {
    this.deps.ingest.onPublish(client, packet).then(
      () => cb(null),
      (err: Error) => {
        if ((err as { code?: string }).code !== 'HUB_ERR_STALE_WILL') this.deps.logger.error({ err, topic: packet.topic, client: client?.id }, 'publish refused');
        cb(err);
      },
    );
  }

  /** NUL check, then the session's subscription bound, then the identity service's ACL and the bound again. */
  private authorizeSubscribe(client: Client, sub: Subscription, roleOf: (c: Client) => LimitRole, cb: (err: Error | null, sub?: Subscription | null) => void): void {
    // [MQTT-4.7.3-2]: topic names and filters must not include U+0000.
    if (sub.topic.includes('\u0000')) {
      this.limitCounters.nulFiltersRefused++;
      if (this.book.firstRefusal(client)) this.deps.logger.warn({ client: client.id, code: 'HUB_ERR_FORBIDDEN' }, 'subscription refused (SUBACK 0x80): topic filter contains U+0000 [MQTT-4.7.3-2]');
      cb(null, null);
      return;
    }
    const role = roleOf(client);
    const bound = role === 'gateway' ? this.limits.maxSubscriptions.gateway : this.limits.maxSubscriptions.other;
    // The bound is checked before the ACL too, so a flood of filters costs no ACL work or log lines
    // (this runs once per filter: a SUBSCRIBE of 5,000 filters calls it 5,000 times in one turn).
    if (this.book.count(client) >= bound && !this.bookHas(client, sub.topic)) {
      this.refuseForBound(client, role, bound, cb);
      return;
    }
    const acl = this.deps.aedesOptions?.authorizeSubscribe;
    if (!acl) this.grantWithinBound(client, sub, role, bound, cb);
    else acl(client, sub, (err, granted) => (err || !granted ? cb(err, granted) : this.grantWithinBound(client, granted, role, bound, cb)));
  }

  /** Grants a filter the ACL allowed while the session has room under its bound (or already holds it). */
  private grantWithinBound(client: Client, granted: Subscription, role: LimitRole, bound: number, cb: (err: Error | null, sub?: Subscription | null) => void): void {
    if (this.book.admit(client, granted.topic, bound)) cb(null, granted);
    else this.refuseForBound(client, role, bound, cb);
  }

  /** SUBACK 0x80 for a filter past the session's bound; logged once per connection. */
  private refuseForBound(client: Client, role: LimitRole, bound: number, cb: (err: Error | null, sub?: Subscription | null) => void): void {
    this.limitCounters.subscriptionsRefused++;
    if (this.book.firstRefusal(client)) {
      this.deps.logger.warn({ client: client.id, role, bound, code: 'HUB_ERR_LIMIT' }, `subscription bound reached: filters past ${bound} per session are refused (SUBACK 0x80); logged once per connection`);
    }
    cb(null, null);
  }

  private bookHas(client: Client, filter: string): boolean {
    return this.book.admit(client, filter, 0);
  }

  /** Closes the connection of the client with this id at once, if it is connected. */
  closeClient(clientId: string): boolean {
    const c = (this.aedes as unknown as { clients?: Record<string, Client> } | null)?.clients?.[clientId];
    if (!c) return false;
    c.close();
    return true;
  }

  /** Ids of connected clients whose id is `prefix` or starts with `prefix:`. */
  clientIds(prefix: string): string[] {
    const all = Object.keys((this.aedes as unknown as { clients?: Record<string, Client> } | null)?.clients ?? {});
    return all.filter((id) => id === prefix || id.startsWith(`${prefix}:`));
  }

  /** Ids of connected clients for which `pred` holds. */
  clientIdsWhere(pred: (client: Client) => boolean): string[] {
    return Object.values((this.aedes as unknown as { clients?: Record<string, Client> } | null)?.clients ?? {}).filter(pred).map((c) => c.id);
  }

  /** True when a client with this id is connected, other than `except` (on a cluster: on any live node). */
  isConnected(clientId: string, except: Client | null): boolean {
    const c = (this.aedes as unknown as { clients?: Record<string, Client> } | null)?.clients?.[clientId];
    return (c !== undefined && c !== except) || (this.deps.cluster?.connectedElsewhere(clientId) ?? false);
  }

  /** Closes this client id's connection on whichever node holds it (only here on one node); true when it was here. */
  closeEverywhere(clientId: string): boolean {
    const here = this.isConnected(clientId, null) && this.closeClient(clientId);
    this.deps.cluster?.closeEverywhere(clientId);
    return here;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of this.sockets) s.destroy();
      await closed;
    }
    this.rate?.stop();
    const aedes = this.aedes;
    this.aedes = null;
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
  }
}
