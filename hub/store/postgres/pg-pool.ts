/**
 * The PostgreSQL connection pool of the hub's store, and how the store knows
 * whether its database is there.
 *
 * - One `pg.Pool` per store with timeouts on connecting, on each statement
 *   (server-side `statement_timeout`, and client-side `query_timeout` for a
 *   server that stopped answering), on idle connections and on transactions
 *   left idle; TCP keep-alive so a dead peer is noticed.
 * - The store's schema is set per connection (`search_path`), so every
 *   statement names tables unqualified and tests each get their own schema.
 * - `bigint` and `numeric` come back as JS numbers: the store keeps
 *   milliseconds and counts, far below 2^53.
 * - Health: a statement that fails because the database is unreachable
 *   (connection refused or reset, server shut down, timeout) marks the pool
 *   unhealthy with the reason; a probe (`SELECT 1`) every `probeMs` turns it
 *   healthy again when the database answers. Readiness and the API read it.
 */
import pg from 'pg';
import { IocError } from '../../../contract/index.js';
import type { Logger } from '../../../lib/index.js';
import type { StoreHealth } from '../port.js';

/** Where and how to connect. */
export interface PgConnectOptions {
  /** `postgres://user@host:port/db`; a `schema` query parameter names the schema (default `ioc_edge`). */
  url: string;
  /** Overrides the URL's schema. */
  schema?: string;
  /** Most connections (default 8). */
  max?: number;
  /** Give up connecting after (ms, default 5000). */
  connectTimeoutMs?: number;
  /** Longest statement (ms, default 30,000). */
  statementTimeoutMs?: number;
  /** Close connections idle for (ms, default 30,000). */
  idleTimeoutMs?: number;
  /** Shown in pg_stat_activity (default `ioc-edge-hub`). */
  applicationName?: string;
}

/** Store URLs as the CLI, the configuration file and the environment give them. */
export type StoreUrl = { kind: 'sqlite'; dir: string | null } | { kind: 'postgres'; url: string; schema: string };

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Parses `--store`: `postgres://…` / `postgresql://…` (optional `?schema=name`),
 * `sqlite:DIR`, or empty for the default (SQLite in the data directory).
 */
export function parseStoreUrl(s: string | undefined): StoreUrl {
  if (s === undefined || s === '' || s === 'sqlite' || s === 'sqlite:') return { kind: 'sqlite', dir: null };
  if (s.startsWith('sqlite:')) return { kind: 'sqlite', dir: s.slice('sqlite:'.length) };
  if (s.startsWith('postgres://') || s.startsWith('postgresql://')) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new IocError('HUB_ERR_STORE_URL', `store '${redact(s)}' is not a valid URL: write postgres://user@host:5432/database?schema=name`);
    }
    const schema = u.searchParams.get('schema') ?? 'ioc_edge';
    if (!SCHEMA_RE.test(schema)) throw new IocError('HUB_ERR_STORE_URL', `schema '${schema}' in the store URL is not a plain lower-case identifier (letters, digits, _)`);
    u.searchParams.delete('schema');
    return { kind: 'postgres', url: u.toString(), schema };
  }
  throw new IocError('HUB_ERR_STORE_URL', `store '${redact(s)}' is neither postgres://… nor sqlite:DIR`);
}

/** The URL without its password, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

const INT8 = 20;
const NUMERIC = 1700;
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8 || oid === NUMERIC) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
} as unknown as pg.CustomTypesConfig;

/** SQLSTATEs and Node error codes that mean "the database is not there", not "the statement is wrong". */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  const code = e?.code ?? '';
  if (/^(08|57P0[1-3]|53300|3D000|28000|28P01)/.test(code)) return true; // connection exception, shutdown, too many connections, no database, no access
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection timeout|Client has encountered a connection error/i.test(e?.message ?? '');
}

/** A pool with health tracking. */
export class PgPool {
  readonly pool: pg.Pool;
  readonly schema: string;
  /** host:port/database, for messages. */
  readonly where: string;
  private state: StoreHealth = { ok: true };
  private probeTimer: NodeJS.Timeout | null = null;
  private probing = false;
  private readonly listeners = new Set<(h: StoreHealth) => void>();

  constructor(opts: PgConnectOptions, private readonly logger: Logger, private readonly probeMs = 1000) {
    const parsed = parseStoreUrl(opts.url);
    if (parsed.kind !== 'postgres') throw new IocError('HUB_ERR_STORE_URL', `store '${redact(opts.url)}' is not a postgres:// URL`);
    this.schema = opts.schema ?? parsed.schema;
    if (!SCHEMA_RE.test(this.schema)) throw new IocError('HUB_ERR_STORE_URL', `schema '${this.schema}' is not a plain lower-case identifier (letters, digits, _)`);
    const u = new URL(parsed.url);
    this.where = `${u.hostname}:${u.port || 5432}${u.pathname}`;
    const statementMs = opts.statementTimeoutMs ?? 30_000;
    this.pool = new pg.Pool({
      connectionString: parsed.url,
      max: opts.max ?? 8,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      idleTimeoutMillis: opts.idleTimeoutMs ?? 30_000,
      statement_timeout: statementMs,
      // A server that stopped answering (network cut): the client gives up a little after the server would have.
      query_timeout: statementMs + 5000,
      idle_in_transaction_session_timeout: statementMs * 2,
      lock_timeout: statementMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: opts.applicationName ?? 'ioc-edge-hub',
      options: `-c search_path=${this.schema}`,
      types,
    });
    // An idle connection that dies (server restart, cut link) is reported here; without a listener it would crash the process.
    this.pool.on('error', (err) => this.failed(err));
  }

  /** Current health. */
  health(): StoreHealth {
    return this.state;
  }

  /** Called with every change of health. */
  onHealth(fn: (h: StoreHealth) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Runs one parameterised statement; marks the pool unhealthy when the
   * database is unreachable. With `name`, a prepared statement of that name
   * (prepared on each connection at its first use, then only bound and
   * executed): for the hot statements, whose parse and plan would otherwise
   * be paid on every call.
   */
  async query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[], name?: string): Promise<pg.QueryResult<R>> {
    try {
      return await (name ? this.pool.query<R>({ name, text, values: values ?? [] }) : this.pool.query<R>(text, values));
    } catch (err) {
      this.failed(err);
      throw err;
    }
  }

  /** Runs `fn` inside BEGIN … COMMIT on one connection (ROLLBACK when it throws). */
  async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      this.failed(err);
      throw err;
    }
    // pg-pool takes its error listener off a client while it is checked out: a link that dies between two
    // statements of the transaction would otherwise be an uncaught 'error' event and end the process.
    let broken = false;
    const lost = (err: Error): void => {
      broken = true;
      this.failed(err);
    };
    client.on('error', lost);
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      broken = isUnavailable(err);
      if (!broken) await client.query('ROLLBACK').catch(() => undefined);
      this.failed(err);
      throw err;
    } finally {
      client.removeListener('error', lost);
      client.release(broken ? true : undefined);
    }
  }

  /** Records a failure; only "unreachable" failures change health. */
  failed(err: unknown): void {
    if (!isUnavailable(err)) return;
    const reason = `PostgreSQL at ${this.where} unreachable: ${(err as Error).message || String((err as { code?: string }).code)}`;
    if (this.state.ok) this.logger.error({ err, code: 'HUB_ERR_STORE_UNAVAILABLE' }, 'PostgreSQL unreachable: telemetry is not acknowledged until it returns');
    this.set({ ok: false, reason });
    this.startProbe();
  }

  private set(h: StoreHealth): void {
    const changed = h.ok !== this.state.ok || h.reason !== this.state.reason;
    this.state = h;
    if (changed) for (const fn of this.listeners) fn(h);
  }

  private startProbe(): void {
    if (this.probeTimer) return;
    this.probeTimer = setInterval(() => void this.probe(), this.probeMs);
    this.probeTimer.unref();
  }

  /** One probe: healthy again when `SELECT 1` answers. */
  async probe(): Promise<boolean> {
    if (this.probing) return this.state.ok;
    this.probing = true;
    try {
      await this.pool.query('SELECT 1');
      if (!this.state.ok) this.logger.info({ where: this.where }, 'PostgreSQL reachable again: acknowledging telemetry');
      this.set({ ok: true });
      if (this.probeTimer) clearInterval(this.probeTimer);
      this.probeTimer = null;
      return true;
    } catch (err) {
      if (isUnavailable(err)) this.set({ ok: false, reason: `PostgreSQL at ${this.where} unreachable: ${(err as Error).message}` });
      return false;
    } finally {
      this.probing = false;
    }
  }

  async end(): Promise<void> {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = null;
    this.listeners.clear();
    await this.pool.end();
  }
}
