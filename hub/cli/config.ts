/**
 * `ioc-edge config push|get|diff|status` and `ioc-edge gateway command`:
 * remote configuration and commands through the hub API (operator role to
 * push and command, viewer to read).
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isIocError } from '../../contract/index.js';
import { API_HELP, API_OPTIONS, apiTarget, callApi, type ApiTarget } from './api-client.js';
import type { Command, CommandIo } from './command.js';
import { parse } from './parse.js';

function fail(io: CommandIo, e: unknown): number {
  io.err.write(`${isIocError(e) ? e.message : String(e)}\n`);
  const problems = isIocError(e) ? (e.context.problems as Array<{ pointer: string; message: string }> | undefined) : undefined;
  for (const p of problems ?? []) io.err.write(`  ${p.pointer || '/'}: ${p.message}\n`);
  return 1;
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

const enc = encodeURIComponent;

interface ViewRow {
  gateway: string; online: boolean; state: string; behind: number; lagS: number | null; why?: string;
  desired: { version: number; pushedBy: string; pushedAt: number } | null;
  reported: { running: { version: number }; status: string; version: number } | null;
}

const PUSH_HELP = `Usage: ioc-edge config push GATEWAY --file CONFIG.json [--profile PROFILE.json …] [--note TEXT]
                               [--confirm-window SECONDS] [--base-version N] [--wait SECONDS]

Pushes a new version of GATEWAY's configuration. The hub checks it against the
gateway configuration schema and the device profiles first and refuses it with
JSON pointers to what is wrong. Settings that belong to the gateway itself
(dataDir, profileDirs, hub.credentialFile, hub.claim, hub.claimFile) may not be
pushed. --profile adds a device profile the configuration needs. After applying,
the gateway must reach the hub again within --confirm-window seconds (default
30) or it goes back to its last good version by itself. --base-version refuses
the push if someone pushed since that version. --wait follows the gateway until
it applied the version and confirmed it (or runs a newer one), or failed
(exit 1), or SECONDS passed (exit 3).

${API_HELP}`;

export const configPush: Command = {
  name: 'config push',
  summary: 'push a new configuration version to a gateway',
  async run(args, io) {
    const p = parse(args, {
      ...API_OPTIONS, file: { type: 'string', short: 'f' }, profile: { type: 'string', multiple: true }, note: { type: 'string' },
      'confirm-window': { type: 'string' }, 'base-version': { type: 'string' }, wait: { type: 'string' },
    }, PUSH_HELP, io, true);
    if ('exit' in p) return p.exit;
    const v = p.values;
    const gateway = p.positionals[0];
    if (!gateway || p.positionals.length > 1 || !v.file) {
      io.err.write(`give one gateway id and --file\n${PUSH_HELP}\n`);
      return 2;
    }
    const num = (s: string | undefined, what: string): number | undefined | null => {
      if (s === undefined) return undefined;
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0) {
        io.err.write(`${what}: '${s}' is not a whole number\n`);
        return null;
      }
      return n;
    };
    const confirmWindowS = num(v['confirm-window'], '--confirm-window');
    const baseVersion = num(v['base-version'], '--base-version');
    const wait = num(v.wait, '--wait');
    if (confirmWindowS === null || baseVersion === null || wait === null) return 2;
    const target = apiTarget(v);
    try {
      const config = await readJson(v.file);
      const profiles = await Promise.all((v.profile ?? []).map(readJson));
      const body = { config, ...(profiles.length ? { profiles } : {}), ...(v.note ? { note: v.note } : {}), ...(confirmWindowS !== undefined ? { confirmWindowS } : {}), ...(baseVersion !== undefined ? { baseVersion } : {}) };
      const r = await callApi<{ version: number; hash: string; published: boolean }>(target, 'POST', `/api/v1/gateways/${enc(gateway)}/config`, body);
      io.out.write(`gateway ${gateway}: version ${r.version} accepted (${r.hash})${r.published ? '' : '; not yet published (broker), the hub retries at its next start'}\n`);
      if (wait === undefined) return 0;
      return await follow(target, gateway, r.version, wait, io);
    } catch (e) {
      return fail(io, e);
    }
  },
};

/** Polls the gateway's view until `version` is applied and confirmed, superseded, or failed. */
async function follow(target: ApiTarget, gateway: string, version: number, waitS: number, io: CommandIo): Promise<number> {
  const deadline = Date.now() + waitS * 1000;
  let last = '';
  for (;;) {
    const row = await callApi<ViewRow>(target, 'GET', `/api/v1/gateways/${enc(gateway)}/config`);
    const rep = row.reported;
    const line = rep ? `${rep.status} (version ${rep.version}; running ${rep.running.version})` : 'no report yet';
    if (line !== last) io.out.write(`  ${line}\n`);
    last = line;
    // Done when the version is confirmed (a confirming version can still roll back) or a newer one runs.
    if (rep && (rep.running.version > version || (rep.version === version && rep.status === 'applied'))) return 0;
    if (rep && rep.version === version && (rep.status === 'rejected' || rep.status === 'rolled-back')) {
      io.err.write(`version ${version} failed: ${row.why ?? rep.status}\n`);
      return 1;
    }
    if (Date.now() > deadline) {
      io.err.write(`gave up after ${waitS} s: ${row.why ?? row.state}\n`);
      return 3;
    }
    await sleep(500);
  }
}

const GET_HELP = `Usage: ioc-edge config get GATEWAY [--version N]

Prints a configuration version of GATEWAY (default: the newest) as JSON, ready
to edit and push again. Passwords are shown as fingerprints, never in clear.

${API_HELP}`;

export const configGet: Command = {
  name: 'config get',
  summary: 'print a configuration version of a gateway (JSON)',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS, version: { type: 'string' } }, GET_HELP, io, true);
    if ('exit' in p) return p.exit;
    const gateway = p.positionals[0];
    if (!gateway || p.positionals.length > 1) {
      io.err.write(`give one gateway id\n${GET_HELP}\n`);
      return 2;
    }
    try {
      const target = apiTarget(p.values);
      const doc = p.values.version
        ? await callApi<unknown>(target, 'GET', `/api/v1/gateways/${enc(gateway)}/config/versions/${enc(p.values.version)}`)
        : (await callApi<{ document: unknown }>(target, 'GET', `/api/v1/gateways/${enc(gateway)}/config`)).document;
      if (!doc) {
        io.err.write(`no configuration was ever pushed to gateway ${gateway}\n`);
        return 1;
      }
      io.out.write(`${JSON.stringify(doc, null, 2)}\n`);
      return 0;
    } catch (e) {
      return fail(io, e);
    }
  },
};

const DIFF_HELP = `Usage: ioc-edge config diff GATEWAY [FROM] [TO]

Shows what changed between two configuration versions of GATEWAY (default: the
newest against the one before). Devices and buses are matched by id.

${API_HELP}`;

export const configDiff: Command = {
  name: 'config diff',
  summary: 'show what changed between two configuration versions',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS }, DIFF_HELP, io, true);
    if ('exit' in p) return p.exit;
    const [gateway, from, to] = p.positionals;
    if (!gateway || p.positionals.length > 3 || [from, to].some((x) => x !== undefined && !/^\d+$/.test(x))) {
      io.err.write(`give a gateway id and optionally two version numbers\n${DIFF_HELP}\n`);
      return 2;
    }
    const q = new URLSearchParams({ ...(from ? { from } : {}), ...(to ? { to } : {}) }).toString();
    try {
      const r = await callApi<{ from: number; to: number; changes: Array<{ op: string; label: string; from?: unknown; to?: unknown }> }>(apiTarget(p.values), 'GET', `/api/v1/gateways/${enc(gateway)}/config/diff${q ? `?${q}` : ''}`);
      io.out.write(`gateway ${gateway}: version ${r.from} → ${r.to}: ${r.changes.length} change${r.changes.length === 1 ? '' : 's'}\n`);
      const show = (x: unknown): string => JSON.stringify(x);
      for (const c of r.changes) {
        if (c.op === 'add') io.out.write(`+ ${c.label}: ${show(c.to)}\n`);
        else if (c.op === 'remove') io.out.write(`- ${c.label}: ${show(c.from)}\n`);
        else io.out.write(`~ ${c.label}: ${show(c.from)} → ${show(c.to)}\n`);
      }
      return 0;
    } catch (e) {
      return fail(io, e);
    }
  },
};

const STATUS_HELP = `Usage: ioc-edge config status [GATEWAY] [--state STATE]

Desired against reported configuration, per gateway: in-sync, pending (behind,
how long), applying, failed (and why), unreported, no-desired, diverged.
--state lists only gateways in that state (e.g. failed).

${API_HELP}`;

export const configStatus: Command = {
  name: 'config status',
  summary: 'fleet view: which gateways run their desired configuration, which lag or failed and why',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS, state: { type: 'string' } }, STATUS_HELP, io, true);
    if ('exit' in p) return p.exit;
    const gateway = p.positionals[0];
    try {
      const target = apiTarget(p.values);
      const rows = gateway
        ? [await callApi<ViewRow>(target, 'GET', `/api/v1/gateways/${enc(gateway)}/config`)]
        : (await callApi<{ summary: Record<string, number>; items: ViewRow[] }>(target, 'GET', `/api/v1/config/fleet${p.values.state ? `?state=${enc(p.values.state)}` : ''}`)).items;
      io.out.write(`${'GATEWAY'.padEnd(24)} ${'STATE'.padEnd(11)} DESIRED RUNNING ONLINE LAG\n`);
      for (const r of rows) {
        const lag = r.lagS === null ? '-' : `${r.lagS}s`;
        io.out.write(`${r.gateway.padEnd(24)} ${r.state.padEnd(11)} ${String(r.desired?.version ?? '-').padStart(7)} ${String(r.reported?.running.version ?? '-').padStart(7)} ${(r.online ? 'yes' : 'no').padEnd(6)} ${lag}\n`);
        if (r.why) io.out.write(`  ↳ ${r.why}\n`);
      }
      return 0;
    } catch (e) {
      return fail(io, e);
    }
  },
};

const COMMAND_HELP = `Usage: ioc-edge gateway command GATEWAY NAME [--args JSON] [--timeout MS]

Sends a command to a connected gateway and prints its answer:
  ping                                  liveness, version, configuration version
  read --args '{"device":"D","points":["P"]}'        read points now
  write --args '{"device":"D","point":"P","value":V}' write a writable point
  restart-driver --args '{"device":"D"}' | '{"bus":"B"}'
  logs --args '{"lines":100,"level":"warn"}'          recent log lines
Exit 0 when the gateway answered ok, 1 with its error code otherwise.

${API_HELP}`;

export const gatewayCommand: Command = {
  name: 'gateway command',
  summary: 'send a command to a gateway (ping, read, write, restart-driver, logs)',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS, args: { type: 'string' }, timeout: { type: 'string' } }, COMMAND_HELP, io, true);
    if ('exit' in p) return p.exit;
    const [gateway, name] = p.positionals;
    if (!gateway || !name || p.positionals.length > 2) {
      io.err.write(`give a gateway id and a command name\n${COMMAND_HELP}\n`);
      return 2;
    }
    let cmdArgs: Record<string, unknown> = {};
    try {
      if (p.values.args) cmdArgs = JSON.parse(p.values.args) as Record<string, unknown>;
    } catch (e) {
      io.err.write(`--args is not JSON: ${(e as Error).message}\n`);
      return 2;
    }
    const timeoutMs = p.values.timeout ? Number(p.values.timeout) : undefined;
    try {
      const r = await callApi<{ status: string; data?: unknown; error?: { code: string; message: string } }>(apiTarget(p.values), 'POST', `/api/v1/gateways/${enc(gateway)}/commands/${enc(name)}`, { args: cmdArgs, ...(timeoutMs ? { timeoutMs } : {}) });
      if (r.status === 'ok') {
        io.out.write(`${JSON.stringify(r.data, null, 2)}\n`);
        return 0;
      }
      io.err.write(`${r.error?.message ?? 'failed'}\n`);
      return 1;
    } catch (e) {
      return fail(io, e);
    }
  },
};
