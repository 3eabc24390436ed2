/**
 * Types of the `serial-line` protocol branch: sensors that talk ASCII (or
 * short binary) frames on a serial port — NMEA-style sentences, `STX…ETX`
 * telegrams, fixed-length records. The profile says how to cut the byte
 * stream into frames, how to check each frame and how to pull typed points
 * out of it. `profile.schema.json` is the source of truth.
 */

import type { PointAlarm } from './alarm.js';

/** Checksums a line protocol may use. */
export const LINE_CHECKSUMS = ['none', 'nmea-xor', 'crc16-modbus', 'sum8'] as const;

/** One of {@link LINE_CHECKSUMS}. */
export type LineChecksumType = (typeof LINE_CHECKSUMS)[number];

/** Value types of a serial-line point (parsed from text). */
export const LINE_POINT_TYPES = ['bool', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64', 'string'] as const;

/** One of {@link LINE_POINT_TYPES}. */
export type LinePointType = (typeof LINE_POINT_TYPES)[number];

/**
 * How the byte stream is cut into frames. Strings are byte strings (each
 * character U+0000..U+00FF is one byte; JSON escapes such as `"\r\n"` or
 * `"\u0002"` write control characters).
 * - `delimiter`: a frame ends with `delimiter` (not part of the frame).
 * - `start-end`: a frame starts with `start` and ends with `end` (neither part of it);
 *   bytes outside a start…end pair are noise.
 * - `fixed`: every frame is `length` bytes; with `start`, a frame is the
 *   `length` bytes after `start`, which also re-synchronises the stream after noise.
 */
export type LineFraming =
  | { readonly mode: 'delimiter'; readonly delimiter: string }
  | { readonly mode: 'start-end'; readonly start: string; readonly end: string }
  | { readonly mode: 'fixed'; readonly length: number; readonly start?: string };

/**
 * Where the checksum is and what it covers. The checked bytes are the frame
 * from `from` up to the checksum (or its `separator`).
 * - `hex`: the checksum is written in hexadecimal after the last `separator`
 *   (2 digits for nmea-xor and sum8, 4 for crc16-modbus); an empty separator
 *   means the last 2 (or 4) characters of the frame.
 * - `binary`: the last byte (nmea-xor, sum8) or the last two bytes,
 *   least significant first as in Modbus RTU (crc16-modbus).
 */
export interface LineChecksum {
  readonly type: LineChecksumType;
  /** Default `hex`. */
  readonly format: 'hex' | 'binary';
  /** Text between payload and a hex checksum. Default `*` (NMEA 0183). */
  readonly separator: string;
  /** Leading bytes neither checked nor split into fields (1 for the `$` of NMEA). Default 0. */
  readonly from: number;
}

/**
 * How points are pulled out of a checked payload.
 * - `delimited`: the payload is split on `separator`; a point names a field by index.
 * - `regex`: the payload must match `pattern`; a point names one of its named groups.
 */
export type LineFields =
  | { readonly mode: 'delimited'; readonly separator: string }
  | { readonly mode: 'regex'; readonly pattern: string };

/** Settings of a serial-line device, defaults applied. */
export interface SerialLineSettings {
  readonly framing: LineFraming;
  readonly checksum: LineChecksum;
  readonly fields: LineFields;
  /** Longest frame accepted; longer runs without a delimiter are dropped as noise. Default 512. */
  readonly maxFrameBytes: number;
  /** Trim spaces, CR and LF around the payload and each field. Default true. */
  readonly trim: boolean;
  /** No valid frame for this long → points stale, device down. Default 5000 ms. */
  readonly staleAfterMs: number;
  /** Sent every `pollIntervalMs` for sensors that answer a query instead of streaming (byte string). */
  readonly request?: string;
}

/** One point of a serial-line device, defaults applied. */
export interface SerialLinePoint {
  readonly name: string;
  /** Field index (delimited, 0 = first) or named group (regex). */
  readonly field: number | string;
  readonly type: LinePointType;
  /** Only frames whose field 0 equals this carry the point (delimited mode; NMEA sentence ids). */
  readonly sentence?: string;
  /** engineering = parsed × scale + offset. Default 1. */
  readonly scale: number;
  /** Default 0. */
  readonly offset: number;
  readonly unit?: string;
  readonly description?: string;
  readonly deadband?: number;
  /** Heartbeat override in seconds: an unchanged value is sent again at least this often; 0 = only on change. Absent = the profile's. */
  readonly heartbeatS?: number;
  readonly min?: number;
  readonly max?: number;
  /** Texts that mean true / false for bool points (compared case-insensitively). */
  readonly trueText: readonly string[];
  readonly falseText: readonly string[];
  /** Serial-line points are read-only. */
  readonly writable: false;
  /** Threshold alarm evaluated at the gateway (see alarm.ts). */
  readonly alarm?: PointAlarm;
}

/** A loaded serial-line device profile. */
export interface SerialLineProfile {
  readonly $schema?: string;
  readonly model: string;
  readonly manufacturer: string;
  readonly description?: string;
  readonly protocol: 'serial-line';
  /** Expected period of the sensor's frames (or of `request`), ms. Default 1000. */
  readonly pollIntervalMs: number;
  /** Seconds after which an unchanged value (and quality) is reported again; 0 = only on change. Default 60. */
  readonly heartbeatS?: number;
  readonly serialLine: SerialLineSettings;
  readonly points: readonly SerialLinePoint[];
}
