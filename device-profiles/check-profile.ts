/**
 * Second validation pass: the rules JSON Schema cannot express. Runs only on
 * documents that already passed the schema, and reports problems in the same
 * shape as schema errors (JSON pointer + message).
 */
import { basename, extname } from 'node:path';
import { registerCount } from './register-count.js';
import { isBitTable, type ModbusPoint, type ModbusSettings, type ModbusTable, type WordOrder } from './types.js';

/** One problem found in a profile: where (RFC 6901 JSON pointer, '' = root) and why. */
export interface ProfileProblem {
  readonly pointer: string;
  readonly message: string;
}

/** A point as it leaves the schema: defaults applied, word/byte order not yet resolved. */
export type SchemaPoint = Omit<ModbusPoint, 'wordOrder' | 'byteSwap'> & { wordOrder?: WordOrder; byteSwap?: boolean };

/** A schema-valid Modbus profile document. */
export interface SchemaProfile {
  model: string;
  modbus: ModbusSettings;
  points: SchemaPoint[];
}

const LAST_ADDRESS = 65535;

/**
 * Checks what the schema cannot: model = file base name, unique point names,
 * `bit` on register bools, `length` on strings, numeric-only fields on
 * bool/string points, min ≤ max, register ranges inside 0..65535 and within
 * one read, and no two points sharing a register (several `bit` points may
 * share one register, on different bits, and may share it with the register's
 * raw 16-bit word, an int16/uint16 point) or a coil/discrete input.
 * Returns the problems in document order; empty when the profile is sound.
 */
export function checkProfile(doc: SchemaProfile, file: string): ProfileProblem[] {
  const problems: ProfileProblem[] = [];
  const expected = basename(file, extname(file));
  if (doc.model !== expected) {
    problems.push({ pointer: '/model', message: `model '${doc.model}' must equal the file's base name '${expected}'` });
  }
  const firstByName = new Map<string, number>();
  doc.points.forEach((p, i) => {
    const first = firstByName.get(p.name);
    if (first === undefined) firstByName.set(p.name, i);
    else problems.push({ pointer: `/points/${i}/name`, message: `duplicate point name '${p.name}' (first used at /points/${first})` });
    problems.push(...checkPoint(p, i, doc.modbus));
  });
  problems.push(...checkOverlaps(doc.points));
  return problems;
}

function checkPoint(p: SchemaPoint, i: number, modbus: ModbusSettings): ProfileProblem[] {
  const at = `/points/${i}`;
  const out: ProfileProblem[] = [];
  if (p.type === 'bool' && !isBitTable(p.table) && p.bit === undefined) {
    out.push({ pointer: at, message: `a bool point in the ${p.table} table needs 'bit' (0..15): registers are 16-bit words; use table coil or discrete for single bits` });
  }
  if (p.type === 'string' && p.length === undefined) {
    out.push({ pointer: at, message: `a string point needs 'length' (registers, 2 characters each)` });
  }
  if (p.type === 'bool' || p.type === 'string') {
    if (p.scale !== 1) out.push({ pointer: `${at}/scale`, message: `scale applies only to numeric points, not ${p.type}` });
    if (p.offset !== 0) out.push({ pointer: `${at}/offset`, message: `offset applies only to numeric points, not ${p.type}` });
    for (const key of ['min', 'max', 'deadband'] as const) {
      if (p[key] !== undefined) out.push({ pointer: `${at}/${key}`, message: `${key} applies only to numeric points, not ${p.type}` });
    }
  }
  if (p.min !== undefined && p.max !== undefined && p.min > p.max) {
    out.push({ pointer: `${at}/min`, message: `min (${p.min}) must be <= max (${p.max})` });
  }
  const count = registerCount(p);
  if (!isBitTable(p.table) && count > 0) {
    const last = p.address + count - 1;
    if (last > LAST_ADDRESS) {
      out.push({ pointer: `${at}/address`, message: `registers ${p.address}..${last} run past the last address ${LAST_ADDRESS}` });
    }
    if (count > modbus.maxRegistersPerRead) {
      const ptr = p.type === 'string' ? `${at}/length` : `${at}/type`;
      out.push({ pointer: ptr, message: `needs ${count} registers but modbus.maxRegistersPerRead is ${modbus.maxRegistersPerRead} (a point must fit in one read)` });
    }
  }
  return out;
}

/**
 * What occupies one register (or one coil/discrete input): at most one whole
 * point, and bit points each on their own bit.
 */
interface Occupant {
  whole?: number;
  readonly byBit: Map<number, number>;
}

/**
 * A raw 16-bit status word: a one-register integer point. Bit points may sit
 * on the register of such a point (the technician keeps both the word and its
 * named bits; the planner reads the register once for all of them).
 */
function isWord(p: SchemaPoint): boolean {
  return p.bit === undefined && !isBitTable(p.table) && (p.type === 'uint16' || p.type === 'int16');
}

function checkOverlaps(points: readonly SchemaPoint[]): ProfileProblem[] {
  const out: ProfileProblem[] = [];
  const tables = new Map<ModbusTable, Map<number, Occupant>>();
  points.forEach((p, i) => {
    let used = tables.get(p.table);
    if (!used) tables.set(p.table, (used = new Map()));
    const clashes = new Set<number>();
    const count = Math.max(1, registerCount(p));
    for (let addr = p.address; addr < p.address + count; addr++) {
      let occ = used.get(addr);
      if (!occ) used.set(addr, (occ = { byBit: new Map() }));
      if (p.bit !== undefined) {
        // A bit of a register held by a whole point: allowed only when that point is the raw word.
        if (occ.whole !== undefined && !isWord(points[occ.whole] as SchemaPoint)) clashes.add(occ.whole);
        const sameBit = occ.byBit.get(p.bit);
        if (sameBit !== undefined) clashes.add(sameBit);
        else occ.byBit.set(p.bit, i);
      } else {
        if (occ.whole !== undefined) clashes.add(occ.whole);
        else occ.whole = i;
        // Bits under a whole point: fine for the raw word, a real overlap for anything else.
        if (!isWord(p)) for (const j of occ.byBit.values()) clashes.add(j);
      }
    }
    for (const j of clashes) out.push({ pointer: `/points/${i}/address`, message: overlapMessage(p, points[j] as SchemaPoint, j) });
  });
  return out;
}

function span(p: SchemaPoint): string {
  const count = Math.max(1, registerCount(p));
  const where = count === 1 ? `${p.address}` : `${p.address}..${p.address + count - 1}`;
  return p.bit === undefined ? where : `${where} bit ${p.bit}`;
}

function overlapMessage(p: SchemaPoint, other: SchemaPoint, j: number): string {
  const unit = isBitTable(p.table) ? 'address' : 'register';
  return `'${p.name}' (${p.table} ${unit} ${span(p)}) overlaps '${other.name}' at /points/${j} (${other.table} ${unit} ${span(other)})`;
}
