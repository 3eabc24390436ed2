/**
 * Remote configuration, hub side: versioned desired configurations per
 * gateway, checked before they are accepted (contract `checkDesiredConfig`:
 * the gateway configuration schema and its second pass, the shipped device
 * profiles plus those the gateway reports and those pushed with the
 * configuration — overlapping registers and all); each accepted version is
 * stored (who, when, note), audited, and published as the retained desired
 * document. The gateways' reports are stored as they arrive; the fleet view
 * compares desired with reported per gateway.
 *
 * Secrets (issue 13, secret-box.ts): passwords are stored sealed with the
 * hub's key and opened only for the gateway's own retained document (which
 * only that gateway and hub service accounts may read); API readers see
 * `redacted:v<version it was set in>`; the hash is computed with secrets
 * masked (contract `configHash`). Versions stored in clear by an earlier hub
 * are sealed and re-hashed at start, and a reported running hash is replaced
 * by the hub's hash of that version.
 *
 * Retained messages live in the broker's memory: at start the newest version
 * of every gateway is published again.
 */
import { EventEmitter } from 'node:events';
import {
  checkDesiredConfig, CONFIG_MAX_BYTES, CONFIG_MAX_DEPTH, configHash, nestedDeeperThan, DEFAULT_CONFIRM_WINDOW_S, IocError, isValidId, parseJson, parseTopic, ROOT, topics, validateConfigReported,
  type ConfigDesired, type ConfigProblem, type ConfigReported, type ErrorCode,
} from '../../contract/index.js';
import { loadProfileDir, PROFILES_DIR, validateProfile, type DeviceProfile } from '../../device-profiles/index.js';
import type { Logger } from '../../lib/index.js';
import type { Actor } from '../identity/identity-service.js';
import type { AuditPort } from '../store/state-ports.js';
import type { ConfigPort, ConfigVersionInfo, StoredReport } from './config-port.js';
import { jsonDiff, type JsonChange } from './json-diff.js';
import { isSealed, mapSecrets, redactSecrets, type OpenSecret, type SecretBox } from './secret-box.js';

/** How the service reaches the broker (hub-internal: no ACL applies to the hub itself). */
export interface BrokerLink {
  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void>;
  subscribe(filter: string, handler: (topic: string, payload: Buffer) => void): Promise<() => Promise<void>>;
}

/** Dependencies of {@link ConfigService}. */
export interface ConfigServiceDeps {
  logger: Logger;
  /** Versions, reports and events (SQLite or PostgreSQL). */
  store: ConfigPort;
  audit: AuditPort;
  broker: BrokerLink;
  /** Seals pushed secrets at rest (secret-box.ts). */
  secrets: SecretBox;
  /** Known gateways with their connection state. */
  listGateways: () => Promise<Array<{ id: string; online: boolean; lastSeen?: number | null }>>;
  clock?: () => number;
}

/** What an operator pushes. */
export interface ConfigPush {
  config: Record<string, unknown>;
  profiles?: Array<Record<string, unknown>>;
  note?: string;
  confirmWindowS?: number;
  /** Refuse the push (CONFIG_ERR_VERSION_CONFLICT) unless this is still the newest version (0: none yet). */
  baseVersion?: number;
}

/** Where a gateway stands: desired against reported. */
export type FleetState = 'in-sync' | 'pending' | 'applying' | 'failed' | 'unreported' | 'no-desired' | 'diverged';

/** One gateway in the fleet view. */
export interface FleetRow {
  gateway: string;
  online: boolean;
  state: FleetState;
  desired: (Omit<ConfigVersionInfo, 'gateway'>) | null;
  reported: (ConfigReported & { receivedAt: number }) | null;
  /** Desired version minus running version (0 when in sync). */
  behind: number;
  /** Seconds since the desired version was pushed, while the gateway does not run it. */
  lagS: number | null;
  /** In words, when the state needs an operator's attention. */
  why?: string;
}

/** The hub's configuration service. Emits `'reported'` ({gateway, report}) when a report is stored. */
export class ConfigService extends EventEmitter {
  private shipped: ReadonlyMap<string, DeviceProfile> = new Map();
  private unsubscribe: (() => Promise<void>) | null = null;
  private readonly clock: () => number;

  constructor(private readonly deps: ConfigServiceDeps) {
    super();
    this.clock = deps.clock ?? Date.now;
  }

  async start(): Promise<void> {
    await this.deps.store.start();
    await this.sealStoredSecrets();
    this.shipped = await loadProfileDir(PROFILES_DIR);
    this.unsubscribe = await this.deps.broker.subscribe(`${ROOT}/gw/+/config/reported`, (topic, payload) => void this.queueReport(topic, payload));
    // Retained messages do not survive a hub restart: publish the newest version of each gateway again.
    for (const doc of await this.deps.store.latestDocuments()) await this.publish(doc).catch(() => undefined);
  }

  /**
   * Seals the secrets of versions an earlier hub stored in clear and hashes
   * them again with secrets masked (the stored hash was computed over the
   * plaintext); reported running hashes follow. Runs at every start; finds
   * nothing to do once done.
   */
  private async sealStoredSecrets(): Promise<void> {
    const { store, secrets, logger } = this.deps;
    let previous: { gateway: string; secrets: Map<string, OpenSecret> } | null = null;
    let sealed = 0;
    for (const doc of await store.documentsContaining('"password"')) {
      let clear = false;
      mapSecrets(doc, (v) => {
        if (!isSealed(v)) clear = true;
        return v;
      });
      const prev = previous?.gateway === doc.gateway ? previous.secrets : undefined;
      let opened: Map<string, OpenSecret>;
      try {
        opened = secrets.secretsOf(doc, doc);
      } catch (err) {
        logger.error({ gateway: doc.gateway, version: doc.version, code: 'HUB_ERR_SECRET_KEY', err: (err as Error).message }, 'stored configuration secrets do not open with this key');
        previous = null;
        continue;
      }
      if (clear) {
        // A secret equal to the previous version's keeps that version's mark.
        for (const [at, o] of opened) if (prev?.get(at)?.value === o.value) opened.set(at, { value: o.value, setIn: prev.get(at)!.setIn });
        const next = secrets.sealDocument(doc, { gateway: doc.gateway, version: doc.version, previous: prev });
        await store.replaceDocument({ ...next, hash: configHash(doc.config, doc.profiles ?? []) });
        sealed++;
      }
      previous = { gateway: doc.gateway, secrets: opened };
    }
    if (sealed > 0) {
      await store.scrub();
      logger.warn({ versions: sealed }, 'configuration versions stored with clear-text secrets were sealed and re-hashed; the registry file was rewritten without the old copies');
    }
    for (const r of await store.reports()) {
      const normal = await this.normaliseReport(r.gateway, r.report);
      if (normal !== r.report) await store.saveReport(r.gateway, normal, r.receivedAt);
    }
  }

  /** The report with its running hash replaced by the hub's hash of that version (an older gateway may report one computed over secrets). */
  private async normaliseReport(gateway: string, report: ConfigReported): Promise<ConfigReported> {
    const reported = report.running.hash;
    if (reported === undefined) return report;
    const hash = report.running.version > 0 ? await this.deps.store.hashOf(gateway, report.running.version) : null;
    if (hash === reported) return report;
    const { hash: _dropped, ...running } = report.running;
    return { ...report, running: hash ? { ...running, hash } : running };
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.().catch(() => undefined);
    this.unsubscribe = null;
  }

  /**
   * Checks, stores, audits and publishes the next version of a gateway's configuration.
   * @throws IocError CONFIG_ERR_INVALID / PROFILE_ERR_INVALID / CONFIG_ERR_LOCAL_ONLY / CONFIG_ERR_WRONG_GATEWAY
   *   (`context.problems`: JSON pointers into the desired document), CONFIG_ERR_TOO_LARGE, CONFIG_ERR_VERSION_CONFLICT.
   */
  async push(gateway: string, input: ConfigPush, by: Actor): Promise<{ doc: ConfigDesired; published: boolean }> {
    if (!isValidId(gateway)) throw new IocError('HUB_ERR_BAD_REQUEST', `'${gateway}' is not a valid gateway id`);
    if (nestedDeeperThan(input, CONFIG_MAX_DEPTH)) throw invalid(gateway, [{ pointer: '', message: `nests deeper than ${CONFIG_MAX_DEPTH} levels; not a configuration` }]);
    const report = (await this.deps.store.reports(gateway))[0]?.report;
    const profiles = input.profiles ?? [];
    const { problems } = checkDesiredConfig({ gateway, config: input.config, profiles }, {
      knownProfiles: this.shipped, alsoKnown: report?.profiles ?? [],
      validateProfile: (p, i) => validateProfile(p, `${String((p as { model?: unknown }).model ?? `profile-${i}`)}.json`),
    });
    problems.push(...secretsInUrls(input.config, '/config'));
    if (problems.length > 0) throw invalid(gateway, problems);
    const hash = configHash(input.config, profiles);
    // The previous version's secrets: one left unchanged keeps the version it was set in (what readers see).
    const before = await this.deps.store.document(gateway);
    let previous: Map<string, OpenSecret> | undefined;
    try {
      previous = before ? this.deps.secrets.secretsOf(before, before) : undefined;
    } catch {
      previous = undefined; // another key: every secret counts as set now
    }
    let plain: ConfigDesired | null = null;
    const doc = await this.deps.store.addVersion(gateway, (latest) => {
      const newest = latest?.version ?? 0;
      if (input.baseVersion !== undefined && input.baseVersion !== newest) {
        throw new IocError('CONFIG_ERR_VERSION_CONFLICT', `gateway ${gateway} is at desired version ${newest}, not ${input.baseVersion}: someone pushed in between; look at the difference and push again`, { context: { latest: newest } });
      }
      // Never below what the gateway has seen: it ignores versions not newer than the one it runs.
      const version = Math.max(newest, report?.running.version ?? 0, report?.version ?? 0) + 1;
      const d: ConfigDesired = {
        v: 1, gateway, version, hash, pushedAt: this.clock(), pushedBy: by.actor,
        ...(input.note ? { note: input.note } : {}),
        confirmWindowS: input.confirmWindowS ?? DEFAULT_CONFIRM_WINDOW_S,
        config: input.config, ...(profiles.length > 0 ? { profiles } : {}),
      };
      const bytes = Buffer.byteLength(JSON.stringify(d));
      if (bytes > CONFIG_MAX_BYTES) throw new IocError('CONFIG_ERR_TOO_LARGE', `the desired configuration would be ${bytes} bytes; gateways accept at most ${CONFIG_MAX_BYTES}`, { context: { bytes } });
      plain = d;
      return this.deps.secrets.sealDocument(d, { gateway, version, ...(previous && before?.version === newest ? { previous } : {}) });
    });
    await this.deps.audit.record({
      actor: by.actor, source: by.source ?? null, action: 'config.push', target: `gateway:${gateway}`, outcome: 'ok',
      detail: { version: doc.version, hash: doc.hash, note: doc.note ?? null, profiles: profiles.length },
    });
    this.deps.logger.info({ gateway, version: doc.version, by: by.actor }, 'desired configuration pushed');
    let published = true;
    await this.publish(plain!).catch(() => {
      published = false;
    });
    return { doc, published };
  }

  /** Publishes a version as the gateway's retained desired document, secrets opened (`doc` may be stored or plain). */
  private async publish(doc: ConfigDesired): Promise<void> {
    try {
      const plain = this.deps.secrets.openDocument(doc, doc);
      await this.deps.broker.publish(topics.configDesired(doc.gateway), Buffer.from(JSON.stringify(plain)), { qos: 1, retain: true });
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message, code: (err as IocError).code, gateway: doc.gateway, version: doc.version }, 'desired configuration not published; published again at the next hub start');
      throw err;
    }
  }

  /** Reports of one gateway being handled, in arrival order. */
  private readonly reportChains = new Map<string, Promise<void>>();

  /**
   * Reports of one gateway are stored one after the other, in the order they
   * arrived: handled side by side, a 'confirming' report whose normalisation
   * took longer could be stored after the 'rolled-back' that followed it, and
   * the fleet view showed 'applying' for good (seen in CI under load).
   */
  private queueReport(topic: string, payload: Buffer): Promise<void> {
    const gateway = parseTopic(topic)?.gateway ?? '';
    const prev = this.reportChains.get(gateway) ?? Promise.resolve();
    const next = prev.then(() => this.onReport(topic, payload));
    this.reportChains.set(gateway, next);
    void next.finally(() => {
      if (this.reportChains.get(gateway) === next) this.reportChains.delete(gateway);
    });
    return next;
  }

  private async onReport(topic: string, payload: Buffer): Promise<void> {
    const gateway = parseTopic(topic)?.gateway;
    if (!gateway) return;
    let report: ConfigReported;
    try {
      if (payload.length > CONFIG_MAX_BYTES) throw new IocError('CONFIG_ERR_TOO_LARGE', `report of ${payload.length} bytes`);
      report = validateConfigReported(parseJson(payload));
      report = await this.normaliseReport(gateway, report);
    } catch (err) {
      this.deps.logger.warn({ gateway, err: (err as Error).message }, 'malformed configuration report ignored');
      return;
    }
    try {
      await this.deps.store.saveReport(gateway, report, this.clock());
      this.emit('reported', { gateway, report });
    } catch (err) {
      this.deps.logger.error({ err, gateway }, 'configuration report not stored');
    }
  }

  /** Version list, newest first. */
  versions(gateway: string, limit?: number): Promise<ConfigVersionInfo[]> {
    return this.deps.store.versions(gateway, limit);
  }

  /**
   * One version (the newest by default), as readers see it: every secret
   * replaced by `redacted:v<version it was set in>`, so a change still shows
   * in a diff but nothing of the secret, nor of a hash of it, leaves the hub.
   * @throws IocError HUB_ERR_NOT_FOUND
   */
  async document(gateway: string, version?: number): Promise<ConfigDesired> {
    const doc = await this.deps.store.document(gateway, version);
    if (!doc) throw new IocError('HUB_ERR_NOT_FOUND', version === undefined ? `no configuration was ever pushed to gateway '${gateway}'` : `gateway '${gateway}' has no configuration version ${version}`);
    return redactSecrets(doc);
  }

  /** Differences between two versions (`from` defaults to the one before `to`, `to` to the newest). */
  async diff(gateway: string, from?: number, to?: number): Promise<{ from: number; to: number; changes: JsonChange[] }> {
    const b = await this.document(gateway, to);
    const fromV = from ?? b.version - 1;
    const a = fromV <= 0 ? null : await this.document(gateway, fromV);
    const strip = (d: ConfigDesired | null): unknown => (d ? { config: d.config, profiles: d.profiles ?? [], confirmWindowS: d.confirmWindowS ?? DEFAULT_CONFIRM_WINDOW_S } : { config: {}, profiles: [] });
    return { from: a?.version ?? 0, to: b.version, changes: jsonDiff(strip(a), strip(b)) };
  }

  /** Status changes a gateway reported, newest first. */
  history(gateway: string, limit?: number) {
    return this.deps.store.events(gateway, limit);
  }

  /** Desired against reported for every gateway the hub knows (or one). */
  async fleet(filter: { gateway?: string; state?: FleetState } = {}): Promise<{ summary: Record<FleetState, number> & { total: number }; items: FleetRow[] }> {
    const known = await this.deps.listGateways();
    const online = new Map(known.map((g) => [g.id, g.online]));
    const reports = new Map((await this.deps.store.reports(filter.gateway)).map((r) => [r.gateway, r]));
    const ids = new Set<string>(filter.gateway ? [filter.gateway] : [...known.map((g) => g.id), ...(await this.deps.store.gateways()), ...reports.keys()]);
    const items: FleetRow[] = [];
    for (const id of [...ids].sort()) {
      const desired = (await this.deps.store.versions(id, 1))[0] ?? null;
      items.push(this.row(id, online.get(id) ?? false, desired, reports.get(id) ?? null));
    }
    const summary = { total: items.length, 'in-sync': 0, pending: 0, applying: 0, failed: 0, unreported: 0, 'no-desired': 0, diverged: 0 };
    for (const r of items) summary[r.state]++;
    return { summary, items: filter.state ? items.filter((r) => r.state === filter.state) : items };
  }

  private row(gateway: string, online: boolean, desired: ConfigVersionInfo | null, stored: StoredReport | null): FleetRow {
    const rep = stored ? { ...stored.report, receivedAt: stored.receivedAt } : null;
    const base = { gateway, online, desired: desired ? { version: desired.version, hash: desired.hash, pushedAt: desired.pushedAt, pushedBy: desired.pushedBy, note: desired.note } : null, reported: rep };
    const running = rep?.running.version ?? 0;
    if (!desired) return { ...base, state: 'no-desired', behind: 0, lagS: null };
    const lagS = Math.max(0, Math.round((this.clock() - desired.pushedAt) / 1000));
    const behind = Math.max(0, desired.version - running);
    if (!rep) return { ...base, state: 'unreported', behind, lagS, why: online ? `gateway has not reported its configuration yet (version ${desired.version} waits)` : `gateway is offline and has not reported its configuration; version ${desired.version} waits for it` };
    if (running === desired.version) return { ...base, state: 'in-sync', behind: 0, lagS: null };
    if (running > desired.version) return { ...base, state: 'diverged', behind: 0, lagS: null, why: `gateway runs version ${running}, newer than the hub's newest (${desired.version}): was the hub database restored from a backup? Push a new version` };
    if (rep.version === desired.version && (rep.status === 'rejected' || rep.status === 'rolled-back')) {
      return { ...base, state: 'failed', behind, lagS, why: rep.error?.message ?? `version ${desired.version} was ${rep.status}` };
    }
    if (rep.version === desired.version && (rep.status === 'applying' || rep.status === 'confirming')) return { ...base, state: 'applying', behind, lagS };
    return { ...base, state: 'pending', behind, lagS, why: online ? `gateway runs version ${running}; version ${desired.version} has not reached it yet` : `gateway is offline; it runs version ${running} and will take version ${desired.version} when it reconnects` };
  }
}

function invalid(gateway: string, problems: ConfigProblem[]): IocError {
  const code: ErrorCode = problems.some((p) => p.pointer.startsWith('/profiles/')) ? 'PROFILE_ERR_INVALID'
    : problems.some((p) => p.message.includes('cannot be pushed')) ? 'CONFIG_ERR_LOCAL_ONLY'
      : problems.some((p) => p.pointer === '/config/gatewayId') ? 'CONFIG_ERR_WRONG_GATEWAY' : 'CONFIG_ERR_INVALID';
  const lines = problems.slice(0, 20).map((p) => `${p.pointer || '/'}: ${p.message}`);
  if (problems.length > 20) lines.push(`… and ${problems.length - 20} more`);
  return new IocError(code, `configuration for gateway ${gateway} refused (${problems.length} problem${problems.length === 1 ? '' : 's'}): ${lines.join('; ')}`, { context: { pointer: problems[0]?.pointer ?? '', problems } });
}

/** `scheme://user:password@…`: a password inside a URL, which would be stored and shown in clear. */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/?#@\s]*:[^/?#@\s]*@/i;

/**
 * Problems for every string that carries a password in a URL's user-info
 * (`mqtts://gw:secret@hub…`): only `password` settings are sealed and
 * redacted, so such a push is refused with a pointer, never stored.
 */
function secretsInUrls(value: unknown, at: string): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const stack: Array<[unknown, string]> = [[value, at]];
  while (stack.length > 0) {
    const [v, p] = stack.pop()!;
    if (typeof v === 'string') {
      if (URL_WITH_PASSWORD.test(v)) out.push({ pointer: p, message: 'holds a password inside a URL; put it in a password setting (stored encrypted, never shown) and remove it from the URL' });
    } else if (v !== null && typeof v === 'object') {
      for (const [k, c] of Object.entries(v as Record<string, unknown>)) stack.push([c, `${p}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`]);
    }
  }
  return out;
}
