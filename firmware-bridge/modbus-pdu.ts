/**
 * Modbus PDUs the firmware flasher builds itself (modbus-serial has no write
 * file record), after the Modbus Application Protocol Specification v1.1b3:
 *
 * - FC 21 Write File Record (§6.15): `0x15`, request data length (1 byte,
 *   0x09..0xFB), then sub-requests of reference type `6`, file number
 *   (2 bytes, 0x0001..0xFFFF), record number (2 bytes, 0x0000..0x270F),
 *   record length N (2 bytes, in registers) and N × 2 bytes of data. The
 *   normal response echoes the request. A PDU is at most 253 bytes (§4.1),
 *   so one request carries at most (253 − 2 − 7) / 2 = 122 registers;
 * - FC 3 / FC 4 Read Holding / Input Registers (§6.3, §6.4) for the version
 *   point, FC 6 Write Single Register (§6.6) and FC 16 Write Multiple
 *   Registers (§6.12) for the size and commit points;
 * - exception responses: function code + 0x80 and one exception code (§7).
 *
 * A file holds records 0..9999 (10 000 registers, 20 000 bytes); an image is
 * laid out over consecutive files from the profile's first file number, and
 * no sub-request crosses a file.
 */
import { IocError } from '../contract/index.js';

/** Largest PDU (§4.1). */
export const MAX_PDU = 253;
/** Registers in one FC 21 request with a single sub-request. */
export const MAX_RECORDS_PER_REQUEST = 122;
/** Records (registers) in one file: record numbers 0x0000..0x270F (§6.14, §6.15). */
export const RECORDS_PER_FILE = 10_000;
/** Reference type of file sub-requests (§6.14). */
export const FILE_REFERENCE_TYPE = 6;

/** One FC 21 request: consecutive records of one file. */
export interface FileRecordWrite {
  file: number;
  record: number;
  /** Even number of bytes: the records' registers, big-endian. */
  data: Buffer;
  /** Offset of `data` in the image (for progress). */
  offset: number;
}

/**
 * Lays `image` over files from `firstFile`, `recordsPerRequest` registers per
 * request. An odd-length image gets one 0x00 pad byte (the device knows the
 * real length from the size point or its image header).
 */
export function planFileRecords(image: Buffer, firstFile: number, recordsPerRequest = MAX_RECORDS_PER_REQUEST): FileRecordWrite[] {
  if (recordsPerRequest < 1 || recordsPerRequest > MAX_RECORDS_PER_REQUEST) {
    throw new IocError('FW_ERR_UNSUPPORTED', `records per FC 21 request must be 1..${MAX_RECORDS_PER_REQUEST}, not ${recordsPerRequest}`);
  }
  const padded = image.length % 2 === 0 ? image : Buffer.concat([image, Buffer.alloc(1)]);
  const totalRecords = padded.length / 2;
  const lastFile = firstFile + Math.ceil(totalRecords / RECORDS_PER_FILE) - 1;
  if (firstFile < 1 || lastFile > 0xffff) {
    throw new IocError('FW_ERR_UNSUPPORTED', `a ${image.length}-byte image needs files ${firstFile}..${lastFile}; file numbers are 1..65535`);
  }
  const out: FileRecordWrite[] = [];
  let reg = 0;
  while (reg < totalRecords) {
    const file = firstFile + Math.floor(reg / RECORDS_PER_FILE);
    const record = reg % RECORDS_PER_FILE;
    const n = Math.min(recordsPerRequest, RECORDS_PER_FILE - record, totalRecords - reg);
    out.push({ file, record, data: padded.subarray(reg * 2, (reg + n) * 2), offset: reg * 2 });
    reg += n;
  }
  return out;
}

/** The FC 21 request PDU for one write (one sub-request). */
export function writeFileRecordPdu(w: Pick<FileRecordWrite, 'file' | 'record' | 'data'>): Buffer {
  const n = w.data.length / 2;
  if (!Number.isInteger(n) || n < 1 || n > MAX_RECORDS_PER_REQUEST) throw new IocError('FW_ERR_UNSUPPORTED', `an FC 21 sub-request carries 1..${MAX_RECORDS_PER_REQUEST} whole registers, not ${w.data.length} bytes`);
  if (w.record < 0 || w.record + n > RECORDS_PER_FILE) throw new IocError('FW_ERR_UNSUPPORTED', `records ${w.record}..${w.record + n - 1} cross the end of file ${w.file} (0..9999)`);
  const pdu = Buffer.alloc(2 + 7 + w.data.length);
  pdu[0] = 21;
  pdu[1] = 7 + w.data.length; // request data length, 0x09..0xFB
  pdu[2] = FILE_REFERENCE_TYPE;
  pdu.writeUInt16BE(w.file, 3);
  pdu.writeUInt16BE(w.record, 5);
  pdu.writeUInt16BE(n, 7);
  w.data.copy(pdu, 9);
  return pdu;
}

/** Parses the sub-requests of an FC 21 request PDU (what a device does); throws on a malformed PDU. */
export function parseWriteFileRecord(pdu: Buffer): Array<{ file: number; record: number; data: Buffer }> {
  if (pdu[0] !== 21 || pdu.length < 2 || pdu[1] !== pdu.length - 2 || pdu[1]! < 9 || pdu[1]! > 0xfb) throw new Error('malformed FC 21 request: bad request data length');
  const out: Array<{ file: number; record: number; data: Buffer }> = [];
  let i = 2;
  while (i < pdu.length) {
    if (i + 7 > pdu.length || pdu[i] !== FILE_REFERENCE_TYPE) throw new Error('malformed FC 21 sub-request: reference type must be 6');
    const file = pdu.readUInt16BE(i + 1);
    const record = pdu.readUInt16BE(i + 3);
    const n = pdu.readUInt16BE(i + 5);
    if (i + 7 + n * 2 > pdu.length) throw new Error('malformed FC 21 sub-request: record data shorter than the record length');
    out.push({ file, record, data: pdu.subarray(i + 7, i + 7 + n * 2) });
    i += 7 + n * 2;
  }
  return out;
}

/** FC 3 / FC 4 request PDU. */
export function readRegistersPdu(fc: 3 | 4, address: number, count: number): Buffer {
  const pdu = Buffer.alloc(5);
  pdu[0] = fc;
  pdu.writeUInt16BE(address, 1);
  pdu.writeUInt16BE(count, 3);
  return pdu;
}

/** The registers of an FC 3 / FC 4 response PDU. */
export function parseReadRegisters(pdu: Buffer, count: number): number[] {
  if (pdu.length !== 2 + count * 2 || pdu[1] !== count * 2) throw new IocError('FW_ERR_FLASH_REJECTED', `register read answered ${pdu.length} bytes, expected ${2 + count * 2}`);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(pdu.readUInt16BE(2 + i * 2));
  return out;
}

/** FC 6 (one register) or FC 16 (several) request PDU. */
export function writeRegistersPdu(address: number, words: readonly number[]): Buffer {
  if (words.length === 1) {
    const pdu = Buffer.alloc(5);
    pdu[0] = 6;
    pdu.writeUInt16BE(address, 1);
    pdu.writeUInt16BE(words[0]!, 3);
    return pdu;
  }
  const pdu = Buffer.alloc(6 + words.length * 2);
  pdu[0] = 16;
  pdu.writeUInt16BE(address, 1);
  pdu.writeUInt16BE(words.length, 3);
  pdu[5] = words.length * 2;
  words.forEach((w, i) => pdu.writeUInt16BE(w, 6 + i * 2));
  return pdu;
}

/** Exception names (§7). */
export const EXCEPTIONS: Record<number, string> = {
  1: 'illegal function', 2: 'illegal data address', 3: 'illegal data value', 4: 'server device failure',
  5: 'acknowledge', 6: 'server device busy', 8: 'memory parity error', 10: 'gateway path unavailable', 11: 'gateway target failed to respond',
};

/** Throws FW_ERR_FLASH_REJECTED when `response` is an exception to function `fc` (§7). */
export function checkException(fc: number, response: Buffer, what: string): void {
  if (response[0] === (fc | 0x80)) {
    const code = response[1] ?? 0;
    throw new IocError('FW_ERR_FLASH_REJECTED', `the device answered ${what} with Modbus exception ${code} (${EXCEPTIONS[code] ?? 'unknown'})`, { context: { exception: code, fc } });
  }
  if (response[0] !== fc) throw new IocError('FW_ERR_FLASH_REJECTED', `the device answered ${what} with function ${response[0]}, expected ${fc}`);
}
