/**
 * The gateway's side of remote configuration (desired/reported, like a
 * device twin), with commit-confirm rollback so no configuration can leave a
 * gateway unreachable:
 *
 * 1. receive `ioc/v1/gw/{gw}/config/desired` (retained): size cap before
 *    parsing, envelope, hash, and the same checks the hub ran; a version not
 *    newer than the running one is ignored (and said so), one that already
 *    failed is not tried again;
 * 2. persist it (`desired.json`, state `applying`), apply it — only the
 *    changed drivers restart, the uplink reconnects only for new hub
 *    settings — and report `confirming`;
 * 3. confirm: within the confirm window (`confirmWindowS`, default 30 s) the
 *    hub must acknowledge a report over the (possibly new) connection (a
 *    refusal no retry can mend — credentials, TLS trust — ends it early). Then
 *    the version becomes the last good one (`last-good.json`) and is reported
 *    `applied`;
 * 4. otherwise — it could not be applied, or the hub was not reached in time
 *    (wrong address, credentials, TLS settings) — the gateway returns to the
 *    last good version by itself, remembers the failed one, and reports
 *    `rolled-back` with the reason once it is back.
 *
 * A restart while a version is applying or confirming starts with the last
 * good one (see {@link bootConfig}). The report is sent again after every
 * reconnection, so the hub always learns the outcome.
 */
import { EventEmitter } from 'node:events';
import { isIocError, topics, validateConfigDesired, type ConfigDesired, type ConfigPhase, type ConfigReported, type ConfigStatus } from '../../contract/index.js';
import type { DeviceProfile } from '../../device-profiles/index.js';
import type { Logger } from '../../lib/index.js';
import type { GatewayConfig } from '../config.js';
import type { ConfigFiles } from './config-store.js';
import { parseDesiredPayload, resolveDesired, type RunnableConfig } from './desired-config.js';

/** What applying a configuration changed. */
export interface ApplyResult {
  restarted: { buses: string[]; devices: string[]; uplink: boolean };
  /** Settings (JSON pointers) that take effect at the next restart. */
  pending: string[];
}

/** The slice of the uplink the agent uses. */
export interface AgentUplink extends EventEmitter {
  readonly connected: boolean;
  subscribe(filter: string, handler: (payload: Buffer) => void): Promise<void>;
  publish(topic: string, payload: string, opts?: { qos?: 0 | 1 }): Promise<void>;
  stats(): { lastError: string | null };
}

/** Where the agent starts from (see {@link bootConfig}). */
export interface BootState {
  running: RunnableConfig;
  /** The report to start with: what became of the last version the gateway saw. */
  status: ConfigStatus;
  version: number;
  error?: ConfigReported['error'];
  /** A version that failed (not tried again when it is delivered again). */
  failedVersion: number | null;
}

/** Dependencies of {@link ConfigAgent}. */
export interface ConfigAgentDeps {
  gatewayId: string;
  logger: Logger;
  files: ConfigFiles;
  uplink: AgentUplink;
  boot: BootState;
  /** The gateway's own file configuration and where it came from (id, local-only settings, relative paths). */
  local: GatewayConfig;
  source: string;
  /** Shipped profiles plus those of the local profile folders. */
  baseProfiles: ReadonlyMap<string, DeviceProfile>;
  /** Applies a configuration to the running gateway (its `reconfigure`). */
  apply: (next: RunnableConfig) => Promise<ApplyResult>;
  /** Largest desired document accepted (bytes). */
  maxBytes?: number;
  /** Overrides every document's confirm window (ms). */
  confirmWindowMs?: number;
  clock?: () => number;
}

class Stopped extends Error {}

/**
 * Receives, applies, confirms or rolls back desired configurations. Emits
 * `'report'` (ConfigReported) at every change of state.
 */
export class ConfigAgent extends EventEmitter {
  private running: RunnableConfig;
  private lastGood: RunnableConfig;
  private since: number;
  private report: ConfigReported;
  private failedVersion: number | null;
  private pending: Buffer | null = null;
  private busy: Promise<void> | null = null;
  private stopped = false;
  private cancelConfirm: ((err: Error) => void) | null = null;
  private readonly clock: () => number;
  private readonly onConnect = (): void => void this.publishReport();

  constructor(private readonly deps: ConfigAgentDeps) {
    super();
    this.clock = deps.clock ?? Date.now;
    this.running = deps.boot.running;
    this.lastGood = deps.boot.running;
    this.since = this.clock();
    this.failedVersion = deps.boot.failedVersion;
    this.report = this.makeReport(deps.boot.status, deps.boot.version, deps.boot.error ? { error: deps.boot.error } : {});
  }

  /** The current report. */
  get reported(): ConfigReported {
    return this.report;
  }

  /** Version running now (0: the file). */
  get runningVersion(): number {
    return this.running.version;
  }

  async start(): Promise<void> {
    const { uplink, gatewayId } = this.deps;
    // Compile the envelope validator now (~50 ms of ajv), not in the middle of the first apply.
    try {
      validateConfigDesired({});
    } catch {
      // expected: {} is not a desired document
    }
    uplink.on('connect', this.onConnect);
    await uplink.subscribe(topics.configDesired(gatewayId), (payload) => this.receive(payload));
    if (uplink.connected) void this.publishReport();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.deps.uplink.off('connect', this.onConnect);
    this.cancelConfirm?.(new Stopped('stopping'));
    await this.busy?.catch(() => undefined);
  }

  /** Queues a received payload; the newest waiting one wins. */
  receive(payload: Buffer): void {
    this.pending = payload;
    if (this.busy) return;
    this.busy = (async () => {
      while (this.pending && !this.stopped) {
        const p = this.pending;
        this.pending = null;
        await this.handle(p).catch((err: unknown) => this.deps.logger.error({ err }, 'desired configuration handling failed'));
      }
      this.busy = null;
    })();
  }

  /** Resolves when nothing is being applied or waiting (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.busy) await this.busy;
  }

  private async handle(payload: Buffer): Promise<void> {
    const { logger } = this.deps;
    let doc: ConfigDesired;
    try {
      doc = parseDesiredPayload(payload, this.deps.maxBytes);
    } catch (err) {
      const version = peekVersion(payload);
      logger.error({ code: codeOf(err), bytes: payload.length, version }, `desired configuration refused: ${(err as Error).message}`);
      this.setReport('rejected', version, { error: errorOf(err, 'receive', `the gateway refused a desired configuration document: ${(err as Error).message}; it keeps running version ${this.running.version}`) });
      return;
    }
    const v = doc.version;
    if (v === this.running.version || v === this.failedVersion) {
      logger.debug({ version: v }, 'desired configuration already handled');
      return;
    }
    if (v < this.running.version) {
      const reason = `version ${v} is older than version ${this.running.version}, which runs; ignored (push a new version to change the configuration)`;
      logger.warn({ version: v, running: this.running.version, code: 'CONFIG_ERR_STALE' }, reason);
      this.report = { ...this.report, ts: this.clock(), ignored: { version: v, reason, ts: this.clock() } };
      this.emitReport();
      return;
    }
    const log = logger.child({ version: v });
    let next: RunnableConfig;
    try {
      next = resolveDesired(doc, this.deps.local, this.deps.source, this.deps.baseProfiles);
    } catch (err) {
      this.failedVersion = v;
      const message = `version ${v} was rejected and not applied: ${(err as Error).message}; the gateway keeps running version ${this.running.version}`;
      log.warn({ code: codeOf(err) }, message);
      const error = errorOf(err, 'validate', message);
      await this.deps.files.writeDesired({ doc, state: 'rejected', at: this.clock(), error }).catch((e: unknown) => log.error({ err: e }, 'desired.json not written'));
      this.setReport('rejected', v, { error });
      return;
    }
    await this.deps.files.writeDesired({ doc, state: 'applying', at: this.clock() });
    this.setReport('applying', v);
    log.info({ from: this.running.version }, 'applying desired configuration');
    let result: ApplyResult;
    try {
      result = await this.deps.apply(next);
    } catch (err) {
      await this.rollback(doc, next, err, 'apply');
      return;
    }
    this.running = next;
    this.since = this.clock();
    await this.deps.files.writeDesired({ doc, state: 'confirming', at: this.clock() });
    const extra = { restarted: result.restarted, ...(result.pending.length > 0 ? { pending: result.pending } : {}) };
    // Not published here: confirm() publishes it and waits for its acknowledgement.
    this.setReport('confirming', v, extra, false);
    const windowMs = this.deps.confirmWindowMs ?? (doc.confirmWindowS ?? 30) * 1000;
    try {
      await this.confirm(windowMs);
    } catch (err) {
      if (err instanceof Stopped) return;
      await this.rollback(doc, next, err, 'confirm');
      return;
    }
    await this.deps.files.writeLastGood({ doc, confirmedAt: this.clock() });
    await this.deps.files.writeDesired({ doc, state: 'applied', at: this.clock() });
    this.lastGood = next;
    this.failedVersion = null;
    this.setReport('applied', v, extra);
    log.info({ restarted: result.restarted }, 'desired configuration applied and confirmed');
  }

  /** Waits until the hub acknowledges a report, over whatever connection the new configuration gives. */
  private confirm(windowMs: number): Promise<void> {
    const { uplink, gatewayId } = this.deps;
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        uplink.off('connect', attempt);
        uplink.off('connect-error', onError);
        this.cancelConfirm = null;
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => finish(new Error(`no acknowledgement from the hub within ${Math.round(windowMs / 1000)} s`)), windowMs);
      // A refusal that no retry can change (credentials, TLS trust) ends the wait at once: waiting would only hammer the hub.
      const onError = (err: Error): void => {
        if (isDefinitiveRefusal(err)) finish(new Error(`the hub refused the connection: ${err.message}`));
      };
      uplink.on('connect-error', onError);
      function attempt(): void {
        if (done || !uplink.connected) return;
        uplink.publish(topics.configReported(gatewayId), JSON.stringify(current()), { qos: 1 }).then(() => finish(null), () => undefined);
      }
      const current = (): ConfigReported => this.report;
      this.cancelConfirm = finish;
      uplink.on('connect', attempt);
      attempt();
    });
  }

  private async rollback(doc: ConfigDesired, next: RunnableConfig, err: unknown, phase: ConfigPhase): Promise<void> {
    const { logger, uplink } = this.deps;
    const v = doc.version;
    const back = this.lastGood;
    const target = back.version === 0 ? 'its configuration file (version 0)' : `version ${back.version}`;
    let error: NonNullable<ConfigReported['error']>;
    if (phase === 'confirm') {
      const refused = (err as Error).message.startsWith('the hub refused');
      const why = refused ? (err as Error).message.replace(/^the hub refused the connection: /, '') : uplink.stats().lastError;
      const windowS = Math.round((this.deps.confirmWindowMs ?? (doc.confirmWindowS ?? 30) * 1000) / 1000);
      error = {
        code: 'CONFIG_ERR_UNCONFIRMED', phase,
        message: refused
          ? `version ${v} was applied, but the hub at ${next.config.hub.url} refused the gateway's connection (${why}); it went back to ${target} by itself. Check the credentials and TLS settings of version ${v}`
          : `version ${v} was applied, but the gateway could not reach the hub at ${next.config.hub.url} within ${windowS} s${why ? ` (last error: ${why})` : ''}; it went back to ${target} by itself. Check the hub address, credentials and TLS settings of version ${v}`,
      };
    } else {
      error = errorOf(err, phase, `version ${v} could not be applied: ${(err as Error).message}; the gateway went back to ${target} by itself`);
    }
    logger.error({ version: v, code: error.code, phase }, error.message);
    try {
      await this.deps.apply(back);
    } catch (e) {
      logger.fatal({ err: e, version: back.version }, 'going back to the last good configuration failed');
      error.message += `; going back failed too: ${(e as Error).message}`;
    }
    this.running = back;
    this.since = this.clock();
    this.failedVersion = v;
    await this.deps.files.writeDesired({ doc, state: 'rolled-back', at: this.clock(), error }).catch((e: unknown) => logger.error({ err: e }, 'desired.json not written'));
    this.setReport('rolled-back', v, { error });
  }

  private makeReport(status: ConfigStatus, version: number, extra: Partial<ConfigReported>): ConfigReported {
    return {
      v: 1, ts: this.clock(),
      running: { version: this.running.version, ...(this.running.hash ? { hash: this.running.hash } : {}), since: this.since },
      status, version, ...extra,
      profiles: [...this.running.profiles.keys()].slice(0, 2000),
    };
  }

  private setReport(status: ConfigStatus, version: number, extra: Partial<ConfigReported> = {}, publish = true): void {
    const ignored = this.report.ignored;
    this.report = this.makeReport(status, version, { ...extra, ...(ignored ? { ignored } : {}) });
    this.emitReport(publish);
  }

  private emitReport(publish = true): void {
    this.emit('report', this.report);
    if (publish && this.deps.uplink.connected) void this.publishReport();
  }

  private async publishReport(): Promise<void> {
    try {
      await this.deps.uplink.publish(topics.configReported(this.deps.gatewayId), JSON.stringify(this.report), { qos: 1 });
    } catch (err) {
      this.deps.logger.debug({ err: (err as Error).message }, 'configuration report not sent; sent again on reconnect');
    }
  }
}

/** CONNACK return codes 2 (identifier rejected), 4 (bad user name or password), 5 (not authorised), MQTT 3.1.1 §3.2.2.3, and TLS trust failures. */
export function isDefinitiveRefusal(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  if (code === 2 || code === 4 || code === 5) return true;
  return typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|ERR_TLS|EPROTO|SSL/.test(code);
}

function codeOf(err: unknown): string {
  return isIocError(err) ? err.code : 'CONFIG_ERR_APPLY';
}

function errorOf(err: unknown, phase: ConfigPhase, message: string): NonNullable<ConfigReported['error']> {
  const problems = isIocError(err) ? (err.context.problems as Array<{ pointer: string; message: string }> | undefined) : undefined;
  return {
    code: codeOf(err), message: message.slice(0, 4096), phase,
    ...(problems ? { problems: problems.slice(0, 50).map((p) => ({ pointer: p.pointer.slice(0, 512), message: p.message.slice(0, 1024) })) } : {}),
  };
}

/** The version of a document that failed its checks, when it can be read at all (never parses an oversized one). */
function peekVersion(payload: Buffer): number {
  if (payload.length > 1024 * 1024) return 0;
  try {
    const v = (JSON.parse(payload.toString('utf8')) as { version?: unknown }).version;
    return Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : 0;
  } catch {
    return 0;
  }
}

/**
 * Decides what the gateway starts with: the last good remote configuration
 * (`last-good.json`) over its file, unless it no longer resolves; and what
 * to report first — in particular when the gateway stopped while a version
 * was applying or confirming (it then starts with the last good one).
 */
export async function bootConfig(local: GatewayConfig, source: string, baseProfiles: ReadonlyMap<string, DeviceProfile>, files: ConfigFiles, logger: Logger): Promise<BootState> {
  const warn = (file: string) => (err: Error): void => logger.warn({ file, err: err.message }, 'remote configuration file unreadable; ignored');
  const [desired, lastGood] = await Promise.all([files.readDesired(warn(files.desiredFile)), files.readLastGood(warn(files.lastGoodFile))]);
  let running: RunnableConfig = { version: 0, doc: null, config: local, profiles: new Map(baseProfiles) };
  let state: Omit<BootState, 'running'> = { status: 'applied', version: 0, failedVersion: null };
  if (lastGood?.doc) {
    try {
      running = resolveDesired(lastGood.doc, local, source, baseProfiles);
      state = { status: 'applied', version: running.version, failedVersion: null };
    } catch (err) {
      const message = `last good version ${lastGood.doc.version} cannot run any more (${(err as Error).message}); the gateway started from its configuration file`;
      logger.error({ code: codeOf(err) }, message);
      state = { status: 'rolled-back', version: lastGood.doc.version, error: errorOf(err, 'restart', message), failedVersion: lastGood.doc.version };
    }
  }
  const d = desired?.doc;
  // A failure of the last good version itself (above) matters more than an older desired one.
  const seen = Math.max(running.version, lastGood?.doc?.version ?? 0);
  if (desired && d && typeof d.version === 'number' && d.version > seen) {
    if (desired.state === 'applying' || desired.state === 'confirming') {
      const message = `the gateway restarted while version ${d.version} was ${desired.state === 'applying' ? 'being applied' : 'waiting for confirmation'}; it started with ${running.version === 0 ? 'its configuration file (version 0)' : `version ${running.version}`}`;
      logger.warn({ version: d.version, code: 'CONFIG_ERR_INTERRUPTED' }, message);
      const error = { code: 'CONFIG_ERR_INTERRUPTED', message, phase: 'restart' as const };
      await files.writeDesired({ ...desired, state: 'rolled-back', at: Date.now(), error }).catch(() => undefined);
      state = { status: 'rolled-back', version: d.version, error, failedVersion: d.version };
    } else if (desired.state === 'rejected' || desired.state === 'rolled-back') {
      state = { status: desired.state, version: d.version, ...(desired.error ? { error: desired.error } : {}), failedVersion: d.version };
    }
  }
  return { running, ...state };
}
