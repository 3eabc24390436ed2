/**
 * Pure rollout rules: which devices a rollout targets, which stage each
 * lands in (a canary stage first, then waves), when a rollout stops itself,
 * and the progress counts the API and console show.
 *
 * No gateway chooses its place (issue 13 item 8): targets are ordered by a
 * keyed hash of a random seed recorded in the rollout (reproducible, not
 * predictable from gateway ids), the canary stage holds at most one device
 * per gateway, or exactly the devices an operator named; failures count per
 * distinct gateway, and the threshold needs at least two failed gateways, so
 * one gateway — however many devices it declares — never stops a rollout by
 * itself except as a canary, where the stop reason names it as one gateway
 * and an operator decides (resume accepts it, cancel ends the rollout).
 */
import { createHash } from 'node:crypto';
import { IocError } from '../../contract/index.js';
import { FINAL_JOB, type JobRecord, type RolloutRecord, type RolloutTarget } from './firmware-port.js';

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

/** Failed gateways (beyond those an operator accepted) a failure threshold needs before it can stop a rollout. */
export const MIN_FAILED_GATEWAYS = 2;

/**
 * `targets` in the order of a rollout seeded with `seed`: by SHA-256 of
 * `seed`, gateway and device. The same seed gives the same order; without
 * the seed nobody can tell (or pick a gateway id to be) the first.
 */
export function orderTargets<T extends { gateway: string; device: string }>(targets: readonly T[], seed: string): T[] {
  const key = (x: T): string => createHash('sha256').update(`${seed}\n${x.gateway}/${x.device}`).digest('hex');
  return targets.map((x) => [key(x), x] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, x]) => x);
}

/**
 * Stages of ordered targets: stage 0 the canaries — the devices listed in
 * `canaryDevices` (`gateway/device`), or else the first `canary` targets that
 * are on distinct gateways —, then the rest in order in waves of `waveSize`
 * (stage 1, 2, …; stage 0 holds the first wave when there is no canary).
 * Throws FW_ERR_NO_TARGETS when a listed canary is not a target.
 */
export function planStages(ordered: ReadonlyArray<{ gateway: string; device: string }>, opts: { canary: number; canaryDevices?: readonly string[]; waveSize: number }): { stages: number[]; canaries: number } {
  const isCanary = new Array<boolean>(ordered.length).fill(false);
  if (opts.canaryDevices && opts.canaryDevices.length > 0) {
    const index = new Map(ordered.map((x, i) => [`${x.gateway}/${x.device}`, i]));
    const unknown = opts.canaryDevices.filter((k) => !index.has(k));
    if (unknown.length > 0) throw new IocError('FW_ERR_NO_TARGETS', `canary device(s) ${unknown.join(', ')} are not targets of this rollout (write them as gateway/device)`);
    for (const k of opts.canaryDevices) isCanary[index.get(k)!] = true;
  } else {
    const gateways = new Set<string>();
    for (let i = 0; i < ordered.length && gateways.size < opts.canary; i++) {
      if (gateways.has(ordered[i]!.gateway)) continue;
      gateways.add(ordered[i]!.gateway);
      isCanary[i] = true;
    }
  }
  const canaries = isCanary.filter(Boolean).length;
  let n = 0;
  const stages = ordered.map((_, i) => (isCanary[i] ? 0 : (canaries > 0 ? 1 : 0) + Math.floor(n++ / opts.waveSize)));
  return { stages, canaries };
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
  /** Distinct gateways with a failed job (what the failure threshold counts). */
  failedGateways: number;
}

/** Counts jobs by where they are. */
export function progressOf(jobs: readonly JobRecord[]): RolloutProgress {
  const p: RolloutProgress = { total: jobs.length, pending: 0, offered: 0, downloading: 0, downloaded: 0, updating: 0, inProgress: 0, updated: 0, failed: 0, cancelled: 0, failedGateways: failedGateways(jobs).size };
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

/** Distinct gateways with at least one failed job. */
export function failedGateways(jobs: readonly JobRecord[]): Set<string> {
  return new Set(jobs.filter((j) => j.status === 'failed').map((j) => j.gateway));
}

/**
 * Decides the next step of a running rollout. It stops itself — waiting for
 * an operator, who resumes (accepting the failures so far) or cancels — when
 * a canary job failed, or when at least {@link MIN_FAILED_GATEWAYS} gateways
 * failed (beyond `acknowledged`, the failed gateways an operator accepted by
 * resuming) and they exceed `maxFailurePercent` of the rollout's gateways.
 * Otherwise the lowest stage with unfinished jobs is offered once every
 * earlier stage has finished.
 */
export function nextStep(r: Pick<RolloutRecord, 'canary' | 'maxFailurePercent'>, jobs: readonly JobRecord[], acknowledged = 0): RolloutStep {
  const failed = jobs.filter((j) => j.status === 'failed');
  const canaryFailed = r.canary > 0 ? failed.filter((j) => j.stage === 0) : [];
  if (canaryFailed.length > 0 && acknowledged === 0) {
    const canaryGateways = new Set(jobs.filter((j) => j.stage === 0).map((j) => j.gateway)).size;
    const bad = new Set(canaryFailed.map((j) => j.gateway)).size;
    return {
      kind: 'stop',
      reason: `canary failed: ${canaryFailed.map((j) => `${j.gateway}/${j.device} (${j.error?.code ?? `result ${j.result}`})`).join(', ')} — ${bad} of ${canaryGateways} canary gateway${canaryGateways === 1 ? '' : 's'}; held for an operator: resume to accept and go on, cancel to end`,
    };
  }
  const gateways = new Set(jobs.map((j) => j.gateway)).size;
  const bad = failedGateways(jobs);
  const counted = bad.size - acknowledged;
  if (counted >= MIN_FAILED_GATEWAYS && (counted * 100) / gateways > r.maxFailurePercent) {
    const names = [...bad].sort();
    return { kind: 'stop', reason: `failure threshold passed: ${counted} of ${gateways} gateways failed (${((counted * 100) / gateways).toFixed(1)}% > ${r.maxFailurePercent}%): ${names.slice(0, 10).join(', ')}${names.length > 10 ? ` and ${names.length - 10} more` : ''}` };
  }
  const open = jobs.filter((j) => !FINAL_JOB.has(j.status));
  if (open.length === 0) return { kind: 'complete' };
  const stage = Math.min(...open.map((j) => j.stage));
  const due = open.filter((j) => j.stage === stage && j.status === 'pending');
  return due.length > 0 ? { kind: 'offer', stage, jobs: due } : { kind: 'wait', stage };
}
