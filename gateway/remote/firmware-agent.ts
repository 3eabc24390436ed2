/**
 * The gateway's firmware agent (issue 7). For each offer from the hub
 * (`fw/offer`) it runs one job per device through the LwM2M firmware update
 * states (firmware-bridge/job-machine.ts), reporting every change on
 * `fw/state` and as a `fw.<state>` event:
 *
 * 1. checks before anything is fetched: the manifest is signed by a key in
 *    `firmware.trustedKeys` or one the hub handed over at provisioning, the signature verifies, it is for this device's
 *    model, and the device's profile and line can take it — else `failed`
 *    with result 5 (integrity) or 6 (unsupported package);
 * 2. downloads the image in chunks (firmware-bridge/chunk-download.ts),
 *    progress in `<dataDir>/firmware.sqlite`, resuming after an outage or a
 *    restart with exactly the missing chunks; one download per image however
 *    many devices take it;
 * 3. checks size and SHA-256 (result 5 on a mismatch) — again right before
 *    flashing, also after a restart;
 * 4. flashes with the profile's flasher and confirms the version read back
 *    (gateway/remote/firmware-flash.ts); one flash at a time.
 *
 * A job that failed stays failed: nothing is retried by itself (no retry
 * storms against a device that cannot take the image). A restart during a
 * flash fails that job (result 8): the device's state is unknown.
 * State reports are stored first and the latest one of each job is sent again
 * after every reconnect (the hub keeps the highest `seq`); `fw/sync` after
 * each connect tells the hub which jobs this gateway holds.
 */
import path from 'node:path';
import {
  IocError, decodeChunkFrame, fwTopics, isFinalFwState, isIocError, parseJson, validateFirmwareCancel, validateFirmwareOffer,
  type FirmwareManifest, type FirmwareOffer, type FirmwareStateReport, type GatewayEvent,
} from '../../contract/index.js';
import { ChunkDownload, DownloadStore, JobMachine, parsePublicKey, verifyImage, verifyManifest, type StoredJob, type TrustedKey } from '../../firmware-bridge/index.js';
import type { Logger } from '../../lib/index.js';
import type { GatewayConfig } from '../config.js';
import { eventId } from '../southbound/device-state.js';
import { flashDevice, planFlash, type FlashDeps } from './firmware-flash.js';
import type { Uplink } from '../uplink/uplink.js';

/** Dependencies of {@link FirmwareAgent}. */
export interface FirmwareAgentDeps extends FlashDeps {
  gatewayId: string;
  dataDir: string;
  uplink: Pick<Uplink, 'subscribe' | 'publish' | 'connected' | 'on' | 'off'>;
  onEvent: (event: GatewayEvent) => void;
  /** Keys the hub handed over at provisioning, trusted next to `firmware.trustedKeys`. */
  provisionedKeys?: readonly string[];
}

interface Running {
  machine: JobMachine;
  job: StoredJob;
  abort: AbortController;
  lastReportAt: number;
}

/** Downloads and flashes firmware offered by the hub. */
export class FirmwareAgent {
  private store: DownloadStore | null = null;
  private readonly jobs = new Map<string, Running>();
  private readonly downloads = new Map<string, { dl: ChunkDownload; promise: Promise<Buffer>; jobs: Set<string>; abort: AbortController }>();
  private flashQueue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly onConnect = (): void => void this.onConnected();
  private readonly onOffline = (): void => {
    for (const d of this.downloads.values()) d.dl.pause();
  };

  constructor(private readonly deps: FirmwareAgentDeps) {}

  private get db(): DownloadStore {
    if (!this.store) throw new IocError('FW_ERR_STORE_IO', 'firmware agent is not started');
    return this.store;
  }

  private settings(): NonNullable<GatewayConfig['firmware']> {
    return this.deps.config().firmware ?? { trustedKeys: [], window: 16, chunkTimeoutMs: 5000, stallTimeoutS: 86_400 };
  }

  private trusted(): TrustedKey[] {
    const out: TrustedKey[] = [];
    for (const k of [...this.settings().trustedKeys, ...(this.deps.provisionedKeys ?? [])]) {
      try {
        out.push(parsePublicKey(k));
      } catch (err) {
        this.deps.logger.warn({ err: (err as Error).message, code: 'FW_ERR_MANIFEST' }, 'a configured firmware key cannot be read; ignored');
      }
    }
    return out;
  }

  /** Job states as the agent holds them (tests, status). */
  async list(): Promise<StoredJob[]> {
    return this.db.listJobs();
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.store = new DownloadStore({ file: path.join(this.deps.dataDir, 'firmware.sqlite') });
    await this.store.start();
    const { uplink, gatewayId } = this.deps;
    await uplink.subscribe(fwTopics.offer(gatewayId), (p) => void this.onOffer(p));
    await uplink.subscribe(fwTopics.cancel(gatewayId), (p) => void this.onCancel(p));
    await uplink.subscribe(fwTopics.chunk(gatewayId), (p) => this.onChunk(p));
    uplink.on('connect', this.onConnect);
    uplink.on('offline', this.onOffline);
    for (const job of await this.db.listJobs()) {
      if (isFinalFwState(job.state) || (job.state === 'idle' && job.error)) continue;
      const run = this.track(job);
      if (job.state === 'updating') await this.fail(run, new IocError('FW_ERR_FLASH_TIMEOUT', 'the gateway restarted while this device was being flashed; its state is unknown'));
      else if (job.state === 'downloaded') this.enqueueFlash(run);
      else if (job.state === 'idle') await this.accept(run);
      else this.download(run);
    }
    if (uplink.connected) void this.onConnected();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.deps.uplink.off('connect', this.onConnect);
    this.deps.uplink.off('offline', this.onOffline);
    for (const d of this.downloads.values()) d.abort.abort();
    for (const r of this.jobs.values()) r.abort.abort();
    await Promise.allSettled([...this.downloads.values()].map((d) => d.promise));
    await this.flashQueue.catch(() => undefined);
    this.downloads.clear();
    this.jobs.clear();
    const s = this.store;
    this.store = null;
    await s?.stop();
  }

  private track(job: StoredJob): Running {
    const run: Running = { machine: new JobMachine(job), job, abort: new AbortController(), lastReportAt: 0 };
    this.jobs.set(job.job, run);
    return run;
  }

  /** After each (re)connect: tell the hub which jobs we hold, send unacknowledged reports, resume downloads. */
  private async onConnected(): Promise<void> {
    if (this.stopped) return;
    try {
      const all = await this.db.listJobs();
      await this.deps.uplink.publish(fwTopics.sync(this.deps.gatewayId), JSON.stringify({ v: 1, jobs: all.map((j) => ({ job: j.job, state: j.state })) }), { qos: 1 });
      // Every job's latest report (the newest 200): a PUBACK only says the broker got it, not that the hub
      // stored it before a crash; the hub keeps the highest seq, so repeats cost nothing.
      for (const j of all.slice(-200)) if (j.seq > 0) await this.send(this.jobs.get(j.job)?.machine.report() ?? new JobMachine(j).report());
    } catch (err) {
      this.deps.logger.debug({ err: (err as Error).message }, 'firmware sync not sent; next connect');
    }
    for (const d of this.downloads.values()) d.dl.resume();
  }

  private async onOffer(payload: Buffer): Promise<void> {
    let offer: FirmwareOffer;
    try {
      offer = validateFirmwareOffer(parseJson(payload));
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message, code: 'CONTRACT_ERR_INVALID_PAYLOAD' }, 'firmware offer refused: malformed');
      return;
    }
    const existing = await this.db.getJob(offer.job);
    if (existing) {
      await this.send(this.jobs.get(offer.job)?.machine.report() ?? new JobMachine(existing).report()).catch(() => undefined);
      return;
    }
    const m = offer.signed.manifest;
    const job: Omit<StoredJob, 'createdAt' | 'updatedAt' | 'reportedSeq'> = { job: offer.job, device: offer.device, rollout: offer.rollout, image: m.sha256, signed: offer.signed, state: 'idle', result: 0, seq: 0 };
    if (!(await this.db.addJob(job))) return;
    const run = this.track({ ...job, reportedSeq: 0, createdAt: Date.now(), updatedAt: Date.now() });
    this.deps.logger.info({ job: offer.job, device: offer.device, model: m.model, version: m.version, size: m.size }, 'firmware offered');
    await this.accept(run);
  }

  /** The checks before any byte is fetched (signature, trusted key, model, flasher and line), then the download. */
  private async accept(run: Running): Promise<void> {
    try {
      const plan = planFlash(this.deps, run.job.device);
      verifyManifest(run.job.signed, this.trusted(), plan.profile.model);
    } catch (err) {
      await this.fail(run, err);
      return;
    }
    await this.transition(run, 'downloading', { bytes: 0, total: run.job.signed.manifest.size });
    this.download(run);
  }

  private async onCancel(payload: Buffer): Promise<void> {
    let job: string;
    try {
      job = validateFirmwareCancel(parseJson(payload)).job;
    } catch {
      return;
    }
    const run = this.jobs.get(job);
    if (!run || (run.machine.state !== 'downloading' && run.machine.state !== 'downloaded')) return; // unknown, flashing or finished
    run.abort.abort();
    this.release(run);
    await this.transition(run, 'idle', { error: new IocError('FW_ERR_CANCELLED', 'the rollout was cancelled') });
    this.jobs.delete(job);
  }

  private onChunk(payload: Buffer): void {
    let frame;
    try {
      frame = decodeChunkFrame(payload);
    } catch (err) {
      this.deps.logger.debug({ err: (err as Error).message }, 'firmware chunk dropped (it will be asked for again)');
      return;
    }
    this.downloads.get(frame.image)?.dl.accept(frame);
  }

  /** Starts (or joins) the download of a job's image. */
  private download(run: Running): void {
    const manifest = run.job.signed.manifest;
    let d = this.downloads.get(manifest.sha256);
    if (!d) {
      const s = this.settings();
      const abort = new AbortController();
      const dl = new ChunkDownload({
        store: this.db, job: run.job.job, manifest, logger: this.deps.logger.child({ component: 'firmware', image: manifest.sha256.slice(0, 12) }),
        window: s.window, requestTimeoutMs: s.chunkTimeoutMs, stallTimeoutMs: s.stallTimeoutS * 1000, signal: abort.signal,
        requester: { request: (req) => this.deps.uplink.publish(fwTopics.request(this.deps.gatewayId), JSON.stringify(req), { qos: 0 }) },
        onProgress: (bytes, total) => {
          for (const id of d!.jobs) {
            const r = this.jobs.get(id);
            if (r && r.machine.state === 'downloading' && Date.now() - r.lastReportAt >= 1000 && bytes < total) void this.transition(r, 'downloading', { bytes, total }).catch(() => undefined);
          }
        },
      });
      d = { dl, promise: dl.run(), jobs: new Set(), abort };
      if (!this.deps.uplink.connected) dl.pause();
      const entry = d;
      this.downloads.set(manifest.sha256, entry);
      entry.promise.then(
        () => this.downloads.delete(manifest.sha256),
        () => this.downloads.delete(manifest.sha256),
      );
    }
    d.jobs.add(run.job.job);
    d.promise.then(
      async () => {
        if (run.abort.signal.aborted || this.stopped) return;
        await this.transition(run, 'downloaded', { bytes: manifest.size, total: manifest.size });
        this.enqueueFlash(run);
      },
      async (err: unknown) => {
        if (run.abort.signal.aborted || this.stopped) return;
        await this.fail(run, err);
      },
    );
  }

  /** Drops a job from its download; the download stops when no job needs it. */
  private release(run: Running): void {
    const d = this.downloads.get(run.job.image);
    if (!d) return;
    d.jobs.delete(run.job.job);
    if (d.jobs.size === 0) d.abort.abort();
  }

  private enqueueFlash(run: Running): void {
    this.flashQueue = this.flashQueue.then(() => this.flash(run)).catch((err: unknown) => this.deps.logger.error({ err }, 'firmware flash step failed'));
  }

  private async flash(run: Running): Promise<void> {
    if (this.stopped || run.abort.signal.aborted || run.machine.state !== 'downloaded') return;
    const manifest: FirmwareManifest = run.job.signed.manifest;
    let plan;
    let image: Buffer;
    try {
      plan = planFlash(this.deps, run.job.device);
      image = await this.db.assemble(manifest.sha256);
      verifyImage(manifest, image); // hash checked right before flashing, whatever happened since the download
    } catch (err) {
      await this.fail(run, err);
      if (isIocError(err, 'FW_ERR_INTEGRITY')) await this.db.dropChunks(manifest.sha256);
      return;
    }
    await this.transition(run, 'updating', { bytes: 0, total: manifest.size });
    try {
      const version = await flashDevice(this.deps, plan, image, manifest, {
        signal: run.abort.signal,
        onProgress: (bytes, total) => {
          if (Date.now() - run.lastReportAt >= 1000 && bytes < total) void this.transition(run, 'updating', { bytes, total }).catch(() => undefined);
        },
      });
      await this.transition(run, 'updated', { version, bytes: manifest.size, total: manifest.size });
    } catch (err) {
      // Stopping the gateway aborts a flash (the sender cancels cleanly); the device's state is then unknown.
      await this.fail(run, this.stopped ? new IocError('FW_ERR_FLASH_TIMEOUT', 'the gateway stopped while this device was being flashed; its state is unknown', { cause: err }) : err).catch(() => undefined);
    }
    await this.cleanup(manifest.sha256);
  }

  /** Drops an image's chunks once no unfinished job needs them. */
  private async cleanup(image: string): Promise<void> {
    const open = (await this.db.listJobs()).some((j) => j.image === image && !isFinalFwState(j.state) && j.state !== 'idle');
    if (!open) await this.db.dropChunks(image);
  }

  private async fail(run: Running, err: unknown): Promise<void> {
    this.release(run);
    await this.transition(run, 'failed', { error: err });
    this.jobs.delete(run.job.job);
  }

  /** Applies a transition, stores it, reports it to the hub and as an event (progress steps: report only). */
  private async transition(run: Running, to: Parameters<JobMachine['to']>[0], info: Parameters<JobMachine['to']>[1] = {}): Promise<void> {
    const progress = to === run.machine.state;
    const rep = run.machine.to(to, info);
    run.lastReportAt = Date.now();
    await this.db.saveState(run.machine.snapshot);
    if (!progress) {
      const failed = to === 'failed';
      const log = failed ? this.deps.logger.warn.bind(this.deps.logger) : this.deps.logger.info.bind(this.deps.logger);
      log({ job: rep.job, device: rep.device, state: rep.state, result: rep.result, code: rep.error?.code, version: rep.version }, `firmware job ${rep.state}${rep.error ? `: ${rep.error.message}` : ''}`);
      const m = run.job.signed.manifest;
      this.deps.onEvent({
        v: 1, id: eventId(), ts: rep.ts, type: `fw.${rep.state}`, severity: failed ? 'warning' : 'info', device: rep.device, ...(rep.error ? { code: rep.error.code } : {}),
        message: `firmware ${m.model} ${m.version} on ${rep.device}: ${rep.state}${rep.error ? ` (${rep.error.message})` : ''}`.slice(0, 1024),
        data: { job: rep.job, rollout: run.job.rollout, version: m.version, result: rep.result },
      });
    }
    await this.send(rep).catch(() => undefined);
  }

  /** Publishes a report; marks it acknowledged on PUBACK. Offline: sent again after the next connect. */
  private async send(rep: FirmwareStateReport): Promise<void> {
    await this.deps.uplink.publish(fwTopics.state(this.deps.gatewayId), JSON.stringify(rep), { qos: 1 });
    await this.store?.markReported(rep.job, rep.seq);
  }
}
