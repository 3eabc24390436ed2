/**
 * Remote configuration and remote commands, as gateway and hub both see them:
 * payload types (following `schemas/config-desired`, `config-reported`,
 * `command-request`, `command-result` and `command-args`), size limits, the
 * configuration hash and the command names.
 *
 * Desired/reported works like a device twin: the hub publishes each version
 * of a gateway's configuration as a retained document; the gateway applies a
 * version only if it is newer than the one it runs, keeps the previous one,
 * and reports what it runs and what happened to the last version it saw.
 */
import { createHash } from 'node:crypto';
import { checkGatewayConfig, type ConfigProblem } from './gateway-config.js';
import type { Reading } from './types.js';

/** Largest desired configuration document, in bytes. Both sides refuse bigger ones before parsing them. */
export const CONFIG_MAX_BYTES = 256 * 1024;

/** Largest command request or result payload, in bytes (a `logs` answer is cut to fit). */
export const COMMAND_MAX_BYTES = 512 * 1024;

/** Seconds the gateway has to reach the hub again after applying a version, unless the document says otherwise. */
export const DEFAULT_CONFIRM_WINDOW_S = 30;

/**
 * Settings of the gateway configuration that belong to the gateway itself
 * (local paths, the credential and claim it provisioned with): a desired
 * configuration may not contain them; the gateway keeps its own.
 */
export const LOCAL_ONLY_SETTINGS: readonly string[] = ['/dataDir', '/profileDirs', '/hub/credentialFile', '/hub/claim', '/hub/claimFile'];

/** `ioc/v1/gw/{gw}/config/desired` payload (retained; published by hub services only). */
export interface ConfigDesired {
  v: 1;
  gateway: string;
  version: number;
  hash: string;
  pushedAt: number;
  pushedBy: string;
  note?: string;
  confirmWindowS?: number;
  /** A gateway configuration without its local-only settings. */
  config: Record<string, unknown>;
  /** Device profiles beyond the shipped ones. */
  profiles?: Array<Record<string, unknown>>;
}

/** Status of the desired version a report is about. */
export type ConfigStatus = 'applying' | 'confirming' | 'applied' | 'rejected' | 'rolled-back';

/** Where a configuration failed. */
export type ConfigPhase = 'receive' | 'validate' | 'apply' | 'confirm' | 'restart';

/** `ioc/v1/gw/{gw}/config/reported` payload. */
export interface ConfigReported {
  v: 1;
  ts: number;
  /** The version running now (0: the gateway's own file). */
  running: { version: number; hash?: string; since: number };
  status: ConfigStatus;
  /** The desired version `status` is about. */
  version: number;
  error?: { code: string; message: string; phase?: ConfigPhase; problems?: Array<{ pointer: string; message: string }> };
  restarted?: { buses?: string[]; devices?: string[]; uplink?: boolean };
  pending?: string[];
  ignored?: { version: number; reason: string; ts: number };
  profiles?: string[];
}

/** The commands a gateway answers on `ioc/v1/gw/{gw}/cmd/{name}`. */
export const COMMAND_NAMES = ['ping', 'read', 'write', 'restart-driver', 'logs'] as const;

/** A command name. */
export type CommandName = (typeof COMMAND_NAMES)[number];

/** True when `name` is a command of the contract. */
export function isCommandName(name: string): name is CommandName {
  return (COMMAND_NAMES as readonly string[]).includes(name);
}

/** Arguments per command (command-args.schema.json). */
export interface CommandArgs {
  ping: Record<string, never>;
  read: { device: string; points?: string[] };
  write: { device: string; point: string; value: number | boolean | string };
  'restart-driver': { device: string } | { bus: string };
  logs: { lines?: number; level?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'; since?: number };
}

/** What each command answers in `data`. */
export interface CommandData {
  ping: { pong: true; ts: number; version: string; uptimeS: number; config: { version: number; status: ConfigStatus | 'none' } };
  read: { device: string; readings: Reading[]; cached: boolean };
  write: { device: string; point: string; value: number | boolean | string; written: true };
  'restart-driver': { restarted: string[] };
  logs: { lines: Array<Record<string, unknown>>; total: number };
}

/** `ioc/v1/gw/{gw}/cmd/{name}` payload. */
export interface CommandRequest {
  v?: 1;
  transaction: string;
  args?: Record<string, unknown>;
  /** ms since the Unix epoch after which the gateway does not carry the request out. */
  expiresAt?: number;
}

/** `ioc/v1/gw/{gw}/cmd/{name}/result` payload: `{status, data | error, transaction}`. */
export type CommandResult<T = unknown> =
  | { v: 1; transaction: string; status: 'ok'; data: T }
  | { v: 1; transaction: string; status: 'error'; error: { code: string; message: string; context?: Record<string, unknown> } };

/** Deepest nesting accepted in a desired configuration (a real one nests about 6 levels). */
export const CONFIG_MAX_DEPTH = 32;

/**
 * True when `value` nests objects/arrays deeper than `max` levels. Iterative,
 * so a hostile document thousands of levels deep cannot overflow the stack
 * (JSON.parse accepts it; JSON.stringify and structuredClone would not).
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return true;
    for (const child of Object.values(v as Record<string, unknown>)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

/** JSON with object keys sorted at every level: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.keys(v as Record<string, unknown>).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
  });
}

/**
 * Keys whose string values are secrets wherever they appear in a desired
 * configuration (the hub keeps them encrypted, shows them to nobody and
 * leaves them out of the hash).
 */
export const SECRET_KEYS: readonly string[] = ['password'];

/** True when the value under object key `key` is a secret (see {@link SECRET_KEYS}). */
export function isSecretKey(key: string, value: unknown): boolean {
  return typeof value === 'string' && SECRET_KEYS.includes(key);
}

/** What every secret reads as in the hash input. */
const SECRET_MASK = '(secret)';

/**
 * The hash a desired document carries: `sha256:` + hex SHA-256 of the
 * canonical JSON of `{config, profiles}` with every secret replaced by one
 * constant. Nothing in it derives from a secret, so the hash can be shown to
 * anyone without letting them test guesses of a password offline (issue 13);
 * a version that changes only a secret has the same hash as the one before.
 */
export function configHash(config: unknown, profiles: unknown[] = []): string {
  const masked: unknown = JSON.parse(JSON.stringify({ config, profiles }, (k, v: unknown) => (isSecretKey(k, v) ? SECRET_MASK : v)));
  return `sha256:${createHash('sha256').update(canonicalJson(masked)).digest('hex')}`;
}

/** How {@link checkDesiredConfig} validates one pushed device profile (device-profiles' validateProfile, injected: the contract imports nothing of ours). */
export type ProfileValidator = (doc: unknown, index: number) => { model: string; protocol: string };

/** Options of {@link checkDesiredConfig}. */
export interface CheckDesiredOptions {
  /** Profiles available without pushing them (model → profile with its `protocol`). */
  knownProfiles: ReadonlyMap<string, unknown>;
  /** Further model names known to exist on the gateway (its report), protocol unknown. */
  alsoKnown?: Iterable<string>;
  /** Validates a pushed profile; throws an error whose `context.problems` lists `{pointer, message}` relative to the profile. */
  validateProfile: ProfileValidator;
}

/**
 * The checks a desired configuration must pass, run by the hub before it
 * accepts a push and by the gateway before it applies one: pushed profiles
 * against the profile schema and its second pass (overlapping registers…),
 * the configuration against the gateway configuration schema and its second
 * pass with those profiles, the gateway id, and no local-only settings.
 * Pointers are into the desired document (`/config/…`, `/profiles/2/…`).
 * @returns the problems (empty when it may be applied) and the pushed profiles that passed, by model.
 */
export function checkDesiredConfig(input: { gateway: string; config: unknown; profiles?: readonly unknown[] }, opts: CheckDesiredOptions): { problems: ConfigProblem[]; profiles: Map<string, unknown> } {
  const problems: ConfigProblem[] = [];
  const pushed = new Map<string, unknown>();
  (input.profiles ?? []).forEach((doc, i) => {
    try {
      const p = opts.validateProfile(doc, i);
      if (pushed.has(p.model)) problems.push({ pointer: `/profiles/${i}/model`, message: `profile '${p.model}' is pushed twice` });
      pushed.set(p.model, p);
    } catch (err) {
      const list = (err as { context?: { problems?: ConfigProblem[] } }).context?.problems;
      if (list && list.length > 0) for (const p of list) problems.push({ pointer: `/profiles/${i}${p.pointer}`, message: p.message });
      else problems.push({ pointer: `/profiles/${i}`, message: (err as Error).message });
    }
  });
  const config = input.config as Record<string, unknown> | null;
  if (config && typeof config === 'object' && !Array.isArray(config)) {
    for (const pointer of LOCAL_ONLY_SETTINGS) {
      const [, a, b] = pointer.split('/');
      const v = b === undefined ? config[a!] : (config[a!] as Record<string, unknown> | undefined)?.[b];
      if (v !== undefined) problems.push({ pointer: `/config${pointer}`, message: 'is set on the gateway itself and cannot be pushed; remove it' });
    }
    if (typeof config.gatewayId === 'string' && config.gatewayId !== input.gateway) {
      problems.push({ pointer: '/config/gatewayId', message: `is '${config.gatewayId}' but this configuration is for gateway '${input.gateway}'` });
    }
  }
  const known = new Map<string, unknown>(opts.knownProfiles);
  for (const m of opts.alsoKnown ?? []) if (!known.has(m)) known.set(m, {});
  for (const [m, p] of pushed) known.set(m, p);
  for (const p of checkGatewayConfig(input.config, { profiles: known }).problems) problems.push({ pointer: `/config${p.pointer}`, message: p.message });
  return { problems, profiles: pushed };
}
