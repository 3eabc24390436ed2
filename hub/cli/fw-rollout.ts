/**
 * `ioc-edge fw rollout|status|pause|resume|cancel`: firmware rollouts
 * through the hub API (operator role to change, viewer to look). `--wait`
 * and `status --watch` follow a rollout with a progress bar until it ends.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isIocError } from '../../contract/index.js';
import { API_HELP, API_OPTIONS, apiTarget, callApi, type ApiTarget } from './api-client.js';
import type { Command, CommandIo } from './command.js';
import { ProgressLine, bar } from './fw-progress.js';
import { parse } from './parse.js';

interface Progress { total: number; pending: number; inProgress: number; updated: number; failed: number; cancelled: number; downloading: number; updating: number }
interface RolloutView { id: string; state: string; reason: string | null; model: string; version: string; stage: number; stages: number; progress: Progress; createdAt: number; seed?: string | null }
interface JobView { gateway: string; device: string; stage: number; status: string; state: string | null; result: number; bytes: number | null; total: number | null; version: string | null; error: { code: string; message: string } | null }

const FINAL = new Set(['completed', 'stopped', 'cancelled']);

function fail(io: CommandIo, e: unknown): number {
  io.err.write(`${isIocError(e) ? e.message : String(e)}\n`);
  return 1;
}

/** One line about a rollout. */
export function summary(r: RolloutView): string {
  const p = r.progress;
  return `${r.id} ${r.model} ${r.version} ${r.state} stage ${r.stage + 1}/${r.stages} ${bar(p.updated + p.failed + p.cancelled, p.total, 20)} ${p.updated} updated, ${p.inProgress} in progress, ${p.failed} failed, ${p.pending} pending of ${p.total}`;
}

/** Follows a rollout until it completes, stops or is cancelled; exit code 0 only when completed without failures. */
async function follow(target: ApiTarget, id: string, io: CommandIo, everyMs: number): Promise<number> {
  const line = new ProgressLine(io);
  for (;;) {
    const r = await callApi<RolloutView>(target, 'GET', `/api/v1/firmware/rollouts/${id}`);
    line.update(summary(r));
    if (FINAL.has(r.state)) {
      line.done();
      if (r.reason) io.out.write(`${r.state}: ${r.reason}\n`);
      return r.state === 'completed' && r.progress.failed === 0 ? 0 : 1;
    }
    await sleep(everyMs);
  }
}

const ROLLOUT_HELP = `Usage: ioc-edge fw rollout --manifest ID [--profile MODEL] [--site SITE] [--device GW/DEVICE ...]
                           [--canary N | --canary-device GW/DEVICE ...] [--seed S]
                           [--wave-size N] [--max-failure-percent P] [--wait]

Starts a rollout of a manifest to the devices of its model (narrowed by
--site and a --device list), in a random order drawn from --seed (default:
a fresh one, shown in the rollout). The first --canary devices of that order
(default 1, on distinct gateways), or the devices named with --canary-device,
go first; the others follow in waves of --wave-size (default 10), each once
the previous stage has finished. The rollout stops itself, for an operator
to resume or cancel, when a canary fails or when at least two gateways and
more than --max-failure-percent (default 10) of its gateways failed.
--wait follows it with a progress bar until it ends.

${API_HELP}`;

export const fwRollout: Command = {
  name: 'fw rollout',
  summary: 'start a staged firmware rollout (canary, then waves)',
  async run(args, io) {
    const p = parse(args, {
      ...API_OPTIONS, manifest: { type: 'string' }, profile: { type: 'string' }, site: { type: 'string' }, device: { type: 'string', multiple: true },
      canary: { type: 'string' }, 'canary-device': { type: 'string', multiple: true }, seed: { type: 'string' }, 'wave-size': { type: 'string' }, 'max-failure-percent': { type: 'string' }, wait: { type: 'boolean' }, interval: { type: 'string' },
    }, ROLLOUT_HELP, io);
    if ('exit' in p) return p.exit;
    const v = p.values;
    if (!v.manifest) {
      io.err.write(`missing --manifest\n${ROLLOUT_HELP}\n`);
      return 2;
    }
    const nums: Record<string, number> = {};
    for (const [opt, key] of [['canary', 'canary'], ['wave-size', 'waveSize'], ['max-failure-percent', 'maxFailurePercent']] as const) {
      const s = v[opt];
      if (s === undefined) continue;
      const n = Number(s);
      if (!Number.isFinite(n) || n < 0) {
        io.err.write(`--${opt}: '${s}' is not a number\n`);
        return 2;
      }
      nums[key] = n;
    }
    const target = { ...(v.profile ? { profile: v.profile } : {}), ...(v.site ? { site: v.site } : {}), ...(v.device?.length ? { devices: v.device } : {}) };
    try {
      const api = apiTarget(v);
      const r = await callApi<RolloutView>(api, 'POST', '/api/v1/firmware/rollouts', { manifest: v.manifest, target, ...nums, ...(v['canary-device']?.length ? { canaryDevices: v['canary-device'] } : {}), ...(v.seed ? { seed: v.seed } : {}) });
      io.out.write(`rollout ${r.id}: ${r.model} ${r.version} to ${r.progress.total} device(s) in ${r.stages} stage(s)${r.seed ? `, order seed ${r.seed}` : ''}\n`);
      return v.wait ? await follow(api, r.id, io, Number(v.interval ?? 1000)) : 0;
    } catch (e) {
      return fail(io, e);
    }
  },
};

const STATUS_HELP = `Usage: ioc-edge fw status [ROLLOUT] [--watch]

Without ROLLOUT: every rollout, one line each. With it: the rollout and each
device's job (state, LwM2M result code, bytes, version read back, error).
--watch follows the rollout with a progress bar until it ends.

${API_HELP}`;

export const fwStatus: Command = {
  name: 'fw status',
  summary: 'show firmware rollouts and their devices',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS, watch: { type: 'boolean' }, interval: { type: 'string' } }, STATUS_HELP, io, true);
    if ('exit' in p) return p.exit;
    const api = apiTarget(p.values);
    const id = p.positionals[0];
    try {
      if (!id) {
        const list = await callApi<{ items: RolloutView[] }>(api, 'GET', '/api/v1/firmware/rollouts');
        if (list.items.length === 0) io.out.write('no rollouts\n');
        for (const r of list.items) io.out.write(`${summary(r)}\n`);
        return 0;
      }
      if (p.values.watch) return await follow(api, id, io, Number(p.values.interval ?? 1000));
      const r = await callApi<RolloutView & { jobs: JobView[] }>(api, 'GET', `/api/v1/firmware/rollouts/${id}`);
      io.out.write(`${summary(r)}\n`);
      if (r.reason) io.out.write(`reason: ${r.reason}\n`);
      for (const j of r.jobs) {
        const bytes = j.bytes !== null && j.total ? ` ${bar(j.bytes, j.total, 10)}` : '';
        io.out.write(`  stage ${j.stage + 1} ${j.gateway}/${j.device}: ${j.status}${j.state ? ` (${j.state}, result ${j.result})` : ''}${bytes}${j.version ? ` version ${j.version}` : ''}${j.error ? ` — ${j.error.code}: ${j.error.message}` : ''}\n`);
      }
      return 0;
    } catch (e) {
      return fail(io, e);
    }
  },
};

function action(name: 'pause' | 'resume' | 'cancel', summaryText: string, help: string): Command {
  const HELP = `Usage: ioc-edge fw ${name} ROLLOUT\n\n${help}\n\n${API_HELP}`;
  return {
    name: `fw ${name}`,
    summary: summaryText,
    async run(args, io) {
      const p = parse(args, { ...API_OPTIONS }, HELP, io, true);
      if ('exit' in p) return p.exit;
      const id = p.positionals[0];
      if (!id) {
        io.err.write(`missing ROLLOUT\n${HELP}\n`);
        return 2;
      }
      try {
        const r = await callApi<RolloutView>(apiTarget(p.values), 'POST', `/api/v1/firmware/rollouts/${encodeURIComponent(id)}/${name}`);
        io.out.write(`${summary(r)}\n`);
        return 0;
      } catch (e) {
        return fail(io, e);
      }
    },
  };
}

export const fwPause = action('pause', 'pause a firmware rollout (nothing new is offered)', 'Nothing new is offered; jobs already offered go on.');
export const fwResume = action('resume', 'resume a paused or stopped firmware rollout', 'A rollout that stopped itself resumes with its failures so far accepted.');
export const fwCancel = action('cancel', 'cancel a firmware rollout', 'Unfinished jobs that are not flashing are cancelled and their gateways told; a flash in progress runs to its end.');
