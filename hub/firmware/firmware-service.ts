/**
 * The hub's firmware service (issue 7): stores images content-addressed and
 * their signed manifests, runs rollouts — targets by profile, site or list;
 * a canary stage, then waves; stops itself past a failure threshold; pause,
 * resume, cancel — and speaks the `ioc/v1/gw/{gw}/fw/…` topics: offers and
 * cancels out, chunk requests (chunk-server.ts), state reports and syncs in.
 *
 * Delivery of offers: an offer goes out when its stage starts, again when the
 * gateway's `fw/sync` (sent after every reconnect) does not list the job, and
 * again every `reofferMs` while unanswered. Operator actions are audited.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  IocError, fwTopics, isIocError, parseJson, parseTopic, validateFirmwareRequest, validateFirmwareState, validateFirmwareSync, validateSignedManifest,
  type FirmwareCancel, type FirmwareOffer, type FirmwareStateReport,
} from '../../contract/index.js';
import { canonicalJson, verifyManifest, type ImageBytes, type TrustedKey } from '../../firmware-bridge/index.js';
import type { Logger } from '../../lib/index.js';
import type { BrokerLink } from '../config/config-service.js';
import type { Actor } from '../identity/identity-service.js';
import type { AuditPort } from '../store/state-ports.js';
import { ChunkServer } from './chunk-server.js';
import { FINAL_JOB, type FirmwareImage, type FirmwarePort, type JobRecord, type JobStatus, type ManifestRecord, type RolloutRecord, type RolloutTarget } from './firmware-port.js';
import { failedGateways, nextStep, orderTargets, planStages, progressOf, selectTargets, type KnownDevice, type RolloutProgress } from './rollout-plan.js';

/** Dependencies of {@link FirmwareService}. */
export interface FirmwareServiceDeps {
  logger: Logger;
  /** Firmware records (SQLite or PostgreSQL). */
  db: FirmwarePort;
  /** Image bytes: a folder beside SQLite, the database on PostgreSQL (every node serves every image). */
  images: ImageBytes;
  audit: AuditPort;
  broker: BrokerLink;
  /** Time of offers and of the re-offer check (default Date.now). */
  clock?: () => number;
  /** Field devices the registry knows. */
  devices: () => Promise<KnownDevice[]>;
  /** Site of each gateway. */
  sites: () => Promise<Map<string, string | null>>;
  /** When given, uploaded manifests must be signed by one of these keys. */
  trustedKeys?: readonly TrustedKey[];
  /** Offer again when unanswered this long. Default 60 s. */
  reofferMs?: number;
  /**
   * Hub nodes sharing one database (issue 16 item 2): when given, the rollout
   * engine — stage advances, re-offers, re-offers after a gateway's sync —
   * runs only while this returns true (the node holding the
   * `firmware-rollouts` lease, hub/cluster/lease.ts), and nothing here runs
   * on a timer: the holder calls {@link FirmwareService.sweep}, which drives
   * every running rollout from database state, so a successor picks up a
   * rollout where a dead holder left it. Absent: always, on its own timer.
   */
  drivesRollouts?: () => boolean;
  cacheBytes?: number;
}

/** What an operator asks for. */
export interface RolloutRequest {
  manifest: string;
  target?: RolloutTarget;
  /** Canary count (default 1): the first targets of the seeded order, on distinct gateways. */
  canary?: number;
  /** The canaries, chosen by the operator (`gateway/device`); overrides `canary`. */
  canaryDevices?: string[];
  /** Seed of the target order (default: random; recorded in the rollout so the order can be reproduced). */
  seed?: string;
  waveSize?: number;
  maxFailurePercent?: number;
}

/** A rollout as the API shows it. */
export interface RolloutView extends RolloutRecord {
  model: string;
  version: string;
  manifest: Pick<ManifestRecord, 'id' | 'model' | 'version' | 'sha256' | 'size'>;
  progress: RolloutProgress;
}

/** Emits `job` (JobRecord) after each applied report and `rollout` (RolloutView) after each rollout change. */
export class FirmwareService extends EventEmitter {
  readonly chunks: ChunkServer;
  private unsubs: Array<() => Promise<void>> = [];
  private timer: NodeJS.Timeout | null = null;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly manifests = new Map<string, ManifestRecord>();

  constructor(private readonly deps: FirmwareServiceDeps) {
    super();
    this.chunks = new ChunkServer({
      images: deps.images, broker: deps.broker, logger: deps.logger, ...(deps.cacheBytes !== undefined ? { cacheBytes: deps.cacheBytes } : {}),
      lookup: async (id) => {
        const job = await deps.db.getJob(id);
        if (!job) return null;
        const m = await this.manifestOfRollout(job.rollout);
        return m ? { gateway: job.gateway, status: job.status, manifest: m.signed.manifest } : null;
      },
    });
  }

  async start(): Promise<void> {
    const { broker, logger } = this.deps;
    const on = (kind: string, fn: (gw: string, payload: Buffer) => Promise<void>) => (topic: string, payload: Buffer): void => {
      const gw = parseTopic(topic)?.gateway;
      if (!gw) return;
      // Validation throws before fn returns a promise: start it inside one, so a malformed payload is dropped, never thrown into the broker.
      Promise.resolve().then(() => fn(gw, payload)).catch((err: unknown) => logger.warn({ gateway: gw, topic, code: isIocError(err) ? err.code : undefined, err: (err as Error).message }, `firmware ${kind} dropped`));
    };
    this.unsubs.push(await broker.subscribe(fwTopics.allRequest, on('request', (gw, p) => this.chunks.serve(gw, validateFirmwareRequest(parseJson(p))))));
    this.unsubs.push(await broker.subscribe(fwTopics.allState, on('state report', (gw, p) => this.onState(gw, validateFirmwareState(parseJson(p))))));
    this.unsubs.push(await broker.subscribe(fwTopics.allSync, on('sync', (gw, p) => this.onSync(gw, validateFirmwareSync(parseJson(p)).jobs))));
    if (this.deps.drivesRollouts) return; // driven from outside through sweep()
    const every = this.deps.reofferMs ?? 60_000;
    this.timer = setInterval(() => void this.reoffer(every).catch((err: unknown) => logger.error({ err }, 'firmware re-offer failed')), Math.max(50, every / 2));
    this.timer.unref();
    for (const r of await this.deps.db.listRollouts({ states: ['running'] })) await this.advance(r.id);
  }

  /** Whether this node runs the rollout engine now (see {@link FirmwareServiceDeps.drivesRollouts}). */
  private driving(): boolean {
    return this.deps.drivesRollouts?.() ?? true;
  }

  /**
   * One pass of the rollout engine from database state: the next step of
   * every running rollout, then re-offers of what waited longer than
   * `reofferMs`. Idempotent; the singleton runner calls it periodically.
   */
  async sweep(): Promise<void> {
    if (!this.driving()) return;
    for (const r of await this.deps.db.listRollouts({ states: ['running'] })) await this.advance(r.id);
    await this.reoffer(this.deps.reofferMs ?? 60_000);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // Together: on a cluster whose Redis is away each one waits for its retry (about 2 s), one after another they added up.
    await Promise.all(this.unsubs.splice(0).map((u) => u().catch(() => undefined)));
    await this.lock.catch(() => undefined);
  }

  private now(): number {
    return (this.deps.clock ?? Date.now)();
  }

  /** Runs `fn` after every rollout change queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.lock.then(fn, fn);
    this.lock = p.catch(() => undefined);
    return p;
  }

  private async manifestOfRollout(rolloutId: string): Promise<ManifestRecord | null> {
    const r = await this.deps.db.getRollout(rolloutId);
    return r ? this.manifest(r.manifestId) : null;
  }

  private async manifest(id: string): Promise<ManifestRecord | null> {
    const hit = this.manifests.get(id);
    if (hit) return hit;
    const m = await this.deps.db.getManifest(id);
    if (m) this.manifests.set(id, m);
    return m;
  }

  // ── operator actions ────────────────────────────────────────────────

  /** Stores an image (content-addressed); audited. */
  async uploadImage(image: Buffer, who: Actor): Promise<{ sha256: string; size: number; created: boolean }> {
    if (image.length === 0) throw new IocError('FW_ERR_MANIFEST', 'the image is empty');
    const r = await this.deps.images.put(image);
    await this.deps.db.putImage(r.sha256, r.size, who.actor);
    await this.audit(who, 'firmware.image.upload', r.sha256, { size: r.size, created: r.created });
    return r;
  }

  /**
   * Stores a signed manifest. Refused: malformed (FW_ERR_MANIFEST), unsigned,
   * or — when the hub has trusted keys — signed by another key or not
   * verifying; an image that is not stored (FW_ERR_IMAGE_NOT_FOUND) or whose
   * stored size differs (FW_ERR_INTEGRITY).
   */
  async addManifest(doc: unknown, who: Actor): Promise<ManifestRecord> {
    const signed = this.deps.trustedKeys ? verifyManifest(doc, this.deps.trustedKeys) : validateSignedManifest(doc);
    if (!signed.signature) throw new IocError('FW_ERR_UNSIGNED', `firmware ${signed.manifest.model} ${signed.manifest.version} is not signed; gateways would refuse it`);
    const m = signed.manifest;
    const size = await this.deps.images.size(m.sha256);
    if (size !== m.size) throw new IocError('FW_ERR_INTEGRITY', `stored image ${m.sha256} has ${size} bytes, the manifest says ${m.size}`);
    const id = `m-${createHash('sha256').update(canonicalJson(signed)).digest('hex').slice(0, 16)}`;
    const rec = await this.deps.db.putManifest({ id, sha256: m.sha256, model: m.model, version: m.version, size: m.size, keyId: signed.signature.keyId, signed, createdBy: who.actor });
    await this.audit(who, 'firmware.manifest.add', id, { model: m.model, version: m.version, sha256: m.sha256, keyId: signed.signature.keyId });
    return rec;
  }

  /** Creates and starts a rollout; audited. */
  async createRollout(req: RolloutRequest, who: Actor): Promise<RolloutView> {
    const m = await this.manifest(req.manifest);
    if (!m) throw new IocError('HUB_ERR_NOT_FOUND', `no firmware manifest '${req.manifest}'`);
    const target = req.target ?? {};
    const [devices, sites] = await Promise.all([this.deps.devices(), this.deps.sites()]);
    const targets = selectTargets(devices, sites, target, m.model);
    // One unfinished job per device: two rollouts must not flash one device at once.
    const busy = new Set((await this.deps.db.listJobs({ statuses: ['pending', 'offered', 'active'] })).map((j) => `${j.gateway}/${j.device}`));
    const clash = targets.filter((x) => busy.has(`${x.gateway}/${x.device}`)).map((x) => `${x.gateway}/${x.device}`);
    if (clash.length > 0) throw new IocError('FW_ERR_ROLLOUT_STATE', `device(s) ${clash.slice(0, 10).join(', ')}${clash.length > 10 ? ` and ${clash.length - 10} more` : ''} already have an unfinished firmware job; cancel that rollout first`);
    // The order is the seed's, never the gateways' ids: no gateway can make itself the canary (issue 13 item 8).
    const seed = req.seed ?? randomBytes(8).toString('hex');
    const ordered = orderTargets(targets, seed);
    const waveSize = req.waveSize ?? 10;
    const { stages, canaries: canary } = planStages(ordered, { canary: req.canary ?? 1, ...(req.canaryDevices ? { canaryDevices: req.canaryDevices } : {}), waveSize });
    const id = `r-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    await this.deps.db.createRollout(
      { id, manifestId: m.id, state: 'running', target, canary, waveSize, maxFailurePercent: req.maxFailurePercent ?? 10, stage: 0, stages: Math.max(...stages) + 1, reason: null, seed, canaryDevices: req.canaryDevices ?? null, createdBy: who.actor },
      ordered.map((t, i) => ({ id: `j-${randomBytes(8).toString('hex')}`, gateway: t.gateway, device: t.device, stage: stages[i]! })),
    );
    await this.audit(who, 'firmware.rollout.create', id, { manifest: m.id, model: m.model, version: m.version, target, devices: targets.length, canary, canaryDevices: req.canaryDevices ?? null, seed, waveSize, maxFailurePercent: req.maxFailurePercent ?? 10 });
    await this.advance(id);
    return (await this.view(id))!;
  }

  /** Pauses a running rollout: nothing new is offered; what was offered goes on. */
  pause(id: string, who: Actor): Promise<RolloutView> {
    return this.change(id, who, 'pause', ['running'], async () => {
      await this.deps.db.updateRollout(id, { state: 'paused' });
    });
  }

  /** Resumes a paused rollout, or one that stopped itself (its failures so far are then accepted). */
  resume(id: string, who: Actor): Promise<RolloutView> {
    return this.change(id, who, 'resume', ['paused', 'stopped'], async (r) => {
      const failed = failedGateways(await this.deps.db.listJobs({ rollout: id, statuses: ['failed'] })).size;
      await this.deps.db.updateRollout(id, { state: 'running', ...(r.state === 'stopped' ? { ackFailures: failed } : {}) });
    }, true);
  }

  /** Cancels a rollout: unfinished jobs that are not flashing are cancelled and their gateways told. */
  cancel(id: string, who: Actor): Promise<RolloutView> {
    return this.change(id, who, 'cancel', ['running', 'paused', 'stopped'], async () => {
      await this.deps.db.updateRollout(id, { state: 'cancelled', reason: 'cancelled by an operator' });
      for (const j of await this.deps.db.cancelJobs(id)) await this.sendCancel(j.gateway, j.id, 'rollout cancelled by an operator');
    });
  }

  private async change(id: string, who: Actor, action: string, from: RolloutRecord['state'][], apply: (r: RolloutRecord) => Promise<void>, advance = false): Promise<RolloutView> {
    await this.serial(async () => {
      const r = await this.deps.db.getRollout(id);
      if (!r) throw new IocError('HUB_ERR_NOT_FOUND', `no rollout '${id}'`);
      if (!from.includes(r.state)) throw new IocError('FW_ERR_ROLLOUT_STATE', `rollout ${id} is ${r.state}; ${action} needs ${from.join(' or ')}`);
      await apply(r);
      await this.audit(who, `firmware.rollout.${action}`, id, { from: r.state });
    });
    if (advance) await this.advance(id);
    const v = (await this.view(id))!;
    this.emit('rollout', v);
    return v;
  }

  private async audit(who: Actor, action: string, target: string, detail: Record<string, unknown>): Promise<void> {
    await this.deps.audit.record({ actor: who.actor, source: who.source ?? null, action, target, outcome: 'ok', detail });
  }

  // ── views ───────────────────────────────────────────────────────────

  /** A rollout with its manifest summary and progress; null when unknown. */
  async view(id: string): Promise<RolloutView | null> {
    const r = await this.deps.db.getRollout(id);
    if (!r) return null;
    const m = (await this.manifest(r.manifestId))!;
    const jobs = await this.deps.db.listJobs({ rollout: id });
    return { ...r, model: m.model, version: m.version, manifest: { id: m.id, model: m.model, version: m.version, sha256: m.sha256, size: m.size }, progress: progressOf(jobs) };
  }

  async listRollouts(): Promise<RolloutView[]> {
    const out: RolloutView[] = [];
    for (const r of await this.deps.db.listRollouts()) out.push((await this.view(r.id))!);
    return out;
  }

  jobs(rollout: string): Promise<JobRecord[]> {
    return this.deps.db.listJobs({ rollout });
  }

  /** Stored images, newest first. */
  images(): Promise<FirmwareImage[]> {
    return this.deps.db.listImages();
  }

  /** Stored manifests, newest first. */
  listManifests(): Promise<ManifestRecord[]> {
    return this.deps.db.listManifests();
  }

  // ── the engine ──────────────────────────────────────────────────────

  /** Takes the next step of a running rollout (stop, complete, offer a stage). */
  advance(id: string): Promise<void> {
    return this.serial(async () => {
      if (!this.driving()) return; // another node holds the engine; its sweep takes this step
      const r = await this.deps.db.getRollout(id);
      if (!r || r.state !== 'running') return;
      const step = nextStep(r, await this.deps.db.listJobs({ rollout: id }), r.ackFailures);
      if (step.kind === 'wait') return;
      // Each step is written only if the rollout is still as it was read (compare-and-set): an operator's
      // pause or cancel, or another node's step, in between wins, and this step is dropped whole (no offer).
      const was = { state: r.state, stage: r.stage };
      const change = step.kind === 'stop' ? { state: 'stopped' as const, reason: step.reason } : step.kind === 'complete' ? { state: 'completed' as const } : { stage: step.stage };
      if (!(await this.deps.db.updateRollout(id, change, was))) {
        this.deps.logger.info({ rollout: id, step: step.kind }, 'rollout changed while its next step was decided; the step is dropped and decided again from the new state');
        return;
      }
      if (step.kind === 'stop') {
        this.deps.logger.warn({ rollout: id, reason: step.reason, code: 'FW_ERR_ROLLOUT_STATE' }, 'rollout stopped itself');
      } else if (step.kind === 'complete') {
        this.deps.logger.info({ rollout: id }, 'rollout completed');
      } else {
        await this.offer(r, step.jobs);
        this.deps.logger.info({ rollout: id, stage: step.stage, jobs: step.jobs.length }, 'rollout stage started');
      }
      const v = await this.view(id);
      if (v) this.emit('rollout', v);
    });
  }

  private async offer(r: Pick<RolloutRecord, 'id' | 'manifestId'>, jobs: readonly JobRecord[]): Promise<void> {
    const m = await this.manifest(r.manifestId);
    if (!m || jobs.length === 0) return;
    await this.deps.db.markOffered(jobs.map((j) => j.id));
    for (const j of jobs) {
      const offer: FirmwareOffer = { v: 1, job: j.id, rollout: r.id, device: j.device, signed: m.signed, issuedAt: this.now() };
      await this.deps.broker.publish(fwTopics.offer(j.gateway), Buffer.from(JSON.stringify(offer)), { qos: 1, retain: false });
    }
  }

  private async sendCancel(gw: string, job: string, reason: string): Promise<void> {
    const msg: FirmwareCancel = { v: 1, job, reason };
    await this.deps.broker.publish(fwTopics.cancel(gw), Buffer.from(JSON.stringify(msg)), { qos: 1, retain: false });
  }

  private async onState(gw: string, rep: FirmwareStateReport): Promise<void> {
    const job = await this.deps.db.getJob(rep.job);
    if (!job || job.gateway !== gw || job.device !== rep.device) {
      this.deps.logger.warn({ gateway: gw, job: rep.job, device: rep.device }, 'firmware state report for a job this gateway does not hold; ignored');
      return;
    }
    const status: JobStatus = rep.state === 'updated' ? 'updated' : rep.state === 'failed' ? 'failed' : rep.state === 'idle' && rep.error?.code === 'FW_ERR_CANCELLED' ? 'cancelled' : 'active';
    const applied = await this.deps.db.applyReport(job.id, {
      status, state: rep.state, result: rep.result, seq: rep.seq, ...(rep.bytes !== undefined ? { bytes: rep.bytes } : {}), ...(rep.total !== undefined ? { total: rep.total } : {}),
      ...(rep.version !== undefined ? { version: rep.version } : {}), ...(rep.error ? { error: rep.error } : {}),
    });
    if (!applied) return;
    const updated = (await this.deps.db.getJob(job.id))!;
    this.emit('job', updated);
    if (FINAL_JOB.has(status)) {
      this.deps.logger.info({ gateway: gw, device: rep.device, job: job.id, state: rep.state, result: rep.result, code: rep.error?.code }, 'firmware job finished');
      await this.advance(job.rollout);
    }
  }

  private async onSync(gw: string, held: Array<{ job: string; state: string }>): Promise<void> {
    if (!this.driving()) return; // the holder of the engine receives the same sync
    const known = new Map(held.map((h) => [h.job, h.state]));
    for (const j of await this.deps.db.listJobs({ gateway: gw, statuses: ['offered', 'active', 'cancelled'] })) {
      const state = known.get(j.id);
      if (j.status === 'cancelled') {
        if (state !== undefined && state !== 'updated' && state !== 'failed' && state !== 'idle' && state !== 'updating') await this.sendCancel(gw, j.id, 'rollout cancelled');
      } else if (state === undefined) {
        const r = await this.deps.db.getRollout(j.rollout);
        if (r && r.state !== 'cancelled') await this.offer(r, [j]);
      }
    }
  }

  /** Offers again what has been waiting for an answer longer than `olderThanMs`. */
  private async reoffer(olderThanMs: number): Promise<void> {
    if (!this.driving()) return;
    const now = this.now();
    const stale = (await this.deps.db.listJobs({ statuses: ['offered'] })).filter((j) => j.offeredAt !== null && now - j.offeredAt >= olderThanMs);
    const byRollout = new Map<string, JobRecord[]>();
    for (const j of stale) byRollout.set(j.rollout, [...(byRollout.get(j.rollout) ?? []), j]);
    for (const [id, jobs] of byRollout) {
      const r = await this.deps.db.getRollout(id);
      if (r && r.state !== 'cancelled') await this.offer(r, jobs);
    }
  }
}
