/**
 * The storage port of firmware distribution (issue 15 item 1): image
 * records, signed manifests, rollouts and one job per targeted device,
 * whichever backend holds them — SQLite (`FirmwareDb`, firmware-db.ts) or
 * PostgreSQL (`PgFirmwareDb`, hub/store/postgres/pg-firmware.ts). The image
 * bytes themselves sit behind `ImageBytes` (firmware-bridge/image-store.ts):
 * a folder on disk beside SQLite, chunk rows in PostgreSQL so that any hub
 * node serves any image. Both backends run one conformance suite
 * (hub/store/test/state-conformance-config.ts).
 */
import type { FirmwareState, SignedManifest } from '../../contract/index.js';

/** Where a rollout is. `stopped`: it halted itself past its failure threshold. */
export type RolloutState = 'running' | 'paused' | 'stopped' | 'cancelled' | 'completed';

/** Where a job is, as the hub sees it. */
export type JobStatus = 'pending' | 'offered' | 'active' | 'updated' | 'failed' | 'cancelled';

/** Statuses a job never leaves. */
export const FINAL_JOB: ReadonlySet<JobStatus> = new Set(['updated', 'failed', 'cancelled']);

/** A stored manifest. */
export interface ManifestRecord {
  id: string;
  sha256: string;
  model: string;
  version: string;
  size: number;
  keyId: string | null;
  signed: SignedManifest;
  createdAt: number;
  createdBy: string;
}

/** What a rollout targets: devices of a profile, at a site, or listed (`gateway/device`); criteria combine (AND). */
export interface RolloutTarget {
  profile?: string;
  site?: string;
  devices?: string[];
}

/** A rollout. */
export interface RolloutRecord {
  id: string;
  manifestId: string;
  state: RolloutState;
  target: RolloutTarget;
  canary: number;
  waveSize: number;
  maxFailurePercent: number;
  stage: number;
  stages: number;
  reason: string | null;
  /** Failed gateways an operator accepted by resuming a stopped rollout (not counted against the threshold again). */
  ackFailures: number;
  /** Seed of the rollout's target order (rollout-plan.ts orderTargets); null for rollouts made before it existed. */
  seed: string | null;
  /** Canary devices an operator chose (`gateway/device`); null: the first targets of the seeded order. */
  canaryDevices: string[] | null;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
}

/** One device's job in a rollout. */
export interface JobRecord {
  id: string;
  rollout: string;
  gateway: string;
  device: string;
  stage: number;
  status: JobStatus;
  state: FirmwareState | null;
  result: number;
  seq: number;
  bytes: number | null;
  total: number | null;
  version: string | null;
  error: { code: string; message: string } | null;
  offers: number;
  offeredAt: number | null;
  updatedAt: number;
}

/** One stored image's record (the bytes are in the image store). */
export interface FirmwareImage {
  sha256: string;
  size: number;
  uploadedAt: number;
  uploadedBy: string;
}

/** A gateway's report on a job, as FirmwareService maps it. */
export interface JobReport {
  status: JobStatus;
  state: FirmwareState;
  result: number;
  seq: number;
  bytes?: number;
  total?: number;
  version?: string;
  error?: { code: string; message: string };
}

/** Firmware records: images (by hash), signed manifests, rollouts and their per-device jobs. */
export interface FirmwarePort {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Records an uploaded image (the first upload's record is kept). */
  putImage(sha256: string, size: number, by: string): Promise<void>;
  /** Image records, newest first. */
  listImages(): Promise<FirmwareImage[]>;
  /** Stores a manifest; an identical one (same id) is kept as it was. */
  putManifest(m: Omit<ManifestRecord, 'createdAt'>): Promise<ManifestRecord>;
  getManifest(id: string): Promise<ManifestRecord | null>;
  /** Manifests, newest first. */
  listManifests(): Promise<ManifestRecord[]>;
  /** Creates a rollout with its jobs (all `pending`) in one transaction. */
  createRollout(r: Omit<RolloutRecord, 'createdAt' | 'updatedAt' | 'ackFailures'>, jobs: Array<Pick<JobRecord, 'id' | 'gateway' | 'device' | 'stage'>>): Promise<void>;
  getRollout(id: string): Promise<RolloutRecord | null>;
  /** Rollouts, newest first, optionally of some states. */
  listRollouts(q?: { states?: RolloutState[] }): Promise<RolloutRecord[]>;
  /**
   * Changes the given fields (omitted ones are kept); with `expect`, only while
   * the rollout is still in that state and stage (compare-and-set). The
   * rollout engine's steps use it: a step computed from a rollout an operator
   * or another node changed meanwhile (a paused, stopped or cancelled
   * rollout, a stage already started; a node that stalled and lost the
   * engine's lease) changes nothing. True when the row changed.
   */
  updateRollout(id: string, change: Partial<Pick<RolloutRecord, 'state' | 'stage' | 'reason' | 'ackFailures'>>, expect?: Pick<RolloutRecord, 'state' | 'stage'>): Promise<boolean>;
  getJob(id: string): Promise<JobRecord | null>;
  /** Jobs by stage, gateway, device. */
  listJobs(q: { rollout?: string; gateway?: string; statuses?: JobStatus[] }): Promise<JobRecord[]>;
  /** Marks jobs offered (once more): pending ones become offered; offers counted, offer time set. */
  markOffered(ids: string[]): Promise<void>;
  /**
   * Applies a gateway's report if its seq is newer; false when it was stale
   * or the job is final. A cancelled job still takes the reports of a flash
   * that had started before the cancel reached the gateway (a flash always
   * runs to its end), so the record says what the device runs. Atomic: one
   * conditional UPDATE, so two nodes applying reports never go backwards.
   */
  applyReport(id: string, r: JobReport): Promise<boolean>;
  /** Cancels the jobs of a rollout that have not finished and are not flashing; returns those that had been offered (their gateways are told). */
  cancelJobs(rollout: string): Promise<JobRecord[]>;
}

/** SQL condition shared by both backends: the jobs {@link FirmwarePort.cancelJobs} cancels (first parameter: the rollout). */
export const CANCELLABLE = "(status IN ('pending', 'offered') OR (status = 'active' AND coalesce(state, '') <> 'updating'))";
