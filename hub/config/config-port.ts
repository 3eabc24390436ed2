/**
 * The storage port of remote configuration (issue 15 item 1): what
 * ConfigService needs from its store, whichever backend holds it —
 * SQLite (`ConfigStore`, config-store.ts, in the registry database) or
 * PostgreSQL (`PgConfigStore`, hub/store/postgres/pg-config.ts). Both are
 * held to one conformance suite (hub/store/test/state-conformance-config.ts).
 *
 * Command results are not stored: CommandService answers the caller and
 * writes one audit entry per command (AuditPort), so they need nothing here.
 */
import { IocError, type ConfigDesired, type ConfigReported } from '../../contract/index.js';

/** One stored version, without its document. */
export interface ConfigVersionInfo {
  gateway: string;
  version: number;
  hash: string;
  pushedAt: number;
  pushedBy: string;
  note: string | null;
}

/** A reported document and when the hub received it. */
export interface StoredReport {
  gateway: string;
  report: ConfigReported;
  receivedAt: number;
}

/** One change of a gateway's reported configuration status. */
export interface ConfigEvent {
  n: number;
  gateway: string;
  ts: number;
  version: number;
  status: string;
  running: number;
  code: string | null;
  message: string | null;
}

/**
 * Configuration events kept per gateway by default (issue 13: the history
 * grew without bound; a gateway flapping between two states once a minute
 * would add half a million rows a year). Older ones are deleted as new ones
 * are written.
 */
export const DEFAULT_CONFIG_EVENTS_PER_GATEWAY = 1000;

/** Versioned desired configurations, gateways' reports, configuration events. */
export interface ConfigPort {
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Stores the next version built from the newest stored one. Atomic, also
   * between hub processes: two pushes never store one version number twice,
   * and `build` always sees the version its document replaces. `build` may
   * throw (nothing is stored).
   */
  addVersion(gateway: string, build: (latest: ConfigVersionInfo | null) => ConfigDesired | Promise<ConfigDesired>): Promise<ConfigDesired>;
  /** A gateway's versions, newest first (default 100). */
  versions(gateway: string, limit?: number): Promise<ConfigVersionInfo[]>;
  /** One version's document (the newest when `version` is omitted); null if none. */
  document(gateway: string, version?: number): Promise<ConfigDesired | null>;
  /** The hash of one version; null when there is no such version. */
  hashOf(gateway: string, version: number): Promise<string | null>;
  /** Every stored document whose JSON text contains `text`, by gateway then version (pre-filter of the start-up sealing of secrets). */
  documentsContaining(text: string): Promise<ConfigDesired[]>;
  /** Rewrites one stored version's document and hash (sealing rows stored in clear; nothing else). */
  replaceDocument(doc: ConfigDesired): Promise<void>;
  /** Leaves no copy of rows replaced by {@link replaceDocument} in free space the backend controls. */
  scrub(): Promise<void>;
  /** The newest document of every gateway. */
  latestDocuments(): Promise<ConfigDesired[]>;
  /** Stores a gateway's report; adds an event when status, version, running version or error changed, keeping the newest N per gateway. */
  saveReport(gateway: string, report: ConfigReported, receivedAt: number): Promise<void>;
  /** Last reports, of one gateway or all. */
  reports(gateway?: string): Promise<StoredReport[]>;
  /** Status changes of a gateway, newest first (default 100). */
  events(gateway: string, limit?: number): Promise<ConfigEvent[]>;
  /** Gateways with at least one version. */
  gateways(): Promise<string[]>;
}

/** The history row a report adds, or null when nothing an operator reads changed. */
export function eventOf(old: ConfigReported | null, report: ConfigReported): Omit<ConfigEvent, 'n' | 'gateway'> | null {
  if (old && old.status === report.status && old.version === report.version && old.running.version === report.running.version && old.error?.message === report.error?.message) return null;
  return { ts: report.ts, version: report.version, status: report.status, running: report.running.version, code: report.error?.code ?? null, message: report.error?.message ?? null };
}

/** The events bound, checked: a positive whole number. */
export function checkKeep(n: number | undefined): number {
  const keep = n ?? DEFAULT_CONFIG_EVENTS_PER_GATEWAY;
  if (!Number.isSafeInteger(keep) || keep < 1) throw new IocError('CONFIG_ERR_INVALID', `configuration events per gateway (configEventsPerGateway) must be a whole number of at least 1, not ${String(n)}`);
  return keep;
}
