/**
 * Pure rollout rules: which devices a rollout targets, which stage each
 * lands in (a canary stage first, then waves), when a rollout stops itself,
 * and the progress counts the API and console show.
 */
import { IocError } from '../../contract/index.js';
import { FINAL_JOB, type JobRecord, type RolloutRecord, type RolloutTarget } from './firmware-db.js';

/** A field device the registry knows. */
export interface KnownDevice {
  gateway: string;
  id: string;
  profile: string;
}

/**
 * The devices a rollout of firmware for `model` targets: every known device
 * of that model, narrowed by site and by an explicit `gateway/device` list.
 * Throws FW_ERR_WRONG_MODEL when the target names another profile or lists a
 * device of another model, FW_ERR_NO_TARGETS when a listed device is unknown
 * or nothing is left.
 */
export function selectTargets(devices: readonly KnownDevice[], siteOf: ReadonlyMap<string, string | null>, target: RolloutTarget, model: string): Array<{ gateway: string; device: string }> {
  if (target.profile !== undefined && target.profile !== model) {
    throw new IocError('FW_ERR_WRONG_MODEL', `the firmware is for model '${model}'; the rollout targets profile '${target.profile}'`);
  }
  let pool = [...devices];
  if (target.devices) {
    const byKey = new Map(devices.map((d) => [`${d.gateway}/${d.id}`, d]));
    const unknown = target.devices.filter((k) => !byKey.has(k));
    if (unknown.length > 0) throw new IocError('FW_ERR_NO_TARGETS', `unknown device(s): ${unknown.join(', ')} (write them as gateway/device)`);
    const wrong = target.devices.filter((k) => byKey.get(k)!.profile !== model);
    if (wrong.length > 0) throw new IocError('FW_ERR_WRONG_MODEL', `the firmware is for model '${model}'; ${wrong.map((k) => `${k} is a '${byKey.get(k)!.profile}'`).join(', ')}`);
    const keep = new Set(target.devices);
    pool = pool.filter((d) => keep.has(`${d.gateway}/${d.id}`));
  }
  pool = pool.filter((d) => d.profile === model);
  if (target.site !== undefined) pool = pool.filter((d) => siteOf.get(d.gateway) === target.site);
  if (pool.length === 0) {
    throw new IocError('FW_ERR_NO_TARGETS', `no known device of model '${model}'${target.site !== undefined ? ` at site '${target.site}'` : ''}${target.devices ? ' in the list' : ''}`);
  }
  return pool.sort((a, b) => (a.gateway === b.gateway ? a.id.localeCompare(b.id) : a.gateway.localeCompare(b.gateway))).map((d) => ({ gateway: d.gateway, device: d.id }));
}

/** Stage of each of `count` targets: the first `canary` in stage 0, then waves of `waveSize` (stage 1, 2, …; stage 0 holds the first wave when there is no canary). */
export function assignStages(count: number, canary: number, waveSize: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    if (i < canary) out.push(0);
    else out.push((canary > 0 ? 1 : 0) + Math.floor((i - canary) / waveSize));
  }
  return out;
}

/** Job counts of a rollout. */
export interface RolloutProgress {
  total: number;
  pending: number;
  offered: number;
  downloading: number;
  downloaded: number;
  updating: number;
  /** offered + downloading + downloaded + updating. */
  inProgress: number;
  updated: number;
  failed: number;
  cancelled: number;
}

/** Counts jobs by where they are. */
export function progressOf(jobs: readonly JobRecord[]): RolloutProgress {
  const p: RolloutProgress = { total: jobs.length, pending: 0, offered: 0, downloading: 0, downloaded: 0, updating: 0, inProgress: 0, updated: 0, failed: 0, cancelled: 0 };
  for (const j of jobs) {
    if (j.status === 'pending') p.pending++;
    else if (j.status === 'offered') p.offered++;
    else if (j.status === 'active') {
      if (j.state === 'updating') p.updating++;
      else if (j.state === 'downloaded') p.downloaded++;
      else p.downloading++;
    } else p[j.status]++;
  }
  p.inProgress = p.offered + p.downloading + p.downloaded + p.updating;
  return p;
}

/** What a running rollout should do next. */
export type RolloutStep =
  | { kind: 'stop'; reason: string }
  | { kind: 'complete' }
  | { kind: 'offer'; stage: number; jobs: JobRecord[] }
  | { kind: 'wait'; stage: number };

/**
 * Decides the next step of a running rollout. It stops itself when a canary
 * job failed, or when the failed jobs (beyond `acknowledged`, the failures
 * an operator accepted by resuming) exceed `maxFailurePercent` of all its
 * jobs. Otherwise the lowest stage with unfinished jobs is offered once
 * every earlier stage has finished.
 */
export function nextStep(r: Pick<RolloutRecord, 'canary' | 'maxFailurePercent'>, jobs: readonly JobRecord[], acknowledged = 0): RolloutStep {
  const failed = jobs.filter((j) => j.status === 'failed');
  const canaryFailed = r.canary > 0 && failed.some((j) => j.stage === 0);
  const counted = failed.length - acknowledged;
  if (canaryFailed && acknowledged === 0) {
    return { kind: 'stop', reason: `canary failed: ${failed.filter((j) => j.stage === 0).map((j) => `${j.gateway}/${j.device} (${j.error?.code ?? `result ${j.result}`})`).join(', ')}` };
  }
  if (jobs.length > 0 && (counted * 100) / jobs.length > r.maxFailurePercent) {
    return { kind: 'stop', reason: `failure threshold passed: ${counted} of ${jobs.length} jobs failed (${((counted * 100) / jobs.length).toFixed(1)}% > ${r.maxFailurePercent}%)` };
  }
  const open = jobs.filter((j) => !FINAL_JOB.has(j.status));
  if (open.length === 0) return { kind: 'complete' };
  const stage = Math.min(...open.map((j) => j.stage));
  const due = open.filter((j) => j.stage === stage && j.status === 'pending');
  return due.length > 0 ? { kind: 'offer', stage, jobs: due } : { kind: 'wait', stage };
}
