/**
 * Read planning: groups a device's points into as few Modbus read requests as
 * the device's limits allow, and slices responses back into points. Pure.
 */
import { IocError, type ReadingValue } from '../contract/index.js';
import { decodeBits, decodeRegisters } from './decode.js';
import { registerCount } from './register-count.js';
import { MODBUS_TABLES, isBitTable, type ModbusPoint, type ModbusSettings, type ModbusTable } from './types.js';

/** Limits a plan must respect; a profile's `modbus` settings fit. */
export type ReadLimits = Pick<ModbusSettings, 'maxRegistersPerRead' | 'maxBitsPerRead' | 'maxGap'>;

/** A point inside a read request, `offset` registers (or bits) after the request's start address. */
export interface ReadEntry {
  readonly point: ModbusPoint;
  readonly offset: number;
}

/**
 * One read request: FC 1 (coil), FC 2 (discrete), FC 3 (holding) or FC 4
 * (input) from `address`, `count` registers or bits.
 */
export interface ReadRequest {
  readonly table: ModbusTable;
  /** First address read, 0..65535. */
  readonly address: number;
  /** Quantity: 1..maxRegistersPerRead registers or 1..maxBitsPerRead bits. */
  readonly count: number;
  /** The points served by this request, by address, then bit, then name. */
  readonly points: readonly ReadEntry[];
}

function byAddressBitName(a: ModbusPoint, b: ModbusPoint): number {
  return a.address - b.address || (a.bit ?? -1) - (b.bit ?? -1) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * Plans the reads for `points` (any subset of a profile, e.g. the points due
 * in this poll cycle). Points of one table, sorted by address, are merged
 * into one request while the request spans at most `maxRegistersPerRead`
 * registers (`maxBitsPerRead` bits for coils/discrete inputs; Modbus
 * Application Protocol v1.1b3 §6.1–6.4 caps these at 125 and 2000) and the
 * unused addresses between one point and the next are at most `maxGap`
 * (the same number serves for registers and bits). Greedy in address order.
 * Points sharing a register (`bit` points) share a request.
 *
 * Output is deterministic: tables in function-code order (coil, discrete,
 * holding, input), then ascending address.
 *
 * @throws IocError PROFILE_ERR_INVALID if one point alone exceeds the limit
 *   (the loader rejects such profiles, so this means limits that differ from
 *   the profile's).
 */
export function planReads(points: readonly ModbusPoint[], limits: ReadLimits): ReadRequest[] {
  const requests: ReadRequest[] = [];
  for (const table of MODBUS_TABLES) {
    const max = isBitTable(table) ? limits.maxBitsPerRead : limits.maxRegistersPerRead;
    const sorted = points.filter((p) => p.table === table).sort(byAddressBitName);
    let start = 0;
    let end = 0; // exclusive
    let entries: ReadEntry[] = [];
    const flush = (): void => {
      if (entries.length > 0) requests.push({ table, address: start, count: end - start, points: entries });
    };
    for (const point of sorted) {
      const count = registerCount(point);
      if (count > max) {
        throw new IocError('PROFILE_ERR_INVALID', `point '${point.name}' spans ${count} ${table} addresses, more than one read may return (${max})`, {
          context: { point: point.name },
        });
      }
      const pointEnd = point.address + count;
      const fits = entries.length > 0 && point.address - end <= limits.maxGap && Math.max(end, pointEnd) - start <= max;
      if (!fits) {
        flush();
        start = point.address;
        end = pointEnd;
        entries = [];
      }
      end = Math.max(end, pointEnd);
      entries.push({ point, offset: point.address - start });
    }
    flush();
  }
  return requests;
}

/**
 * Slices the point's registers (or its bit) out of a response to `request`.
 * `data` may be longer than `request.count` (bit reads come back padded to a
 * multiple of 8, Modbus Application Protocol v1.1b3 §6.1).
 * @throws IocError GW_ERR_DECODE if the response is too short for the point.
 */
export function extractPoint<T extends number | boolean>(request: ReadRequest, data: readonly T[], entry: ReadEntry): T[] {
  const count = registerCount(entry.point);
  if (entry.offset + count > data.length) {
    throw new IocError('GW_ERR_DECODE', `point '${entry.point.name}': response has ${data.length} ${request.table} values, needs ${entry.offset + count}`, {
      context: { point: entry.point.name },
    });
  }
  return data.slice(entry.offset, entry.offset + count);
}

/**
 * Decodes every point of `request` from its response (`number[]` words for
 * register tables, `boolean[]` for bit tables), in the request's point order.
 * @throws IocError GW_ERR_DECODE on a short response or bad data.
 */
export function decodeResponse(request: ReadRequest, data: readonly number[] | readonly boolean[]): { point: ModbusPoint; value: ReadingValue }[] {
  return request.points.map((entry) => {
    const slice = extractPoint<number | boolean>(request, data, entry);
    const value = isBitTable(request.table) ? decodeBits(entry.point, slice as boolean[]) : decodeRegisters(entry.point, slice as number[]);
    return { point: entry.point, value };
  });
}
