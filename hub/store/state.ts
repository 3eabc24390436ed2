/**
 * Opens the hub's state stores — registry, identities, audit chain,
 * configuration, firmware — for the backend the hub's `store` option names
 * (issue 15): SQLite files in the data directory by default, or one
 * PostgreSQL schema for `postgres://…`. The telemetry store is opened
 * beside it in hub/hub.ts (port.ts); the state ports are in state-ports.ts.
 *
 * Registry, identities and audit of one backend share one database
 * (registry.sqlite, or the PostgreSQL schema) because claim redemption
 * writes all three in one transaction.
 *
 * On PostgreSQL the state stores have their own small pool, apart from the
 * telemetry store's: identity and registry writes never wait behind a
 * telemetry group commit (the reason registry.sqlite is a file of its own).
 * The schema is migrated at start (idempotent; the telemetry store does the
 * same).
 */
import path from 'node:path';
import { IocError } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { ImageBytes } from '../../firmware-bridge/index.js';
import type { ConfigPort } from '../config/config-port.js';
import { ConfigStore } from './sqlite/config-store.js';
import { DiskImages } from './sqlite/disk-images.js';
import type { FirmwarePort } from '../firmware/firmware-port.js';
import { FirmwareDb } from './sqlite/firmware-db.js';
import { AuditLog } from './sqlite/audit-log.js';
import { IdentityStore } from './sqlite/identity-store.js';
import { RegistryDb } from './sqlite/registry-db.js';
import { RegistryStore } from './sqlite/registry-store.js';
import { hasCheckpoint, importUnfinished } from './import-guard.js';
import { migrate } from './postgres/migrations.js';
import { pgHasCheckpoint } from './postgres/pg-export.js';
import { PgAudit } from './postgres/pg-audit.js';
import { PgConfigStore } from './postgres/pg-config.js';
import { PgFirmwareDb, PgImageStore } from './postgres/pg-firmware.js';
import { PgIdentity } from './postgres/pg-identity.js';
import { isUnavailable, PgPool, parseStoreUrl, type PgConnectOptions, type StoreUrl } from './postgres/pg-pool.js';
import { PgRegistry } from './postgres/pg-registry.js';
import type { AuditPort, IdentityPort, RegistryPort } from './state-ports.js';

/** What {@link openStateStores} needs. */
export interface StateStoreOptions {
  /** The hub's `store` option (`postgres://…`, `sqlite:DIR`, absent), or its parsed form. */
  store?: string | StoreUrl;
  /** The hub's data directory: the SQLite files live here. */
  dataDir: string;
  logger: Logger;
  /** Clock of the identity services: claim expiry, audit times (default Date.now). */
  clock?: () => number;
  /** Configuration events kept per gateway (default 1,000; hub/config/config-port.ts). */
  configEventsPerGateway?: number;
  /** Pool settings for PostgreSQL (default: 4 connections, application name `ioc-edge-hub-state`). */
  pg?: Omit<PgConnectOptions, 'url' | 'schema'>;
  /**
   * `hub import` opens the store it is filling. Anyone else is refused a
   * store an import has not finished (it holds part of an archive and no
   * verified audit chain): HUB_ERR_IMPORT_UNFINISHED.
   */
  importing?: boolean;
}

/** The hub's state stores of one backend, started and stopped together. */
export interface StateStores {
  readonly backend: 'sqlite' | 'postgres';
  readonly registry: RegistryPort;
  readonly identity: IdentityPort;
  readonly audit: AuditPort;
  /** Configuration versions, reports and events. */
  readonly config: ConfigPort;
  /** Firmware image records, manifests, rollouts and jobs. */
  readonly firmware: FirmwarePort;
  /** Firmware image bytes: `<dataDir>/firmware` on SQLite, rows in the database on PostgreSQL (every node serves every image). */
  readonly images: ImageBytes;
  /** The PostgreSQL pool of the state stores (null on SQLite): health for readiness, and tests. */
  readonly pool: PgPool | null;
  /** Opens every store (PostgreSQL: migrates the schema first). On failure closes what it opened. */
  start(): Promise<void>;
  /** Closes every store; idempotent. */
  stop(): Promise<void>;
}

/** Something opened at start and closed at stop, in reverse order. */
interface Part {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Builds the state stores for the chosen backend (nothing is opened until
 * `start()`). The one place that knows which classes implement the ports.
 */
export function openStateStores(opts: StateStoreOptions): StateStores {
  const where = typeof opts.store === 'object' ? opts.store : parseStoreUrl(opts.store);
  const clock = opts.clock ?? Date.now;
  const parts: Part[] = [];
  const log = opts.logger;
  // registry.sqlite: all state on SQLite, or what is not yet on PostgreSQL (configuration).
  let regDb: RegistryDb | null = null;
  const sqlite = (): RegistryDb => {
    if (!regDb) {
      regDb = new RegistryDb({ file: path.join(opts.dataDir, 'registry.sqlite'), logger: log, clock });
      parts.push(regDb);
    }
    return regDb;
  };
  let pool: PgPool | null = null;
  let registry: RegistryPort;
  let identity: IdentityPort;
  let audit: AuditPort;
  if (where.kind === 'postgres') {
    const p = new PgPool({ max: 4, applicationName: 'ioc-edge-hub-state', ...opts.pg, url: where.url, schema: where.schema }, log);
    pool = p;
    let ended = false;
    const end = async (): Promise<void> => {
      if (ended) return;
      ended = true;
      await p.end();
    };
    parts.push({
      async start() {
        try {
          const m = await migrate(p);
          if (m.applied.length > 0) log.info({ schema: p.schema, from: m.from, to: m.to }, 'PostgreSQL state schema migrated');
        } catch (err) {
          await end().catch(() => undefined);
          if (isUnavailable(err)) throw new IocError('HUB_ERR_STORE_UNAVAILABLE', `PostgreSQL at ${p.where} unreachable at start: ${(err as Error).message}; start it or fix --store`, { cause: err });
          throw err;
        }
      },
      stop: end,
    });
    registry = new PgRegistry({ db: p, clock });
    identity = new PgIdentity({ db: p, clock });
    audit = new PgAudit({ db: p, clock });
  } else {
    const db = sqlite();
    registry = new RegistryStore({ db });
    identity = new IdentityStore({ db });
    audit = new AuditLog({ db });
  }
  // Configuration and firmware (H2): the same backend; on PostgreSQL in the same schema and pool.
  const events = opts.configEventsPerGateway !== undefined ? { eventsPerGateway: opts.configEventsPerGateway } : {};
  let config: ConfigPort;
  let firmware: FirmwarePort;
  let images: ImageBytes;
  if (pool) {
    config = new PgConfigStore({ db: pool, ...events });
    firmware = new PgFirmwareDb({ db: pool, clock });
    images = new PgImageStore({ db: pool, clock });
  } else {
    config = new ConfigStore({ db: sqlite(), ...events });
    firmware = new FirmwareDb({ file: path.join(opts.dataDir, 'firmware.sqlite'), logger: log, clock });
    images = new DiskImages(path.join(opts.dataDir, 'firmware'));
  }
  parts.push(firmware); // the configuration store is started by ConfigService

  const started: Part[] = [];
  let stopping: Promise<void> | null = null;
  return {
    backend: where.kind,
    registry,
    identity,
    audit,
    config,
    firmware,
    images,
    pool,
    async start() {
      try {
        for (const part of parts) {
          await part.start();
          started.push(part);
        }
        if (!opts.importing) {
          // The checkpoint table of hub/cli/hub-import.ts exists only while an import is under way.
          const unfinished = pool ? await pgHasCheckpoint(pool) : regDb !== null && (await hasCheckpoint(regDb.db));
          if (unfinished) throw importUnfinished(where.kind === 'postgres' ? `schema ${pool!.schema}` : opts.dataDir);
        }
      } catch (err) {
        for (const part of started.splice(0).reverse()) await part.stop().catch(() => undefined);
        throw err;
      }
    },
    stop() {
      stopping ??= (async () => {
        for (const part of started.splice(0).reverse()) await part.stop();
      })();
      return stopping;
    },
  };
}
