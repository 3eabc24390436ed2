/**
 * The hub's Prometheus metrics (prom-client, served at `GET /metrics` to a
 * `viewer` token). Most values are read at scrape time from the services'
 * own counters; the rest are counted on the hub's event bus, from Aedes's
 * `publish` event (messages in), the `authorizeForward` hook (messages out)
 * and the store's group-commit callback (commit latency). Each hub has its
 * own `Registry` — never prom-client's global one: tests run many hubs in
 * one process. Names follow `ioc_edge_<what>_<unit>`.
 *
 * On a cluster (issue 16) every series carries a `node` label (this node's
 * id), so one Prometheus scraping all nodes tells them apart; values read
 * from PostgreSQL (gateways, alarms, backlog) are the cluster's and equal on
 * every node (aggregate with `max without (node)`). The cluster view (H6's
 * node table, hub/cluster/nodes.ts) adds `ioc_edge_cluster_*`: nodes alive,
 * each member's connections and readings/s, singletons without a holder;
 * `ioc_edge_hub_dependency_up` says whether PostgreSQL and Redis answer.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { parseTopic } from '../contract/index.js';
import type { HubEventMap, HubEvents } from './hub-events.js';
import { countsDataLimits, type DataLimitCounters } from './data-limits.js';
import type { ClusterView } from './cluster/nodes.js';
import type { TelemetryPort } from './store/port.js';

/** Where the hub's metrics come from. */
export interface HubMetricsSources {
  store: TelemetryPort;
  events: HubEvents;
  /** MQTT clients connected now. */
  mqttClients: () => number;
  /** Connections closed for an oversized packet. */
  oversized: () => number;
  live: () => { clients: number; messages: number; dropped: number };
  clock?: () => number;
  /** What the broker's per-client bounds refused, dropped or disconnected (hub/broker/broker-limits.ts). */
  brokerLimits?: () => { subscriptionsRefused: number; nulFiltersRefused: number; retainRefused: number; queueDropped: number; slowReaders: number; quarantinedNotForwarded: number; connectionsRefused: number; proxyRefused: number; publishesDelayed?: number; publishRateDisconnects?: number };
  /** This node's id on a cluster: the `node` label of every series. */
  nodeId?: string;
  /** The cluster view (PgNodes.view): nodes, their load, singleton holders. */
  cluster?: () => Promise<ClusterView>;
  /** Whether each dependency answers now (`postgres`, `redis`): 1 or 0 in ioc_edge_hub_dependency_up. */
  dependencies?: () => Record<string, boolean>;
  /** The shared failed-login limiter (redis-limiter.ts): calls that fell back to this node's own counting. */
  limiterFallbacks?: () => number;
  /** The live relay (live-relay.ts): updates published to and received from the other nodes. */
  liveRelay?: () => { published: number; received: number; malformed: number };
}


/** The hub's metrics registry and the counters fed by hooks. */
export class HubMetrics {
  readonly registry = new Registry();
  private readonly received: Counter<'kind'>;
  private readonly receivedByKind = new Map<string, number>();
  private sentCount = 0;
  private readonly sent: Counter;
  private readonly commit: Histogram;
  private readonly events: Counter<'severity'>;
  private readonly quarantined: Counter;
  private readonly started: number;

  constructor(private readonly src: HubMetricsSources) {
    const reg = this.registry;
    const clock = src.clock ?? Date.now;
    this.started = clock();
    const registers = [reg];
    if (src.nodeId !== undefined) reg.setDefaultLabels({ node: src.nodeId });
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({ name, help, registers, collect() { this.set(read()); } });
    };
    const total = (name: string, help: string, read: () => number): void => {
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
    };
    gauge('ioc_edge_process_uptime_seconds', 'Seconds since the hub started.', () => (clock() - this.started) / 1000);
    gauge('ioc_edge_process_resident_memory_bytes', 'Resident set size of the hub process.', () => process.memoryUsage.rss());
    gauge('ioc_edge_process_heap_used_bytes', 'V8 heap in use.', () => process.memoryUsage().heapUsed);

    gauge('ioc_edge_hub_mqtt_clients_connected', 'MQTT clients connected now (gateways, consumers, services).', src.mqttClients);
    total('ioc_edge_hub_mqtt_oversized_packets_total', 'Connections closed for a packet over the size limit.', src.oversized);
    const bl = src.brokerLimits;
    if (bl) {
      total('ioc_edge_hub_mqtt_subscriptions_refused_total', 'Topic filters refused (SUBACK 0x80) for the per-session subscription bound.', () => bl().subscriptionsRefused);
      total('ioc_edge_hub_mqtt_nul_filters_refused_total', 'Topic filters refused (SUBACK 0x80) for containing U+0000.', () => bl().nulFiltersRefused);
      total('ioc_edge_hub_mqtt_retain_refused_total', 'Retained PUBLISHes delivered without being retained (topic, size or per-client count).', () => bl().retainRefused);
      total('ioc_edge_hub_mqtt_queue_dropped_total', 'Messages dropped, oldest first, from full offline queues of persistent sessions.', () => bl().queueDropped);
      total('ioc_edge_hub_mqtt_slow_consumers_disconnected_total', 'Clients disconnected because their unread output passed the bound.', () => bl().slowReaders);
      total('ioc_edge_hub_mqtt_quarantined_not_forwarded_total', 'Deliveries of quarantined payloads suppressed.', () => bl().quarantinedNotForwarded);
      total('ioc_edge_hub_mqtt_connections_refused_total', 'CONNECTs refused for the client id length bound.', () => bl().connectionsRefused);
      total('ioc_edge_hub_mqtt_publishes_delayed_total', 'PUBLISHes held for the per-client publish rate (PUBACK delayed).', () => bl().publishesDelayed ?? 0);
      total('ioc_edge_hub_mqtt_publish_rate_disconnects_total', 'Clients disconnected past the publish rate hard limit (too many messages held at once).', () => bl().publishRateDisconnects ?? 0);
      total('ioc_edge_hub_mqtt_proxy_refused_total', 'Connections closed for a missing, malformed or untrusted PROXY protocol header.', () => bl().proxyRefused);
    }
    // Counted per message in plain numbers and handed to prom-client at scrape time: a labelled
    // inc() hashes its labels on every call, twice per message on the broker's thread.
    const receivedByKind = this.receivedByKind;
    const sentCount = (): number => this.sentCount;
    this.received = new Counter({
      name: 'ioc_edge_hub_mqtt_messages_received_total', help: 'PUBLISH packets accepted from clients, by topic kind.', labelNames: ['kind'], registers,
      collect() {
        this.reset();
        for (const [kind, n] of receivedByKind) this.inc({ kind }, n);
      },
    });
    this.sent = new Counter({ name: 'ioc_edge_hub_mqtt_messages_sent_total', help: 'PUBLISH packets forwarded to subscribers.', registers, collect() { this.reset(); this.inc(sentCount()); } });

    this.commit = new Histogram({
      name: 'ioc_edge_hub_ingest_commit_duration_seconds', help: 'Telemetry group commit: first batch queued to COMMIT returned (fsync included).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers,
    });
    const c = src.store.counters;
    total('ioc_edge_hub_ingest_commits_total', 'Group commits of telemetry.', () => c.commits);
    total('ioc_edge_hub_ingest_batches_total', 'Telemetry batches committed.', () => c.batches);
    total('ioc_edge_hub_ingest_readings_total', 'Readings committed.', () => c.readings);
    total('ioc_edge_hub_ingest_duplicate_batches_total', 'Replayed batches recognised and dropped.', () => c.duplicates);
    this.events = new Counter({ name: 'ioc_edge_hub_events_total', help: 'Gateway events committed, by severity.', labelNames: ['severity'], registers });
    this.quarantined = new Counter({ name: 'ioc_edge_hub_quarantined_total', help: 'Malformed payloads quarantined.', registers });
    // Data limits (issue 13, hub/data-limits.ts): what the store refused or deleted to stay in its budgets.
    // (A store without these counters reads 0.)
    const limits: DataLimitCounters = countsDataLimits(src.store) ? src.store : { dropped: { future: 0, past: 0, series_limit: 0, age: 0, size: 0, rollup_age: 0 }, retained: { quarantineDropped: 0, eventsDropped: 0, alarmsDropped: 0, runs: 0 }, quarantineUsage: () => ({ rows: 0, bytes: 0 }) };
    const kept = limits.retained;
    total('ioc_edge_hub_quarantine_dropped_total', 'Quarantined payloads deleted, oldest first, to keep the quarantine within its quota.', () => kept.quarantineDropped);
    gauge('ioc_edge_hub_quarantine_bytes', 'Payload bytes held in the quarantine.', () => limits.quarantineUsage().bytes);
    const dropped = limits.dropped;
    new Counter({
      name: 'ioc_edge_hub_readings_dropped_total', labelNames: ['reason'], registers,
      help: 'Readings refused at ingest (future, past: outside the clock window; series_limit: a new point past the per-gateway cap) or deleted by retention (age, size: rolled up first; rollup_age: left the last rollup level).',
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(dropped)) this.inc({ reason }, n as number);
      },
    });
    total('ioc_edge_hub_events_dropped_total', 'Gateway events and cleared alarms deleted by retention (age, or count per gateway).', () => kept.eventsDropped + kept.alarmsDropped);

    const store = src.store;
    new Gauge({
      name: 'ioc_edge_hub_gateways', help: 'Gateways known to the hub, by connection state.', labelNames: ['state'], registers,
      async collect() {
        const all = await store.listGateways();
        const online = all.filter((g) => g.online).length;
        this.set({ state: 'online' }, online);
        this.set({ state: 'offline' }, all.length - online);
      },
    });
    new Gauge({
      name: 'ioc_edge_hub_gateway_backlog_readings', help: 'Readings waiting in each gateway\'s outbox, as its last status said.', labelNames: ['gateway'], registers,
      async collect() {
        this.reset();
        for (const g of await store.listGateways()) if (g.status?.backlog) this.set({ gateway: g.id }, g.status.backlog.rows);
      },
    });
    new Gauge({
      name: 'ioc_edge_hub_alarms_active', help: 'Active alarms, by severity.', labelNames: ['severity'], registers,
      async collect() {
        this.reset();
        const by = new Map<string, number>([['warning', 0], ['critical', 0]]);
        for (const r of await store.activeAlarmCounts()) by.set(r.severity, (by.get(r.severity) ?? 0) + r.count);
        for (const [severity, n] of by) this.set({ severity }, n);
      },
    });
    gauge('ioc_edge_hub_live_clients', 'Live stream (SSE) clients connected now.', () => src.live().clients);
    total('ioc_edge_hub_live_messages_total', 'Messages written to live stream clients.', () => src.live().messages);
    total('ioc_edge_hub_live_dropped_clients_total', 'Live stream clients disconnected for not reading.', () => src.live().dropped);
    this.clusterMetrics(registers, total);
  }

  /** The cluster-wide series (issue 16); each only where its source is given. */
  private clusterMetrics(registers: Registry[], total: (name: string, help: string, read: () => number) => void): void {
    const { cluster, dependencies, limiterFallbacks, liveRelay } = this.src;
    if (dependencies) {
      new Gauge({
        name: 'ioc_edge_hub_dependency_up', help: 'Whether a dependency of this node answers (1) or not (0): postgres, redis. A node missing either is not ready and acknowledges no telemetry.', labelNames: ['dependency'], registers,
        collect() {
          for (const [dependency, up] of Object.entries(dependencies())) this.set({ dependency }, up ? 1 : 0);
        },
      });
    }
    if (limiterFallbacks) total('ioc_edge_hub_login_limiter_fallbacks_total', 'Failed-login checks counted on this node alone because Redis did not answer.', limiterFallbacks);
    if (liveRelay) {
      total('ioc_edge_hub_live_relay_published_total', 'Live updates (committed batches, events, gateway changes) this node published to the other nodes.', () => liveRelay().published);
      total('ioc_edge_hub_live_relay_received_total', 'Live updates received from the other nodes (while this node had live clients).', () => liveRelay().received);
    }
    if (!cluster) return;
    // One read of the node table per scrape, shared by the gauges below.
    let view: { at: number; p: Promise<ClusterView | null> } | null = null;
    const read = (): Promise<ClusterView | null> => {
      const now = Date.now();
      if (!view || now - view.at > 1000) view = { at: now, p: cluster().catch(() => null) };
      return view.p;
    };
    new Gauge({
      name: 'ioc_edge_cluster_nodes', help: 'Hub nodes in the node table, by state (alive: heartbeat within three intervals; stopped: left cleanly; dead: silent, not stopped).', labelNames: ['state'], registers,
      async collect() {
        const v = await read();
        if (!v) return;
        const alive = v.nodes.filter((n) => n.alive).length;
        const stopped = v.nodes.filter((n) => !n.alive && n.stoppedAt !== null).length;
        this.set({ state: 'alive' }, alive);
        this.set({ state: 'stopped' }, stopped);
        this.set({ state: 'dead' }, v.nodes.length - alive - stopped);
      },
    });
    new Gauge({
      name: 'ioc_edge_cluster_member_connections', help: 'MQTT connections of each live hub node (member), from its last heartbeat.', labelNames: ['member'], registers,
      async collect() {
        const v = await read();
        this.reset();
        for (const n of v?.nodes ?? []) if (n.alive) this.set({ member: n.id }, n.load.connections);
      },
    });
    new Gauge({
      name: 'ioc_edge_cluster_member_readings_per_second', help: 'Readings committed per second by each live hub node (member), over its last heartbeat interval.', labelNames: ['member'], registers,
      async collect() {
        const v = await read();
        this.reset();
        for (const n of v?.nodes ?? []) if (n.alive) this.set({ member: n.id }, n.load.readingsPerS);
      },
    });
    new Gauge({
      name: 'ioc_edge_cluster_singletons_unheld', help: 'Work that must run once (leases) with no live holder now: alert if it stays above 0.', registers,
      async collect() {
        const v = await read();
        if (v) this.set(v.singletons.filter((q) => !q.live).length);
      },
    });
  }

  /** Counts a PUBLISH accepted from a client (Aedes `publish` event). */
  countIn(topic: string): void {
    const kind = parseTopic(topic)?.kind ?? (topic.startsWith('$SYS') ? 'sys' : 'other');
    this.receivedByKind.set(kind, (this.receivedByKind.get(kind) ?? 0) + 1);
  }

  /** Counts a PUBLISH forwarded to a subscriber (from `authorizeForward`). */
  countOut(): void {
    this.sentCount++;
  }

  /** The store's group-commit callback. */
  readonly observeCommit = (info: { ms: number }): void => {
    this.commit.observe(info.ms / 1000);
  };

  private readonly onEvent = ({ event }: HubEventMap['event'][0]): void => {
    this.events.inc({ severity: event.severity });
  };

  private readonly onQuarantine = (): void => {
    this.quarantined.inc();
  };

  async start(): Promise<void> {
    this.src.events.on('event', this.onEvent);
    this.src.events.on('quarantine', this.onQuarantine);
  }

  async stop(): Promise<void> {
    this.src.events.off('event', this.onEvent);
    this.src.events.off('quarantine', this.onQuarantine);
  }

  /** Exposition text for GET /metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
