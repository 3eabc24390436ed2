/**
 * Second validation pass for the serial-line and OPC UA branches: what JSON
 * Schema cannot say (regex groups that exist, fields that fit the field mode,
 * checksums that fit the framing, unique names). Same problem shape as
 * check-profile.ts; runs only on schema-valid documents.
 */
import { basename, extname } from 'node:path';
import type { ProfileProblem } from './check-profile.js';
import type { OpcuaProfile, SerialLineProfile } from './types.js';

/** Checksum length in bytes (binary) or hex digits (hex). */
export function checksumSize(type: SerialLineProfile['serialLine']['checksum']['type'], format: 'hex' | 'binary'): number {
  if (type === 'none') return 0;
  const bytes = type === 'crc16-modbus' ? 2 : 1;
  return format === 'binary' ? bytes : bytes * 2;
}

interface CommonPoint {
  readonly name: string;
  readonly type: string;
  readonly scale: number;
  readonly offset: number;
  readonly min?: number;
  readonly max?: number;
  readonly deadband?: number;
}

function checkCommon(doc: { model: string; points: readonly CommonPoint[] }, file: string): ProfileProblem[] {
  const out: ProfileProblem[] = [];
  const expected = basename(file, extname(file));
  if (doc.model !== expected) out.push({ pointer: '/model', message: `model '${doc.model}' must equal the file's base name '${expected}'` });
  const firstByName = new Map<string, number>();
  doc.points.forEach((p, i) => {
    const at = `/points/${i}`;
    const first = firstByName.get(p.name);
    if (first === undefined) firstByName.set(p.name, i);
    else out.push({ pointer: `${at}/name`, message: `duplicate point name '${p.name}' (first used at /points/${first})` });
    if (p.type === 'bool' || p.type === 'string') {
      if (p.scale !== 1) out.push({ pointer: `${at}/scale`, message: `scale applies only to numeric points, not ${p.type}` });
      if (p.offset !== 0) out.push({ pointer: `${at}/offset`, message: `offset applies only to numeric points, not ${p.type}` });
      for (const key of ['min', 'max', 'deadband'] as const) {
        if (p[key] !== undefined) out.push({ pointer: `${at}/${key}`, message: `${key} applies only to numeric points, not ${p.type}` });
      }
    }
    if (p.min !== undefined && p.max !== undefined && p.min > p.max) out.push({ pointer: `${at}/min`, message: `min (${p.min}) must be <= max (${p.max})` });
  });
  return out;
}

/** Named groups of a regex source (`(?<name>…)`), or an error message if it does not compile. */
function regexGroups(pattern: string): Set<string> | string {
  try {
    new RegExp(pattern);
  } catch (err) {
    return (err as Error).message;
  }
  return new Set([...pattern.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((m) => m[1] as string));
}

/**
 * Serial-line rules: model = file name, unique names, numeric-only fields on
 * numeric points, min ≤ max; regex compiles and names every point's group;
 * delimited points use indexes and regex points group names; `sentence` only
 * with delimited fields; a binary checksum only with fixed-length frames
 * (elsewhere its bytes could look like a delimiter); a fixed frame longer than
 * `from` plus the checksum.
 */
export function checkSerialLineProfile(doc: SerialLineProfile, file: string): ProfileProblem[] {
  const out = checkCommon(doc, file);
  const { framing, fields, checksum } = doc.serialLine;
  let groups: Set<string> | null = null;
  if (fields.mode === 'regex') {
    const g = regexGroups(fields.pattern);
    if (typeof g === 'string') out.push({ pointer: '/serialLine/fields/pattern', message: `is not a valid regular expression: ${g}` });
    else groups = g;
  }
  doc.points.forEach((p, i) => {
    const at = `/points/${i}`;
    if (fields.mode === 'delimited') {
      if (typeof p.field !== 'number') out.push({ pointer: `${at}/field`, message: `must be a field index (integer) with delimited fields, got '${p.field}'` });
    } else {
      if (typeof p.field !== 'string') out.push({ pointer: `${at}/field`, message: `must be a named group of serialLine.fields.pattern with regex fields, got ${p.field}` });
      else if (groups && !groups.has(p.field)) out.push({ pointer: `${at}/field`, message: `names group '${p.field}', which serialLine.fields.pattern does not define (groups: ${[...groups].join(', ') || 'none'})` });
      if (p.sentence !== undefined) out.push({ pointer: `${at}/sentence`, message: 'applies only to delimited fields (the first field names the sentence)' });
    }
  });
  if (checksum.type !== 'none' && checksum.format === 'binary' && framing.mode !== 'fixed') {
    out.push({ pointer: '/serialLine/checksum/format', message: `a binary checksum needs fixed-length framing (with ${framing.mode} framing its bytes may look like a frame boundary)` });
  }
  if (framing.mode === 'fixed') {
    const needed = checksum.from + checksumSize(checksum.type, checksum.format) + (checksum.format === 'hex' && checksum.type !== 'none' ? checksum.separator.length : 0) + 1;
    if (framing.length < needed) out.push({ pointer: '/serialLine/framing/length', message: `a ${framing.length}-byte frame cannot hold 'from' (${checksum.from}), the checksum and at least one payload byte (${needed} bytes)` });
  }
  return out;
}

/** OPC UA rules: model = file name, unique names and node ids, numeric-only fields on numeric points, min ≤ max. */
export function checkOpcuaProfile(doc: OpcuaProfile, file: string): ProfileProblem[] {
  const out = checkCommon(doc, file);
  const firstByNode = new Map<string, number>();
  doc.points.forEach((p, i) => {
    const first = firstByNode.get(p.nodeId);
    if (first === undefined) firstByNode.set(p.nodeId, i);
    else out.push({ pointer: `/points/${i}/nodeId`, message: `node ${p.nodeId} is already monitored by /points/${first}` });
  });
  return out;
}
