/**
 * Hub nodes and their heartbeats (issue 16 item 5, `ioc-edge hub status`):
 * each node writes its row in `cluster_nodes` (schema-v4-leases.ts) at start
 * and every `heartbeatMs` with its load (MQTT connections, readings committed
 * per second); the cluster view joins those rows with the lease table
 * (lease.ts), so any node answers "which nodes are there, which one holds
 * which singleton, how loaded are they". On a single-node SQLite hub the same
 * view is built from this process alone ({@link localClusterView}).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { IocError } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { PgPool } from '../store/postgres/pg-pool.js';
import { checkLeaseArgs, LeaseRunner, LocalSingletons, PgLeases, type SingletonState, type Singletons, type SingletonWork } from './lease.js';

/** What a node reports of itself. */
export interface NodeLoad {
  /** Connected MQTT clients. */
  connections: number;
  /** Readings committed per second over the last heartbeat interval. */
  readingsPerS: number;
}

/** One node in the cluster view. */
export interface NodeView {
  /**
   * The node's identity per start: on a cluster the Aedes broker id
   * `<nodeId>.<bootId>`, the value `gateways.node` holds for the gateways
   * whose connection this node holds, and the lease holder. So a gateway's
   * node is found in `hub status` by equality.
   */
  id: string;
  /** The node id as on its log lines and metrics (label `node`); `id` itself off a cluster. */
  nodeId: string;
  /** The random part per start of a cluster node (null off a cluster). */
  bootId: string | null;
  host: string;
  pid: number;
  version: string;
  startedAt: number;
  lastSeen: number;
  /** Seen within three heartbeats (by the database clock) and not stopped. */
  alive: boolean;
  stoppedAt: number | null;
  load: NodeLoad;
  /** Singletons whose live lease this node holds. */
  holds: string[];
}

/** The answer of GET /api/v1/cluster and `ioc-edge hub status`. */
export interface ClusterView {
  backend: 'postgres' | 'sqlite';
  /** The node that answered. */
  self: string;
  nodes: NodeView[];
  singletons: Array<{ name: string; holder: string | null; epoch: number | null; expiresAt: number | null; live: boolean }>;
}

/**
 * Splits a node row's id into the node id of logs and metrics and the boot
 * id: a cluster broker id is `<nodeId>.<bootId>` (cluster-link.ts, boot id 6
 * hex digits); any other id (a SQLite hub, a PostgreSQL hub without Redis)
 * is its own node id with no boot id.
 */
export function splitNodeId(id: string): { nodeId: string; bootId: string | null } {
  const m = /^(.+)\.([0-9a-f]{6})$/.exec(id);
  return m ? { nodeId: m[1]!, bootId: m[2]! } : { nodeId: id, bootId: null };
}

/** A node id for this process: host, pid and a random part (two processes never share one, a restart gets a new one). */
export function newNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 60) || 'node';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Settings of {@link PgNodes}. */
export interface PgNodesOptions {
  db: PgPool;
  leases: PgLeases;
  id: string;
  version: string;
  logger: Logger;
  /** Connections now and readings committed since start (a counter); the rate is computed here. */
  load: () => { connections: number; readingsTotal: number };
  /** Default 5,000 ms. */
  heartbeatMs?: number;
  /** Rows of nodes stopped or unseen for this long are deleted (ms, default one day). */
  forgetMs?: number;
}

/** This node's row and the cluster view, on PostgreSQL. */
export class PgNodes {
  private timer: NodeJS.Timeout | null = null;
  private last: { at: number; readings: number } | null = null;
  private readonly heartbeatMs: number;

  constructor(private readonly opts: PgNodesOptions) {
    checkLeaseArgs({ holder: opts.id });
    this.heartbeatMs = opts.heartbeatMs ?? 5000;
  }

  get id(): string {
    return this.opts.id;
  }

  async start(): Promise<void> {
    const { db, id, version } = this.opts;
    await db.query(
      `INSERT INTO cluster_nodes(id, host, pid, version, started_at, last_seen, load) VALUES ($1, $2, $3, $4, now(), now(), $5)
       ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, version = excluded.version, started_at = now(), last_seen = now(), stopped_at = NULL, load = excluded.load`,
      [id, hostname(), process.pid, version, JSON.stringify(this.sample())],
    );
    this.timer = setInterval(() => void this.beat().catch((err: unknown) => this.opts.logger.warn({ err }, 'cluster heartbeat not written')), this.heartbeatMs);
    this.timer.unref();
  }

  /** Load since the previous sample. */
  private sample(): NodeLoad {
    const l = this.opts.load();
    const now = performance.now();
    const rate = this.last && now > this.last.at ? ((l.readingsTotal - this.last.readings) * 1000) / (now - this.last.at) : 0;
    this.last = { at: now, readings: l.readingsTotal };
    return { connections: l.connections, readingsPerS: Math.max(0, Math.round(rate * 10) / 10) };
  }

  /** One heartbeat: last_seen and load; forgets long-gone nodes. */
  async beat(): Promise<void> {
    const { db, id } = this.opts;
    await db.query('UPDATE cluster_nodes SET last_seen = now(), load = $2 WHERE id = $1', [id, JSON.stringify(this.sample())]);
    await db.query("DELETE FROM cluster_nodes WHERE id <> $1 AND last_seen < now() - $2 * interval '1 millisecond'", [id, this.opts.forgetMs ?? 86_400_000]);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.opts.db.query('UPDATE cluster_nodes SET stopped_at = now(), last_seen = now() WHERE id = $1', [this.opts.id]).catch((err: unknown) => this.opts.logger.warn({ err }, 'node not marked stopped'));
  }

  /** Every node known and every lease, joined. */
  async view(): Promise<ClusterView> {
    const r = await this.opts.db.query<{ id: string; host: string; pid: number; version: string; s: number; l: number; st: number | null; alive: boolean; load: NodeLoad }>(
      `SELECT id, host, pid, version, (extract(epoch FROM started_at) * 1000)::bigint AS s, (extract(epoch FROM last_seen) * 1000)::bigint AS l,
         (extract(epoch FROM stopped_at) * 1000)::bigint AS st, stopped_at IS NULL AND last_seen > now() - $1 * interval '1 millisecond' AS alive, load
       FROM cluster_nodes ORDER BY started_at, id`,
      [3 * this.heartbeatMs],
    );
    const leases = await this.opts.leases.list();
    const nodes = r.rows.map((x): NodeView => ({
      id: x.id, ...splitNodeId(x.id), host: x.host, pid: x.pid, version: x.version, startedAt: Number(x.s), lastSeen: Number(x.l), alive: x.alive, stoppedAt: x.st === null ? null : Number(x.st),
      load: { connections: Number(x.load?.connections ?? 0), readingsPerS: Number(x.load?.readingsPerS ?? 0) },
      holds: leases.filter((q) => q.live && q.holder === x.id).map((q) => q.name),
    }));
    return {
      backend: 'postgres', self: this.opts.id, nodes,
      singletons: leases.map((q) => ({ name: q.name, holder: q.live ? q.holder : null, epoch: q.epoch, expiresAt: q.live ? q.expiresAt : null, live: q.live })),
    };
  }
}

/** The cluster view of a single-node hub (SQLite): this process holds everything. */
export function localClusterView(a: { id: string; version: string; startedAt: number; load: NodeLoad; singletons: SingletonState[] }): ClusterView {
  const now = Date.now();
  return {
    backend: 'sqlite', self: a.id,
    nodes: [{ id: a.id, ...splitNodeId(a.id), host: hostname(), pid: process.pid, version: a.version, startedAt: a.startedAt, lastSeen: now, alive: true, stoppedAt: null, load: a.load, holds: a.singletons.filter((s) => s.held).map((s) => s.name) }],
    singletons: a.singletons.map((s) => ({ name: s.name, holder: s.held ? a.id : null, epoch: null, expiresAt: null, live: s.held })),
  };
}

/** Dependencies of {@link HubNode}. */
export interface HubNodeDeps {
  logger: Logger;
  version: string;
  /** This node's id (the cluster's, cluster-options.ts); default {@link newNodeId}. */
  id?: string;
  /**
   * The store's PostgreSQL pool, asked at start (the store is started by
   * then); null on a SQLite hub, which then always holds every singleton.
   */
  pool: () => PgPool | null;
  load: () => { connections: number; readingsTotal: number };
  /** Lease time-to-live (ms, default 15,000): how long a dead holder's work waits. */
  ttlMs?: number;
  heartbeatMs?: number;
}

/**
 * This hub node in the cluster, as the composition root (hub/hub.ts) wires
 * it: the singletons registered before start run through leases on
 * PostgreSQL or locally on SQLite, the heartbeat is written, and
 * {@link view} answers `hub status`. Start after the store, stop before it.
 */
export class HubNode implements Singletons {
  readonly id: string;
  private readonly pending: Array<[string, SingletonWork]> = [];
  private inner: Singletons | null = null;
  private nodes: PgNodes | null = null;
  private readonly startedAt = Date.now();
  private lastView: { at: number; readings: number } | null = null;

  constructor(private readonly deps: HubNodeDeps) {
    this.id = deps.id ?? newNodeId();
    checkLeaseArgs({ holder: this.id, ...(deps.ttlMs !== undefined ? { ttlMs: deps.ttlMs } : {}) });
  }

  singleton(name: string, work: SingletonWork): void {
    checkLeaseArgs({ name });
    if (this.inner) this.inner.singleton(name, work);
    else {
      if (this.pending.some(([n]) => n === name)) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `singleton '${name}' is registered twice on this node`);
      this.pending.push([name, work]);
    }
  }

  states(): SingletonState[] {
    return this.inner?.states() ?? this.pending.map(([name]) => ({ name, held: false, epoch: null }));
  }

  /** Whether this node holds singleton `name` now (false before start and for an unknown name). */
  holds(name: string): boolean {
    return this.inner?.states().some((s) => s.name === name && s.held) ?? false;
  }

  async start(): Promise<void> {
    const { logger } = this.deps;
    const db = this.deps.pool();
    let inner: Singletons;
    if (db) {
      const leases = new PgLeases(db);
      this.nodes = new PgNodes({ db, leases, id: this.id, version: this.deps.version, logger, load: this.deps.load, ...(this.deps.heartbeatMs ? { heartbeatMs: this.deps.heartbeatMs } : {}) });
      await this.nodes.start();
      inner = new LeaseRunner({ leases, holder: this.id, logger, ...(this.deps.ttlMs ? { ttlMs: this.deps.ttlMs } : {}) });
    } else inner = new LocalSingletons(logger);
    for (const [name, work] of this.pending.splice(0)) inner.singleton(name, work);
    this.inner = inner;
    await inner.start();
  }

  async stop(): Promise<void> {
    await this.inner?.stop();
    await this.nodes?.stop();
    this.nodes = null;
  }

  /** Nodes, their load and the singleton holders (GET /api/v1/cluster). */
  async view(): Promise<ClusterView> {
    if (this.nodes) return this.nodes.view();
    // Single node: the rate since the previous view (or since start).
    const l = this.deps.load();
    const now = Date.now();
    const prev = this.lastView ?? { at: this.startedAt, readings: 0 };
    this.lastView = { at: now, readings: l.readingsTotal };
    const rate = now > prev.at ? ((l.readingsTotal - prev.readings) * 1000) / (now - prev.at) : 0;
    return localClusterView({ id: this.id, version: this.deps.version, startedAt: this.startedAt, load: { connections: l.connections, readingsPerS: Math.max(0, Math.round(rate * 10) / 10) }, singletons: this.states() });
  }
}
