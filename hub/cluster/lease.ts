/**
 * Work that must happen once in a cluster of equal hub nodes (issue 16 item
 * 2, DESIGN.md "Defaults and scale"): leases in PostgreSQL and a runner that
 * runs a piece of work only on the node holding its lease.
 *
 * - {@link PgLeases}: `acquire/renew/release` of a named lease by a holder,
 *   times by the database clock (`now()`), so nodes whose clocks disagree
 *   still agree on who holds it. Each acquisition bumps the lease's `epoch`
 *   (the row outlives a release), a fencing token: {@link PgLeases.fence}
 *   inside a transaction refuses the writes of a holder that was paused past
 *   its expiry and replaced (HUB_ERR_LEASE_LOST), and holds off a takeover
 *   until that transaction ends.
 * - {@link LeaseRunner.singleton}: runs `work` while this node holds the
 *   lease; renews every ttl/3; aborts the work (its AbortSignal) as soon as a
 *   renewal fails or the local deadline passes; another node takes over
 *   after ttl. Work must be re-drivable from database state: a successor
 *   starts it from scratch.
 * - {@link LocalSingletons}: the same interface for the single-node SQLite
 *   hub, where this node always holds.
 *
 * Schema: hub/store/postgres/schema-v4-leases.ts. Node heartbeats and the
 * cluster view for `ioc-edge hub status`: nodes.ts beside this file.
 */
import type pg from 'pg';
import { IocError } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { PgPool } from '../store/postgres/pg-pool.js';

/** A lease as its holder knows it. `expiresAt` is the database's time (ms since the epoch). */
export interface Lease {
  name: string;
  holder: string;
  /** Fencing token: grows by one with every acquisition of this name. */
  epoch: number;
  expiresAt: number;
}

/** A row of the lease table, for `hub status`. */
export interface LeaseRow {
  name: string;
  /** null when released. */
  holder: string | null;
  epoch: number;
  acquiredAt: number;
  renewedAt: number;
  expiresAt: number;
  /** Held and not expired, by the database clock. */
  live: boolean;
}

const NAME_RE = /^[a-z][a-z0-9._-]{0,62}$/;
/** As the cluster's node ids (cluster-options.ts). */
const HOLDER_RE = /^[A-Za-z0-9._-]{1,100}$/;
/** Shortest and longest time-to-live (ms): below 300 ms a loaded node cannot renew in time; above a day a dead holder blocks for too long. */
export const MIN_TTL_MS = 300;
export const MAX_TTL_MS = 86_400_000;

/** Refuses a lease name, holder or ttl that cannot be right (HUB_ERR_CLUSTER_CONFIG). */
export function checkLeaseArgs(a: { name?: string; holder?: string; ttlMs?: number }): void {
  if (a.name !== undefined && !NAME_RE.test(a.name)) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `lease name '${a.name}' is not a lower-case name of 1-63 letters, digits, '.', '_' or '-' starting with a letter`);
  if (a.holder !== undefined && !HOLDER_RE.test(a.holder)) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `node id '${a.holder}' may hold only letters, digits, '.', '_' and '-' (1–100 characters)`);
  if (a.ttlMs !== undefined && !(Number.isInteger(a.ttlMs) && a.ttlMs >= MIN_TTL_MS && a.ttlMs <= MAX_TTL_MS)) {
    throw new IocError('HUB_ERR_CLUSTER_CONFIG', `lease ttl ${String(a.ttlMs)} ms is not a whole number of ms between ${MIN_TTL_MS} and ${MAX_TTL_MS}`);
  }
}

const RETURNING = 'RETURNING name, holder, epoch, (extract(epoch FROM expires_at) * 1000)::bigint AS expires_ms';
interface Returned { name: string; holder: string; epoch: number; expires_ms: number }
const toLease = (r: Returned): Lease => ({ name: r.name, holder: r.holder, epoch: Number(r.epoch), expiresAt: Number(r.expires_ms) });

/** Leases on the store's PostgreSQL (one instance per node). */
export class PgLeases {
  constructor(private readonly db: PgPool) {}

  /**
   * Takes the lease when it is free, released or expired (by the database
   * clock), or already this holder's; each success gets a new epoch. null
   * when another holder has it. One statement: two nodes asking at once get
   * one winner (the primary key decides).
   */
  async acquire(name: string, holder: string, ttlMs: number): Promise<Lease | null> {
    checkLeaseArgs({ name, holder, ttlMs });
    const r = await this.db.query<Returned>(
      `INSERT INTO leases(name, holder, epoch, acquired_at, renewed_at, expires_at)
         VALUES ($1, $2, 1, now(), now(), now() + $3 * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = leases.epoch + 1,
         acquired_at = now(), renewed_at = now(), expires_at = excluded.expires_at
       WHERE leases.holder IS NULL OR leases.expires_at <= now() OR leases.holder = excluded.holder
       ${RETURNING}`,
      [name, holder, ttlMs],
    );
    return r.rows[0] ? toLease(r.rows[0]) : null;
  }

  /**
   * Extends a held lease by `ttlMs` from now. null when it is lost: expired,
   * released or taken by another holder meanwhile (an expired lease is not
   * renewed even when nobody took it yet: its holder must stop and acquire
   * again, under a new epoch).
   */
  async renew(lease: Lease, ttlMs: number): Promise<Lease | null> {
    checkLeaseArgs({ ttlMs });
    const r = await this.db.query<Returned>(
      `UPDATE leases SET renewed_at = now(), expires_at = now() + $4 * interval '1 millisecond'
       WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now() ${RETURNING}`,
      [lease.name, lease.holder, lease.epoch, ttlMs],
    );
    return r.rows[0] ? toLease(r.rows[0]) : null;
  }

  /** Gives the lease up at once (another node need not wait for the ttl). False when it was no longer ours. */
  async release(lease: Lease): Promise<boolean> {
    const r = await this.db.query('UPDATE leases SET holder = NULL, expires_at = now() WHERE name = $1 AND holder = $2 AND epoch = $3', [lease.name, lease.holder, lease.epoch]);
    return (r.rowCount ?? 0) === 1;
  }

  /**
   * Inside a transaction (`c` between BEGIN and COMMIT): throws
   * HUB_ERR_LEASE_LOST unless `lease` is still held under its epoch and not
   * expired. The row stays share-locked until the transaction ends, so no
   * other node can take the lease over between this check and the commit of
   * the writes that follow it.
   */
  async fence(c: pg.PoolClient | pg.Client, lease: Lease): Promise<void> {
    const r = await c.query<{ holder: string | null; epoch: number; live: boolean }>('SELECT holder, epoch, expires_at > now() AS live FROM leases WHERE name = $1 FOR SHARE', [lease.name]);
    const row = r.rows[0];
    if (row && row.holder === lease.holder && Number(row.epoch) === lease.epoch && row.live) return;
    const now = row ? (row.holder === null ? 'released' : `held by ${row.holder} under epoch ${row.epoch}${row.live ? '' : ' (expired)'}`) : 'unknown';
    throw new IocError('HUB_ERR_LEASE_LOST', `lease '${lease.name}' of ${lease.holder} under epoch ${lease.epoch} is no longer held (now ${now}): write refused; the current holder redoes the work`);
  }

  /** Every lease with its holder, by name. */
  async list(): Promise<LeaseRow[]> {
    const r = await this.db.query<{ name: string; holder: string | null; epoch: number; a: number; r: number; e: number; live: boolean }>(
      `SELECT name, holder, epoch, (extract(epoch FROM acquired_at) * 1000)::bigint AS a, (extract(epoch FROM renewed_at) * 1000)::bigint AS r,
         (extract(epoch FROM expires_at) * 1000)::bigint AS e, holder IS NOT NULL AND expires_at > now() AS live FROM leases ORDER BY name`,
    );
    return r.rows.map((x) => ({ name: x.name, holder: x.holder, epoch: Number(x.epoch), acquiredAt: Number(x.a), renewedAt: Number(x.r), expiresAt: Number(x.e), live: x.live }));
  }
}

/** What running work is given. */
export interface SingletonContext {
  /** Aborted when this node stops holding the lease (renewal failed, node stopping): stop promptly. */
  readonly signal: AbortSignal;
  /** The lease this run holds; null on a single-node hub (always held). */
  readonly lease: Lease | null;
  /**
   * Inside a transaction on the lease's database: refuses (HUB_ERR_LEASE_LOST)
   * when this run no longer holds the lease. A no-op on a single-node hub.
   */
  fence(c: pg.PoolClient | pg.Client): Promise<void>;
}

/** Work that runs while its lease is held; it should return (or throw) only when `ctx.signal` aborts. */
export type SingletonWork = (ctx: SingletonContext) => Promise<void>;

/** A singleton as `hub status` shows it from this node. */
export interface SingletonState {
  name: string;
  /** This node holds it now. */
  held: boolean;
  epoch: number | null;
}

/** The interface the hub wires: a PostgreSQL runner in a cluster, {@link LocalSingletons} on SQLite. */
export interface Singletons {
  /** Registers `work` under `name`; it runs whenever (and only while) this node holds the lease. */
  singleton(name: string, work: SingletonWork): void;
  /** What this node holds. */
  states(): SingletonState[];
  start(): Promise<void>;
  /** Aborts the work, waits for it, releases the leases. */
  stop(): Promise<void>;
}

/**
 * A periodic task as singleton work: runs `fn` at once and then every `ms`
 * (after the previous run finished) until the signal aborts. A failing run
 * is logged and the next one tries again.
 */
export function every(ms: number, fn: (ctx: SingletonContext) => Promise<unknown>, logger: Logger, what: string): SingletonWork {
  return async (ctx) => {
    while (!ctx.signal.aborted) {
      try {
        await fn(ctx);
      } catch (err) {
        if (!ctx.signal.aborted) logger.warn({ err, singleton: what }, `${what} failed; the next run tries again`);
      }
      await sleep(ms, ctx.signal);
    }
  };
}

/** Resolves after `ms` or as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/** Settings of {@link LeaseRunner}. */
export interface LeaseRunnerOptions {
  leases: PgLeases;
  /** This node's id (the holder). */
  holder: string;
  logger: Logger;
  /** Lease time-to-live (ms, default 15,000): how long a dead holder blocks its successor. */
  ttlMs?: number;
  /** How often a node without the lease asks for it (ms, default ttl/3). */
  retryMs?: number;
}

interface Entry {
  name: string;
  work: SingletonWork;
  lease: Lease | null;
  abort: AbortController | null;
  running: Promise<void> | null;
  timer: NodeJS.Timeout | null;
  /** Local monotonic deadline (performance.now() ms) by which a renewal must have succeeded. */
  deadline: number;
}

/** Runs registered work on the node that holds its lease (PostgreSQL cluster). */
export class LeaseRunner implements Singletons {
  private readonly entries = new Map<string, Entry>();
  private readonly ttl: number;
  private readonly retry: number;
  private started = false;
  private stopped = false;

  constructor(private readonly opts: LeaseRunnerOptions) {
    this.ttl = opts.ttlMs ?? 15_000;
    checkLeaseArgs({ holder: opts.holder, ttlMs: this.ttl });
    this.retry = opts.retryMs ?? Math.max(100, Math.floor(this.ttl / 3));
  }

  singleton(name: string, work: SingletonWork): void {
    checkLeaseArgs({ name });
    if (this.entries.has(name)) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `singleton '${name}' is registered twice on this node`);
    const e: Entry = { name, work, lease: null, abort: null, running: null, timer: null, deadline: 0 };
    this.entries.set(name, e);
    if (this.started && !this.stopped) this.schedule(e, 0, () => this.tryAcquire(e));
  }

  /**
   * Held = acquired, and the local deadline of the last successful renewal
   * not passed: a process resumed after a pause longer than the ttl reads
   * false at once, before its timers have run and noticed the loss.
   */
  states(): SingletonState[] {
    const now = performance.now();
    return [...this.entries.values()].map((e) => {
      const held = e.lease !== null && now < e.deadline;
      return { name: e.name, held, epoch: held ? e.lease!.epoch : null };
    });
  }

  async start(): Promise<void> {
    this.started = true;
    for (const e of this.entries.values()) this.schedule(e, 0, () => this.tryAcquire(e));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.entries.values()].map(async (e) => {
      if (e.timer) clearTimeout(e.timer);
      e.timer = null;
      const lease = e.lease;
      await this.lose(e, 'node stopping');
      if (lease) await this.opts.leases.release(lease).catch((err: unknown) => this.opts.logger.warn({ err, singleton: e.name }, 'lease not released; another node takes over after its ttl'));
    }));
  }

  private schedule(e: Entry, ms: number, fn: () => Promise<void>): void {
    if (this.stopped) return;
    if (e.timer) clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = null;
      void fn();
    }, ms);
    e.timer.unref();
  }

  private async tryAcquire(e: Entry): Promise<void> {
    const { leases, holder, logger } = this.opts;
    let lease: Lease | null = null;
    const asked = performance.now();
    try {
      lease = await leases.acquire(e.name, holder, this.ttl);
    } catch (err) {
      logger.warn({ err, singleton: e.name }, 'lease not acquired (database error); asking again');
    }
    if (this.stopped) {
      if (lease) await leases.release(lease).catch(() => undefined);
      return;
    }
    if (!lease) return this.schedule(e, this.retry, () => this.tryAcquire(e));
    e.lease = lease;
    e.deadline = asked + this.ttl;
    e.abort = new AbortController();
    const ctx: SingletonContext = { signal: e.abort.signal, lease, fence: (c) => leases.fence(c, lease) };
    logger.info({ singleton: e.name, holder, epoch: lease.epoch }, 'singleton lease acquired: running its work on this node');
    e.running = (async () => {
      try {
        await e.work(ctx);
        if (!ctx.signal.aborted) logger.warn({ singleton: e.name }, 'singleton work returned while its lease was held; restarting it');
      } catch (err) {
        if (!ctx.signal.aborted) logger.error({ err, singleton: e.name }, 'singleton work failed; releasing its lease and trying again');
      }
    })();
    void e.running.then(async () => {
      // Ended by itself while still held: give the lease up and ask again (this or another node runs it afresh).
      if (e.lease === lease && !ctx.signal.aborted) {
        await this.lose(e, 'work ended');
        await leases.release(lease).catch(() => undefined);
        this.schedule(e, this.retry, () => this.tryAcquire(e));
      }
    });
    this.schedule(e, Math.floor(this.ttl / 3), () => this.renew(e));
  }

  private async renew(e: Entry): Promise<void> {
    const lease = e.lease;
    if (!lease) return;
    const { leases, logger } = this.opts;
    const asked = performance.now();
    // The deadline watches a renewal that hangs (database unreachable until the query timeout).
    const watchdog = setTimeout(() => void this.lost(e, lease, 'no renewal before the lease expired'), Math.max(0, e.deadline - asked));
    watchdog.unref();
    let next: Lease | null = null;
    let why = 'lease expired or taken over';
    try {
      next = await leases.renew(lease, this.ttl);
    } catch (err) {
      why = `renewal failed: ${(err as Error).message}`;
      logger.warn({ err, singleton: e.name }, 'lease renewal failed');
    } finally {
      clearTimeout(watchdog);
    }
    if (e.lease !== lease) return; // lost meanwhile
    if (!next) return this.lost(e, lease, why);
    e.lease = { ...lease, expiresAt: next.expiresAt };
    e.deadline = asked + this.ttl;
    this.schedule(e, Math.floor(this.ttl / 3), () => this.renew(e));
  }

  private async lost(e: Entry, lease: Lease, why: string): Promise<void> {
    if (e.lease !== lease) return;
    this.opts.logger.warn({ singleton: e.name, epoch: lease.epoch, reason: why }, 'singleton lease lost: its work stops on this node');
    await this.lose(e, why);
    // A lease that could not be renewed is not released: it may be another's already; asking again finds out.
    this.schedule(e, this.retry, () => this.tryAcquire(e));
  }

  /** Aborts the work of `e` and waits until it ended. */
  private async lose(e: Entry, why: string): Promise<void> {
    e.lease = null;
    e.abort?.abort(new IocError('HUB_ERR_LEASE_LOST', `singleton '${e.name}' stopped: ${why}`));
    e.abort = null;
    const running = e.running;
    e.running = null;
    await running;
  }
}

/** The single-node hub (SQLite): this node always holds every singleton. */
export class LocalSingletons implements Singletons {
  private readonly entries = new Map<string, { work: SingletonWork; abort: AbortController | null; running: Promise<void> | null }>();
  private started = false;

  constructor(private readonly logger: Logger) {}

  singleton(name: string, work: SingletonWork): void {
    checkLeaseArgs({ name });
    if (this.entries.has(name)) throw new IocError('HUB_ERR_CLUSTER_CONFIG', `singleton '${name}' is registered twice on this node`);
    this.entries.set(name, { work, abort: null, running: null });
    if (this.started) this.run(name);
  }

  states(): SingletonState[] {
    return [...this.entries.keys()].map((name) => ({ name, held: this.started, epoch: null }));
  }

  async start(): Promise<void> {
    this.started = true;
    for (const name of this.entries.keys()) this.run(name);
  }

  private run(name: string): void {
    const e = this.entries.get(name)!;
    e.abort = new AbortController();
    const ctx: SingletonContext = { signal: e.abort.signal, lease: null, fence: async () => undefined };
    e.running = e.work(ctx).catch((err: unknown) => {
      if (!ctx.signal.aborted) this.logger.error({ err, singleton: name }, 'singleton work failed');
    });
  }

  async stop(): Promise<void> {
    this.started = false;
    for (const e of this.entries.values()) e.abort?.abort();
    await Promise.all([...this.entries.values()].map((e) => e.running));
  }
}
