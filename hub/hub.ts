/**
 * The hub's composition root: builds the store, ingest, broker and API, starts
 * them in order and stops them in reverse. Only this file calls `new` on hub
 * services.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { IocError } from '../contract/index.js';
import type { Logger } from '../lib/index.js';
import { Api } from './api.js';
import { Broker } from './broker.js';
import { ClusterLink } from './cluster/cluster-link.js';
import { resolveCluster, type ClusterOptions } from './cluster/cluster-options.js';
import { ConnectionSweep } from './cluster/connection-sweep.js';
import { brokerLimits, type BrokerLimitSettings } from './broker/broker-limits.js';
import { registerConfigRoutes } from './config/api-routes.js';
import { brokerLink } from './config/broker-link.js';
import { CommandService } from './config/command-service.js';
import { ConfigService } from './config/config-service.js';
import { loadSecretKey, SecretBox } from './config/secret-box.js';
import { secureDataDir } from './identity/data-dir.js';
import { FirmwareService, registerFirmwareRoutes } from './firmware/index.js';
import { parsePublicKey } from '../firmware-bridge/index.js';
import { registerConsoleRoutes } from './console/console-routes.js';
import { registerDataRoutes } from './data-routes.js';
import { resolveDataLimits, type DataLimitOptions } from './data-limits.js';
import { HubEvents } from './hub-events.js';
import { installApiAuth } from './identity/api-auth.js';
import { registerIdentityRoutes } from './identity/api-routes.js';
import { IdentityService } from './identity/identity-service.js';
import { MqttAuth } from './identity/mqtt-auth.js';
import { DEFAULT_PACKET_LIMITS } from './identity/packet-guard.js';
import { Provisioning } from './identity/provisioning.js';
import { FailureLimiter, type LoginLimiter, type RateLimitOptions } from './identity/rate-limiter.js';
import { limiterRedis, RedisFailureLimiter } from './identity/redis-limiter.js';
import type { ScryptParams } from './identity/secret-hash.js';
import { isLoopback, loadTlsFiles, type TlsFiles } from './identity/tls-files.js';
import { Ingest } from './ingest.js';
import { LiveRelay, type LiveBus } from './live/live-relay.js';
import { LiveStream } from './live/live-stream.js';
import { HubMetrics } from './metrics.js';
import { installOpenApi } from './openapi.js';
import { HUB_VERSION } from './version.js';
import { every } from './cluster/lease.js';
import { HubNode } from './cluster/nodes.js';
import { registerClusterRoutes } from './cluster/status-routes.js';
import { registerRegistryRoutes } from './registry/api-routes.js';
import { listGatewayViews } from './registry/gateway-view.js';
import { HubStore } from './store/sqlite/hub-store.js';
import { reportsHealth, type TelemetryPort } from './store/port.js';
import { parseStoreUrl } from './store/postgres/pg-pool.js';
import { PgTelemetryStore } from './store/postgres/pg-telemetry-store.js';
import { openStateStores } from './store/state.js';
import { importUnfinished, sqliteImportUnderWay } from './store/import-guard.js';
import type { AuditPort, RegistryPort } from './store/state-ports.js';

/** Settings of a hub. */
export interface HubOptions {
  dataDir: string;
  logger: Logger;
  mqttHost?: string;
  /** 0 picks a free port. */
  mqttPort?: number;
  httpHost?: string;
  /** 0 picks a free port. */
  httpPort?: number;
  /**
   * Authentication of MQTT clients and API callers. `required` is the default
   * unless the hub listens on loopback only without TLS; `open` (no
   * credentials, no ACL; logged as a warning) is refused on any other address.
   */
  auth?: { mode?: 'required' | 'open'; scrypt?: ScryptParams; rateLimit?: Partial<RateLimitOptions> };
  /** TLS for the MQTT listener and the API, from PEM files. */
  tls?: TlsFiles;
  /** Accept plain TCP on a non-loopback address (a trusted network); logged as a warning. */
  allowPlain?: boolean;
  /**
   * Addresses or CIDR ranges of reverse proxies in front of the API whose
   * X-Forwarded-For the API believes (docs/security.md); the client address
   * the failed-login limiter and the audit log see. Default: none.
   */
  trustedProxies?: string[];
  /** PROXY protocol (v1/v2) on the API listener: the TCP load balancers whose header names the client (api-proxy.ts). */
  apiProxyProtocol?: { trusted: string[]; timeoutMs?: number };
  /** Key file sealing pushed configuration secrets (created 0600 on first start; default `<dataDir>/secrets.key`). */
  secretsKeyFile?: string;
  /** Per-client bounds of the MQTT broker (docs/security.md "Limits"); unset fields keep their defaults. */
  brokerLimits?: BrokerLimitSettings;
  /**
   * PROXY protocol (v1/v2) on the MQTT listener: addresses of the TCP load
   * balancers whose header names the real client (limiter, logs, audit).
   */
  mqttProxyProtocol?: { trusted: string[]; timeoutMs?: number };
  /** Largest MQTT packet accepted after CONNECT, in bytes (default 2 MiB). */
  mqttMaxPacketBytes?: number;
  /** Clock of the identity services (claim expiry, rate limits, audit). */
  clock?: () => number;
  /**
   * Firmware (issue 7): Ed25519 public keys (base64 of the raw 32 bytes, or
   * PEM) an uploaded manifest must be signed by — when absent, any signed
   * manifest is stored and the gateways' own keys decide; how long an offer
   * waits for an answer before it is sent again.
   */
  firmware?: { trustedKeys?: string[]; reofferMs?: number };
  /**
   * Limits on stored data (issue 13): clock-skew window for readings and
   * events, quarantine quota, points per gateway, retention of readings,
   * rollups and events. Defaults and flags: docs/security.md ("Data limits").
   */
  data?: DataLimitOptions;
  /** Clock of the telemetry store and ingest: timestamp window, retention, received times (default Date.now). */
  dataClock?: () => number;
  /**
   * Where the hub's durable state lives (issue 15):
   * `postgres://user@host:5432/db?schema=name` for PostgreSQL (schema
   * migrated at start, see hub/store/postgres/), `sqlite:DIR`, or absent for
   * SQLite in `dataDir`. On PostgreSQL, telemetry, events, alarms,
   * quarantine, the registry, identities (principals, claims, API tokens) and
   * the audit chain are all in that schema (hub/store/state.ts), so every
   * hub on it sees the same credentials, as are configuration versions and
   * reports, firmware records and the firmware images' bytes (so any hub
   * node serves any image). `sqlite:DIR` moves only the telemetry file
   * (hub.sqlite) to DIR.
   */
  store?: string;
  /**
   * Work that must happen once among hub nodes sharing a PostgreSQL store
   * (issue 16 item 2, hub/cluster/lease.ts): lease time-to-live (how long a
   * dead holder's work waits for another node, default 15 s) and the node
   * heartbeat shown by `ioc-edge hub status` (default 5 s).
   */
  singletons?: { ttlMs?: number; heartbeatMs?: number };
  /** Configuration status changes kept per gateway in the history (default 1,000; older ones are deleted). */
  configEventsPerGateway?: number;
  /**
   * Run as one node of a cluster (issue 16, docs/cluster.md): Aedes linked to
   * the other nodes through Redis (messages, sessions, retained messages,
   * wills, per-client bounds), connection state per node. Needs a
   * `postgres://` store.
   */
  cluster?: ClusterOptions;
}

/** A running hub. */
export interface Hub {
  readonly mqttPort: number;
  readonly httpPort: number;
  readonly events: HubEvents;
  /** Telemetry, events, alarms, quarantine, connection state: SQLite or PostgreSQL behind the storage port (hub/store/port.ts). */
  readonly store: TelemetryPort;
  readonly broker: Broker;
  /** Credentials, claims, accounts, API tokens. */
  readonly identity: IdentityService;
  /** Gateways' site, location, versions; field devices. */
  readonly registry: RegistryPort;
  /** The tamper-evident audit chain. */
  readonly audit: AuditPort;
  readonly mqttAuth: MqttAuth;
  readonly authMode: 'required' | 'open';
  /** Prometheus metrics (GET /metrics). */
  readonly metrics: HubMetrics;
  /** The SSE live stream (GET /api/v1/stream). */
  readonly live: LiveStream;
  /** Versioned desired configurations, gateways' reports, the fleet view (issue 6). */
  readonly config: ConfigService;
  /** Remote commands to gateways with their answers (issue 6). */
  readonly commands: CommandService;
  /** Firmware images, manifests and rollouts (issue 7). */
  readonly firmware: FirmwareService;
  /** True when MQTT and the API listen with TLS (mqtts://, https://). */
  readonly tls: boolean;
  /** This node: its singletons (held through leases on PostgreSQL, always on SQLite) and the cluster view of `hub status`. */
  readonly node: HubNode;
  /** This node's link to the other hub nodes; null on a single hub. */
  readonly cluster: ClusterLink | null;
  stop(): Promise<void>;
}

/** Decides the authentication mode and refuses configurations that would expose an open or plain hub. */
function securityMode(opts: HubOptions, logger: Logger): 'required' | 'open' {
  const hosts = [opts.mqttHost ?? '127.0.0.1', opts.httpHost ?? '127.0.0.1'];
  const local = hosts.every(isLoopback);
  if (!opts.tls) {
    if (!local && !opts.allowPlain) throw new IocError('HUB_ERR_INSECURE_CONFIG', `refusing plain TCP on ${hosts.join(', ')}: configure tls (certFile, keyFile), or allowPlain for a trusted network`);
    logger.warn({ hosts, code: 'HUB_ERR_INSECURE_CONFIG' }, local ? 'plain TCP, loopback only: for local use; configure TLS for anything else' : 'plain TCP on a network address (allowPlain): credentials cross the network in clear');
  }
  const mode = opts.auth?.mode ?? (local && !opts.tls ? 'open' : 'required');
  if (mode === 'open') {
    if (!local) throw new IocError('HUB_ERR_INSECURE_CONFIG', `refusing to run without authentication on ${hosts.join(', ')}: auth mode 'open' is for loopback only`);
    logger.warn({ code: 'HUB_ERR_INSECURE_CONFIG' }, 'authentication is OFF (loopback test/demo hub): any local process may publish as any gateway');
  }
  return mode;
}

/** Starts a hub; resolves once MQTT and HTTP listen. */
export async function startHub(opts: HubOptions): Promise<Hub> {
  // A cluster node (issue 16): settings checked first, the node id on every log line.
  const clusterSettings = opts.cluster ? resolveCluster(opts.cluster, parseStoreUrl(opts.store).kind === 'postgres' ? 'postgres' : 'sqlite') : null;
  const logger = clusterSettings ? opts.logger.child({ node: clusterSettings.nodeId }) : opts.logger;
  const cluster = clusterSettings ? new ClusterLink({ settings: clusterSettings, logger: logger.child({ component: 'cluster' }) }) : null;
  const authMode = securityMode(opts, logger);
  const tlsMaterial = opts.tls ? await loadTlsFiles(opts.tls) : undefined;
  // Private data directory (0700, files 0600) and the key that seals pushed secrets (issue 13, docs/security.md).
  await secureDataDir(opts.dataDir, logger);
  const secrets = new SecretBox(await loadSecretKey(opts.secretsKeyFile ?? path.join(opts.dataDir, 'secrets.key'), logger.child({ component: 'config' })));
  const events = new HubEvents();
  let metrics: HubMetrics | null = null;
  // The storage backend (issue 15): SQLite files in the data directory unless `store` names PostgreSQL.
  const where = parseStoreUrl(opts.store);
  // Before the telemetry store starts: its recovery would rewrite `latest` from part of an archive (import-guard.ts;
  // PostgreSQL is refused by the state stores' start, before anything reads its tables).
  if (where.kind === 'sqlite' && (await sqliteImportUnderWay(opts.dataDir))) throw importUnfinished(opts.dataDir);
  const storeCommon = {
    logger: logger.child({ component: 'store' }), onCommit: (info: { ms: number; batches: number; readings: number }) => metrics?.observeCommit(info),
    limits: resolveDataLimits(opts.data), ...(opts.dataClock ? { clock: opts.dataClock } : {}),
  };
  const store: TelemetryPort = where.kind === 'postgres'
    ? new PgTelemetryStore({ ...storeCommon, connect: { url: where.url, schema: where.schema }, retentionTimer: false, ...(cluster ? { node: cluster.brokerId } : {}) })
    : new HubStore({ ...storeCommon, file: path.join(where.dir ?? opts.dataDir, 'hub.sqlite') });
  let broker: Broker | null = null;
  // Streams end when their API token is revoked (identity is built below; the epoch is read later).
  // On a cluster the stream of any node carries every node's committed readings (live-relay.ts, over the cluster bus).
  // ClusterLink.mq is mqemitter-redis, which has removeListener; its MessageBus type names only what Aedes uses.
  const relay = cluster ? new LiveRelay({ bus: () => cluster.mq as unknown as LiveBus, events, logger: logger.child({ component: 'live' }), nodeId: cluster.nodeId }) : null;
  const live = new LiveStream({ events, logger: logger.child({ component: 'live' }), tokenEpoch: (id) => identity.epoch(`token:${id}`), ...(relay ? { remote: relay } : {}) });
  const ingest = new Ingest({
    store,
    events,
    logger: logger.child({ component: 'ingest' }),
    isConnected: (id, except) => broker?.isConnected(id, except) ?? false,
    ...(opts.dataClock ? { clock: opts.dataClock } : {}),
  });
  const idLog = logger.child({ component: 'identity' });
  // Registry, identities, audit, configuration, firmware: the same backend as the telemetry store (hub/store/state.ts).
  const state = openStateStores({
    store: where, dataDir: opts.dataDir, logger: idLog, ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.configEventsPerGateway !== undefined ? { configEventsPerGateway: opts.configEventsPerGateway } : {}),
  });
  const { registry, identity: identities, audit } = state;
  const identity = new IdentityService({
    logger: idLog, store: identities, registry, audit, ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.auth?.scrypt ? { scrypt: opts.auth.scrypt } : {}),
    disconnect: (clientId, reason) => {
      if (broker?.closeEverywhere(clientId)) idLog.info({ client: clientId, reason }, 'connection closed');
    },
  });
  // Failed logins: counted in Redis on a cluster, so spreading guesses over the nodes gains nothing (redis-limiter.ts).
  const sharedLimiter = clusterSettings
    ? new RedisFailureLimiter({ redis: limiterRedis(clusterSettings.redisUrl, clusterSettings.keyPrefix, clusterSettings.nodeId), logger: idLog, limits: opts.auth?.rateLimit ?? {}, ...(opts.clock ? { clock: opts.clock } : {}) })
    : null;
  const limiter: LoginLimiter = sharedLimiter ?? new FailureLimiter(opts.auth?.rateLimit ?? {}, opts.clock);
  const provisioning = new Provisioning({
    logger: idLog, identity, enabled: authMode === 'required', ...(opts.firmware?.trustedKeys ? { firmwareKeys: opts.firmware.trustedKeys } : {}),
    publish: (topic, payload) => new Promise((resolve, reject) => broker!.instance.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, (err) => (err ? reject(err) : resolve()))),
  });
  const limits = brokerLimits(opts.brokerLimits);
  // Connected client ids of an account: `name`/`name:…` for consumers and services, any the admin allowed for integration accounts.
  const accountClients = (account: string): string[] => broker?.clientIdsWhere((c) => {
    const who = mqttAuth.identityOf(c);
    return who !== undefined && who.kind !== 'claim' && who.id === account;
  }) ?? [];
  const mqttAuth = new MqttAuth({
    logger: logger.child({ component: 'mqtt-auth' }), identity, limiter, provisioning, mode: authMode,
    connections: (account) => accountClients(account), maxConnections: limits.maxConnectionsPerAccount, maxConcurrentLogins: limits.maxConcurrentLogins,
  });
  broker = new Broker({
    logger: logger.child({ component: 'broker' }), ingest, store, events, host: opts.mqttHost ?? '127.0.0.1', port: opts.mqttPort ?? 1883,
    aedesOptions: { ...mqttAuth.aedesOptions(), authorizeForward: (_client, packet) => (metrics?.countOut(), packet) },
    packetLimits: { ...DEFAULT_PACKET_LIMITS, ...(opts.mqttMaxPacketBytes ? { maxPacketBytes: opts.mqttMaxPacketBytes } : {}) },
    ...(tlsMaterial ? { tls: tlsMaterial } : {}),
    ...(authMode === 'required' ? { gatewayOf: (c) => mqttAuth.gatewayOf(c) } : {}),
    limits, roleOf: (c) => mqttAuth.identityOf(c)?.kind ?? 'open',
    ...(opts.mqttProxyProtocol ? { proxyProtocol: opts.mqttProxyProtocol } : {}),
    ...(cluster ? { cluster } : {}),
  });
  const b0 = broker;
  // A dead node's gateways go offline after three of its missed heartbeats unless they reconnected elsewhere.
  const sweep = cluster && store instanceof PgTelemetryStore
    ? new ConnectionSweep({
        logger: logger.child({ component: 'cluster' }), intervalMs: cluster.heartbeatMs, liveNodes: () => cluster.liveBrokers(), sweep: (live) => store.sweepConnections(live),
        onOffline: (gateway) => events.emit('gateway', { gateway, online: false }),
      })
    : null;
  metrics = new HubMetrics({
    store, events, mqttClients: () => b0.instance.connectedClients, oversized: () => b0.counters.oversized,
    brokerLimits: () => ({ ...b0.limitCounters, proxyRefused: b0.counters.proxyRefused }),
    live: () => ({ clients: live.clientCount, messages: live.counters.messages, dropped: live.counters.dropped }),
    ...(cluster ? {
      nodeId: cluster.nodeId, cluster: () => node.view(), liveRelay: () => relay!.counters, limiterFallbacks: () => sharedLimiter!.counters.fallbacks,
      dependencies: () => ({ postgres: (!reportsHealth(store) || store.health().ok) && (state.pool?.health().ok ?? true), redis: cluster.health().ok }),
    } : {}),
  });
  const m0 = metrics;
  // Per-node metrics on a cluster: every series carries the node id (issue 16).
  if (cluster) m0.registry.setDefaultLabels({ node: cluster.nodeId });
  // Remote configuration and commands (issue 6): the hub's own publishes bypass the ACL (broker-link.ts).
  const link = brokerLink(() => b0.instance, (err, topic) => logger.error({ err, topic }, 'a hub service failed on a message; message dropped'));
  const config = new ConfigService({ logger: logger.child({ component: 'config' }), store: state.config, audit, broker: link, secrets, listGateways: () => store.listGateways(), ...(opts.clock ? { clock: opts.clock } : {}) });
  const commands = new CommandService({ logger: logger.child({ component: 'commands' }), broker: link, audit, isOnline: (gw) => b0.isConnected(gw, null) });
  // Firmware (issue 7): images content-addressed under <dataDir>/firmware, records in firmware.sqlite.
  const fwDb = state.firmware;
  const firmware = new FirmwareService({
    logger: logger.child({ component: 'firmware' }), db: fwDb, images: state.images, audit, broker: link, ...(opts.clock ? { clock: opts.clock } : {}),
    devices: async () => (await registry.listDevices()).map((d) => ({ gateway: d.gateway, id: d.id, profile: d.profile })),
    sites: async () => new Map((await registry.listGateways()).map((g) => [g.id, g.site])),
    ...(opts.firmware?.trustedKeys ? { trustedKeys: opts.firmware.trustedKeys.map(parsePublicKey) } : {}),
    ...(opts.firmware?.reofferMs !== undefined ? { reofferMs: opts.firmware.reofferMs } : {}),
    drivesRollouts: () => node.holds('firmware-rollouts'),
  });
  // Work that must happen once (issue 16 item 2): on the node holding its lease in PostgreSQL; on SQLite this node always holds.
  // Retention and partitions ahead of the PostgreSQL store run here instead of on the store's own timers (retentionTimer: false above).
  const node = new HubNode({
    logger: logger.child({ component: 'singletons' }), version: HUB_VERSION, ...(cluster ? { id: cluster.brokerId } : {}), // the lease holder: unique per boot
    pool: () => (store instanceof PgTelemetryStore ? store.pool : null),
    load: () => ({ connections: b0.instance.connectedClients, readingsTotal: store.counters.readings }),
    ...(opts.singletons?.ttlMs !== undefined ? { ttlMs: opts.singletons.ttlMs } : {}), ...(opts.singletons?.heartbeatMs !== undefined ? { heartbeatMs: opts.singletons.heartbeatMs } : {}),
  });
  if (store instanceof PgTelemetryStore) {
    const pg = store;
    const storeLog = logger.child({ component: 'store' });
    node.singleton('retention', every(pg.limits.retention.intervalMs, () => pg.runRetention(), storeLog, 'retention'));
    node.singleton('partitions-ahead', every(3_600_000, () => pg.ensurePartitionsAhead(), storeLog, 'creating partitions ahead'));
  }
  // Rollout waves and re-offers, re-driven from the database by whichever node holds the lease (a rollout created on another node waits one pass).
  const fwSweepMs = Math.min(5000, Math.max(50, (opts.firmware?.reofferMs ?? 60_000) / 2));
  node.singleton('firmware-rollouts', every(fwSweepMs, () => firmware.sweep(), logger.child({ component: 'firmware' }), 'firmware rollout pass'));
  // Registry updates run beside ingest; stop() waits for them (the broker's last wills arrive while it closes).
  const registryUpdates = new Set<Promise<void>>();
  let registryOpen = true;
  events.on('gateway', ({ gateway, status }) => {
    // Last wills published while the broker closes come after the registry is shut: the store keeps them.
    if (!status || !registryOpen) return;
    const p = registry.recordStatus(gateway, status).catch((err: unknown) => idLog.error({ err, gateway }, 'registry update from status failed'));
    registryUpdates.add(p);
    void p.finally(() => registryUpdates.delete(p));
  });
  let ready = false;
  const api = new Api({
    logger: logger.child({ component: 'api' }), store, host: opts.httpHost ?? '127.0.0.1', port: opts.httpPort ?? 8080, ready: () => ready && (!reportsHealth(store) || store.health().ok) && (state.pool?.health().ok ?? true) && (cluster?.health().ok ?? true),
    notReadyReason: () => (!ready ? 'starting' : reportsHealth(store) && !store.health().ok ? store.health().reason : cluster && !cluster.health().ok ? cluster.health().reason : state.pool?.health().reason),
    ...(tlsMaterial ? { https: tlsMaterial } : {}),
    ...(opts.trustedProxies?.length ? { trustProxy: opts.trustedProxies } : {}),
    ...(opts.apiProxyProtocol ? { proxyProtocol: opts.apiProxyProtocol } : {}),
    listGateways: () => listGatewayViews({ store, registry, identities }),
    extend: (app) => {
      installOpenApi(app, { version: HUB_VERSION });
      installApiAuth(app, { logger: logger.child({ component: 'api-auth' }), identity, audit, limiter, mode: authMode });
      registerIdentityRoutes(app, { identity, store: identities, audit, clientIds: (u) => accountClients(u), onTokenRevoked: (id) => live.closeToken(id) });
      registerRegistryRoutes(app, { identity, store, registry, identities });
      registerDataRoutes(app, { store });
      registerConfigRoutes(app, { config, commands });
      registerFirmwareRoutes(app, { firmware });
      registerClusterRoutes(app, { view: () => node.view() });
      live.register(app);
      registerConsoleRoutes(app);
      app.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format 0.0.4)', tags: ['observability'] } }, async (_req, reply) => reply.type(m0.contentType).send(await m0.text()));
    },
  });

  const started: Array<{ stop(): Promise<void> }> = [];
  try {
    for (const svc of [store, state, identity, metrics, ...(cluster ? [cluster] : []), ...(sharedLimiter ? [sharedLimiter] : []), ...(relay ? [relay] : []), broker, ...(sweep ? [sweep] : []), config, commands, firmware, live, api]) {
      await svc.start();
      started.push(svc);
      // A client whose identity was revoked while its CONNECT was in flight is closed once registered.
      if (svc === broker) broker.instance.on('client', (c) => mqttAuth.recheck(c));
      // The singletons start once the services they drive run, and stop before them.
      if (svc === firmware) {
        await node.start();
        started.push(node);
      }
      if (svc === broker) broker.instance.on('publish', (packet, client) => client && m0.countIn(packet.topic));
    }
  } catch (err) {
    for (const svc of started.reverse()) await svc.stop().catch(() => undefined);
    throw err;
  }
  await secureDataDir(opts.dataDir, logger, true); // what the services created, should the umask have been loose
  // The audit chain's head in the log at every start: a copy kept outside the hub's files (audit-log.ts). In the background: it reads the whole log.
  audit.verify().then(
    (v) => (v.ok ? idLog.info({ entries: v.entries, head: v.head }, 'audit log chain holds') : idLog.error({ code: 'HUB_ERR_AUDIT_CHAIN', ...v }, 'audit log chain is BROKEN: an entry was changed or removed')),
    (err: unknown) => idLog.warn({ err }, 'audit log chain not checked'),
  );
  ready = true;
  const b = broker;
  let stopping: Promise<void> | null = null;
  return {
    mqttPort: b.port,
    httpPort: api.port,
    events,
    store,
    broker: b,
    identity,
    registry,
    audit,
    mqttAuth,
    authMode,
    metrics: m0,
    live,
    config,
    commands,
    firmware,
    tls: tlsMaterial !== undefined,
    node,
    cluster,
    /** Idempotent: a second call waits for the first. */
    stop() {
      stopping ??= (async () => {
        ready = false;
        // Stop accepting traffic first, then let the store finish its commits.
        await live.stop(); // ends the open streams, so the HTTP server can close
        await relay?.stop();
        await api.stop();
        await commands.stop();
        await node.stop();
        await firmware.stop();
        await config.stop();
        await sweep?.stop();
        await b.stop();
        await cluster?.stop();
        await sharedLimiter?.stop();
        await Promise.allSettled([...registryUpdates]);
        await m0.stop();
        await identity.stop();
        registryOpen = false;
        await Promise.allSettled([...registryUpdates]);
        await state.stop();
        await store.stop();
        events.removeAllListeners();
      })();
      return stopping;
    },
  };
}
