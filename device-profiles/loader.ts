/**
 * Loads and validates device profiles: JSON Schema first (ajv, all errors),
 * then the second pass of check-profile.ts. Every problem names the file, a
 * JSON pointer and the reason; a valid profile comes back with defaults
 * applied and deep-frozen.
 */
import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { IocError } from '../contract/index.js';
import { checkAlarms } from './alarm.js';
import { checkProfile, type ProfileProblem, type SchemaProfile } from './check-profile.js';
import { checkOpcuaProfile, checkSerialLineProfile } from './check-other-profiles.js';
import { checkFirmware } from './firmware-settings.js';
import type { ByteOrder, DeviceProfile, OpcuaProfile, SerialLineProfile, WordOrder } from './types.js';

/** The profile JSON Schema (draft 2020-12), as plain JSON. */
export const profileSchema = JSON.parse(readFileSync(new URL('./profile.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;

// useDefaults fills scale/offset/writable/modbus limits/pollIntervalMs, so the
// second pass and the returned profile always see them.
const ajv = new Ajv2020({ allErrors: true, strict: true, useDefaults: true });
const validateSchema = ajv.compile(profileSchema);

const BYTE_ORDERS: Record<ByteOrder, { wordOrder: WordOrder; byteSwap: boolean }> = {
  ABCD: { wordOrder: 'big', byteSwap: false },
  CDAB: { wordOrder: 'little', byteSwap: false },
  BADC: { wordOrder: 'big', byteSwap: true },
  DCBA: { wordOrder: 'little', byteSwap: true },
};

/**
 * Validates a parsed profile document that came from `file` (used in messages
 * and for the model = base name rule). The input is not modified.
 *
 * @returns the profile with defaults applied and `wordOrder`/`byteSwap`
 *   resolved on every point (point value, else `modbus.byteOrder`, else
 *   big/false), deep-frozen.
 * @throws IocError PROFILE_ERR_INVALID listing every problem as
 *   `FILE: /pointer: reason` lines; `context` = `{file, pointer, problems}`
 *   with the first problem's pointer. Second-pass rules run only once the
 *   schema passes.
 */
export function validateProfile(doc: unknown, file: string): DeviceProfile {
  let copy: unknown;
  try {
    copy = structuredClone(doc);
  } catch (err) {
    throw invalid(file, [{ pointer: '', message: `not a JSON value: ${(err as Error).message}` }], err);
  }
  if (!validateSchema(copy)) throw invalid(file, schemaProblems(validateSchema.errors ?? []));
  const protocol = (copy as { protocol: DeviceProfile['protocol'] }).protocol;
  if (protocol !== 'modbus') {
    const problems = protocol === 'serial-line' ? checkSerialLineProfile(copy as SerialLineProfile, file) : checkOpcuaProfile(copy as OpcuaProfile, file);
    problems.push(...checkAlarms((copy as SerialLineProfile | OpcuaProfile).points));
    problems.push(...checkFirmware(copy as SerialLineProfile | OpcuaProfile));
    if (problems.length > 0) throw invalid(file, problems);
    return deepFreeze(copy as DeviceProfile);
  }
  const profile = copy as SchemaProfile & { modbus: { byteOrder?: ByteOrder } };
  const problems = [...checkProfile(profile, file), ...checkAlarms(profile.points), ...checkFirmware({ ...profile, protocol: 'modbus' })];
  if (problems.length > 0) throw invalid(file, problems);
  const layout = BYTE_ORDERS[profile.modbus.byteOrder ?? 'ABCD'];
  for (const p of profile.points) {
    p.wordOrder ??= layout.wordOrder;
    p.byteSwap ??= layout.byteSwap;
  }
  return deepFreeze(profile as unknown as DeviceProfile);
}

/**
 * Reads, parses and validates one profile file (UTF-8 JSON, BOM tolerated).
 * @throws IocError PROFILE_ERR_NOT_FOUND if the file does not exist,
 *   PROFILE_ERR_READ if it cannot be read, PROFILE_ERR_INVALID for bad JSON
 *   or a bad profile (see {@link validateProfile}).
 */
export async function loadProfileFile(path: string): Promise<DeviceProfile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw ioError(err, `cannot read device profile ${path}`, path);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw invalid(path, [{ pointer: '', message: `invalid JSON: ${(err as Error).message}` }], err);
  }
  return validateProfile(doc, path);
}

/**
 * Loads every `*.json` file of `dir` except `*.schema.json` (not recursive),
 * in file-name order.
 * @returns model → profile, in file-name order.
 * @throws IocError the first failing file's error (see {@link loadProfileFile});
 *   PROFILE_ERR_NOT_FOUND / PROFILE_ERR_READ if `dir` cannot be listed.
 */
export async function loadProfileDir(dir: string): Promise<Map<string, DeviceProfile>> {
  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries.filter((e) => e.isFile() && e.name.endsWith('.json') && !e.name.endsWith('.schema.json')).map((e) => e.name);
  } catch (err) {
    throw ioError(err, `cannot list device profile folder ${dir}`, dir);
  }
  names.sort();
  const profiles = new Map<string, DeviceProfile>();
  for (const name of names) {
    const profile = await loadProfileFile(join(dir, name));
    profiles.set(profile.model, profile);
  }
  return profiles;
}

/**
 * Looks a model up among loaded profiles.
 * @throws IocError PROFILE_ERR_NOT_FOUND naming the known models.
 */
export function findProfile(profiles: ReadonlyMap<string, DeviceProfile>, model: string): DeviceProfile {
  const profile = profiles.get(model);
  if (profile) return profile;
  const known = [...profiles.keys()].join(', ') || 'none';
  throw new IocError('PROFILE_ERR_NOT_FOUND', `no device profile for model '${model}'; known models: ${known}`, { context: { model } });
}

/** Renders problems as the PROFILE_ERR_INVALID error: one `FILE: /pointer: reason` line each. */
function invalid(file: string, problems: ProfileProblem[], cause?: unknown): IocError {
  const lines = problems.map((p) => `${file}: ${p.pointer || '/'}: ${p.message}`);
  const detail = `device profile ${file} is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}\n`;
  return new IocError('PROFILE_ERR_INVALID', detail, { cause, context: { file, pointer: problems[0]?.pointer ?? '', problems } });
}

function ioError(err: unknown, what: string, file: string): IocError {
  const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'PROFILE_ERR_NOT_FOUND' : 'PROFILE_ERR_READ';
  return new IocError(code, `${what}: ${(err as Error).message}`, { cause: err, context: { file } });
}

/** RFC 6901 escaping of one reference token. */
function escapeToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Turns ajv errors into problems, with pointers at the offending property and hints for the cross-field rules. */
function schemaProblems(errors: readonly ErrorObject[]): ProfileProblem[] {
  const out: ProfileProblem[] = [];
  for (const e of errors) {
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'if': // only says "must match then"; the failing keyword inside is reported too
        continue;
      case 'oneOf': // framing/fields variants: the mismatching keywords inside are reported too
        if (e.schemaPath.endsWith('/field/oneOf')) out.push({ pointer: e.instancePath, message: 'must be a field index (integer) or a regex group name' });
        continue;
      case 'false schema':
        out.push({ pointer: e.instancePath, message: 'does not belong to this protocol' });
        continue;
      case 'additionalProperties':
        out.push({ pointer: `${e.instancePath}/${escapeToken(String(params.additionalProperty))}`, message: 'is not a known property' });
        continue;
      case 'enum':
        out.push({ pointer: e.instancePath, message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}${hint(e)}` });
        continue;
      case 'const':
        out.push({ pointer: e.instancePath, message: `must be ${JSON.stringify(params.allowedValue)}${hint(e)}` });
        continue;
      case 'not':
        out.push({ pointer: e.instancePath, message: e.schemaPath.endsWith('/scale/not') ? 'must not be 0' : (e.message ?? 'is not allowed') });
        continue;
      default:
        out.push({ pointer: e.instancePath, message: e.message ?? e.keyword });
    }
  }
  return out;
}

function hint(e: ErrorObject): string {
  if (e.schemaPath.includes('/dependentSchemas/bit/')) return " ('bit' reads one bit of a holding or input register as a bool)";
  if (e.schemaPath.includes('/dependentSchemas/length/')) return " ('length' is only for string points)";
  if (e.schemaPath.endsWith('/then/properties/type/const')) return ' (coil and discrete tables hold single bits)';
  return '';
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
