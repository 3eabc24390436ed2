import { isBitTable, type ModbusPoint } from './types.js';

/** The subset of a point that decides how many registers/bits it spans. */
export type PointLayout = Pick<ModbusPoint, 'table' | 'type'> & { readonly length?: number; readonly bit?: number };

/**
 * Number of consecutive registers (holding/input tables) or bits (coil/discrete
 * tables) a point occupies: 1 for bool, bit-in-register and 16-bit types, 2 for
 * 32-bit, 4 for 64-bit, `length` for strings. A string without `length` counts
 * as 0 (the loader rejects it before anything else sees it).
 */
export function registerCount(point: PointLayout): number {
  if (isBitTable(point.table) || point.bit !== undefined) return 1;
  switch (point.type) {
    case 'bool':
    case 'int16':
    case 'uint16':
      return 1;
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'int64':
    case 'uint64':
    case 'float64':
      return 4;
    case 'string':
      return point.length ?? 0;
  }
}
