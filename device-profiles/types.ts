/**
 * TypeScript view of a loaded device profile. `profile.schema.json` is the
 * source of truth; these types follow it (a test checks the enums agree) and
 * describe the profile *after* loading: defaults applied, `wordOrder` and
 * `byteSwap` resolved from `modbus.byteOrder`, everything deep-frozen.
 * The serial-line and OPC UA branches live in line-types.ts and opcua-types.ts.
 */
import type { SerialLineProfile } from './line-types.js';
import type { OpcuaProfile } from './opcua-types.js';
import type { PointAlarm } from './alarm.js';

export * from './line-types.js';
export * from './opcua-types.js';

/**
 * Modbus data model tables (Modbus Application Protocol v1.1b3 §4.3), in
 * function-code order: coils (FC 1), discrete inputs (FC 2), holding
 * registers (FC 3), input registers (FC 4). The read planner emits requests
 * in this order.
 */
export const MODBUS_TABLES = ['coil', 'discrete', 'holding', 'input'] as const;

/** One of the four Modbus tables. `coil`/`discrete` hold bits, `holding`/`input` 16-bit words. */
export type ModbusTable = (typeof MODBUS_TABLES)[number];

/** Value types a point can have. 64-bit integers are decoded to `number` (precision loss above 2^53). */
export const POINT_TYPES = ['bool', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'int64', 'uint64', 'float64', 'string'] as const;

/** A point's value type. */
export type PointType = (typeof POINT_TYPES)[number];

/** Order of 16-bit words in a multi-register value: `big` = most significant word first. */
export type WordOrder = 'big' | 'little';

/** Device-wide default byte layout, A = most significant byte (ABCD = big-endian words, no swap). */
export type ByteOrder = 'ABCD' | 'CDAB' | 'BADC' | 'DCBA';

/** Protocols a profile may use. */
export const PROTOCOLS = ['modbus', 'serial-line', 'opcua'] as const;

/** One of {@link PROTOCOLS}. */
export type Protocol = (typeof PROTOCOLS)[number];

/** True for the bit tables (coils, discrete inputs), whose points are always `bool`. */
export function isBitTable(table: ModbusTable): table is 'coil' | 'discrete' {
  return table === 'coil' || table === 'discrete';
}

/** One Modbus data point, defaults applied. */
export interface ModbusPoint {
  /** Identifier, unique in the profile (contract ID_PATTERN). */
  readonly name: string;
  readonly table: ModbusTable;
  /** Zero-based PDU address, 0..65535. */
  readonly address: number;
  readonly type: PointType;
  /** Resolved word order (point value, else `modbus.byteOrder`, else `big`). */
  readonly wordOrder: WordOrder;
  /** Resolved byte swap within each word (point value, else `modbus.byteOrder`, else false). */
  readonly byteSwap: boolean;
  /** Registers of a `string` point (2 ASCII characters each); required for strings. */
  readonly length?: number;
  /** Bit 0..15 (0 = least significant) of a holding/input register, for `bool` points there. */
  readonly bit?: number;
  /** engineering = raw × scale + offset; never 0. Default 1. */
  readonly scale: number;
  /** engineering = raw × scale + offset. Default 0. */
  readonly offset: number;
  readonly unit?: string;
  readonly description?: string;
  /** Poll interval override in ms (≥ 50); absent = the profile's. */
  readonly pollIntervalMs?: number;
  /** Absolute change in engineering units below which a new value is not reported (until the heartbeat); 0/absent = every change. */
  readonly deadband?: number;
  /** Heartbeat override in seconds: an unchanged value is sent again at least this often; 0 = only on change. Absent = the profile's. */
  readonly heartbeatS?: number;
  /** Whether the gateway may write this point. Default false. */
  readonly writable: boolean;
  /** Lowest valid engineering value. */
  readonly min?: number;
  /** Highest valid engineering value. */
  readonly max?: number;
  /** Threshold alarm evaluated at the gateway (see alarm.ts). */
  readonly alarm?: PointAlarm;
}

/** Read limits of a Modbus device, defaults applied. */
export interface ModbusSettings {
  /** Registers per FC 3/4 request, 1..125 (Modbus Application Protocol v1.1b3 §6.3, §6.4). Default 125. */
  readonly maxRegistersPerRead: number;
  /** Bits per FC 1/2 request, 1..2000 (Modbus Application Protocol v1.1b3 §6.1, §6.2). Default 2000. */
  readonly maxBitsPerRead: number;
  /** Unused registers/bits the planner reads over to merge requests. Default 8. */
  readonly maxGap: number;
  /** Device-wide default byte layout, already folded into each point's wordOrder/byteSwap. */
  readonly byteOrder?: ByteOrder;
  /** Function codes for writes: absent/`auto` = FC 5/6 for one value, 15/16 for more; `multiple` = always 15/16; `single` = always 5/6. */
  readonly writeMode?: 'auto' | 'single' | 'multiple';
}

/** A loaded Modbus device profile. */
export interface ModbusProfile {
  readonly $schema?: string;
  /** Model identifier; equals the file's base name. */
  readonly model: string;
  readonly manufacturer: string;
  readonly description?: string;
  readonly protocol: 'modbus';
  /** Default poll interval in ms (≥ 50). Default 1000. */
  readonly pollIntervalMs: number;
  /** Seconds after which an unchanged value (and quality) is reported again; 0 = only on change. Default 60. */
  readonly heartbeatS?: number;
  readonly modbus: ModbusSettings;
  /** At least one point; names unique; register ranges do not overlap (bit points may share a register, also with that register's raw int16/uint16 word). */
  readonly points: readonly ModbusPoint[];
}

/** Any device profile, discriminated by `protocol`. */
export type DeviceProfile = ModbusProfile | SerialLineProfile | OpcuaProfile;

/** True when `profile` is a Modbus profile (has `modbus` settings and register points). */
export function isModbusProfile(profile: DeviceProfile): profile is ModbusProfile {
  return profile.protocol === 'modbus';
}

