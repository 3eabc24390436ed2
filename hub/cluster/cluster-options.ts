/**
 * Settings of a hub that runs as one node of a cluster (issue 16,
 * docs/cluster.md): the Redis that links the nodes' brokers, this node's id
 * and the key prefix that separates one cluster's keys from another's on a
 * shared Redis. Validated once here; the link itself is cluster-link.ts.
 */
import os from 'node:os';
import { IocError } from '../../contract/index.js';

/** What a hub is given (`hub run --redis URL`, IOC_EDGE_REDIS). */
export interface ClusterOptions {
  /** `redis://[user:pass@]host:port[/db]` (or `rediss://` for TLS). */
  redis: string;
  /** This node's id: letters, digits, `.`, `_`, `-` (default `<hostname>-<pid>`). Shown in logs and metrics. */
  nodeId?: string;
  /** Prefix of every Redis key and channel of this cluster (default `ioc-edge:`). */
  keyPrefix?: string;
  /**
   * Aedes heartbeat interval, ms (default 15,000). Another node's clients'
   * last wills are published by the survivors 3–8 intervals after it stopped
   * beating (Aedes `_clearWills`), so this sets how soon a dead node's
   * gateways are seen offline.
   */
  heartbeatMs?: number;
}

/** Validated settings. */
export interface ClusterSettings {
  redisUrl: string;
  nodeId: string;
  keyPrefix: string;
  heartbeatMs: number;
}

/** Node ids travel in `$SYS/<id>/…` topics and in `will:<id>:<client>` keys: no `/`, `:`, `+`, `#`. */
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
const PREFIX = /^[A-Za-z0-9._:-]{1,64}$/;

/** This process's default node id: host name and pid, stable while the process lives. */
export function defaultNodeId(): string {
  const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 48) || 'node';
  return `${host}-${process.pid}`;
}

/**
 * Checks cluster settings against the store they come with: a cluster needs
 * PostgreSQL (SQLite files are one node's). Throws HUB_ERR_CLUSTER_CONFIG
 * naming the setting, the value and what to do.
 */
export function resolveCluster(opts: ClusterOptions, storeKind: 'postgres' | 'sqlite'): ClusterSettings {
  if (storeKind !== 'postgres') {
    throw new IocError('HUB_ERR_CLUSTER_CONFIG', 'a cluster (--redis / IOC_EDGE_REDIS) needs the store in PostgreSQL: add --store postgres://user@host:5432/db?schema=name (SQLite files belong to one node)');
  }
  let url: URL;
  try {
    url = new URL(opts.redis);
  } catch {
    throw new IocError('HUB_ERR_CLUSTER_CONFIG', `--redis '${opts.redis}' is not a URL: give redis://host:6379`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new IocError('HUB_ERR_CLUSTER_CONFIG', `--redis '${opts.redis}': scheme '${url.protocol}' is not redis: or rediss:`);
  if (!url.hostname) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `--redis '${opts.redis}' names no host: give redis://host:6379`);
  const nodeId = opts.nodeId ?? defaultNodeId();
  if (!NODE_ID.test(nodeId)) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `cluster node id '${nodeId}' may hold only letters, digits, '.', '_' and '-' (1–64 characters)`);
  const keyPrefix = opts.keyPrefix ?? 'ioc-edge:';
  if (!PREFIX.test(keyPrefix)) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `cluster key prefix '${keyPrefix}' may hold only letters, digits, '.', '_', ':' and '-' (1–64 characters)`);
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  if (!Number.isInteger(heartbeatMs) || heartbeatMs < 100) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `cluster heartbeat of ${heartbeatMs} ms: give a whole number of milliseconds ≥ 100`);
  return Object.freeze({ redisUrl: opts.redis, nodeId, keyPrefix, heartbeatMs });
}
