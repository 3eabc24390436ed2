/**
 * Modbus PDUs and the MBAP header, without any client library: the request
 * and response formats of the function codes the gateway uses (Modbus
 * Application Protocol v1.1b3: FC 1 §6.1, FC 2 §6.2, FC 3 §6.3, FC 4 §6.4,
 * FC 5 §6.5, FC 6 §6.6, FC 15 §6.11, FC 16 §6.12, exceptions §7) and the
 * MBAP header of Modbus TCP (Modbus Messaging on TCP/IP Implementation Guide
 * v1.0b §3.1.3). The Modbus TCP transport builds and parses frames with
 * these; modbus-serial is only loaded for RTU lines.
 */
import { IocError } from '../../../contract/index.js';
import type { ModbusTable } from '../../../device-profiles/index.js';
import type { WritableTable, WriteMode } from './modbus-transport.js';

/** Protocol maxima per request (§6.1–6.4, §6.11, §6.12). */
export const MAX_READ_REGISTERS = 125;
export const MAX_READ_BITS = 2000;
export const MAX_WRITE_REGISTERS = 123;
export const MAX_WRITE_COILS = 1968;

/** MBAP header length: transaction id, protocol id, length, unit id (§3.1.3). */
export const MBAP_LENGTH = 7;

/** Read function code of a table (§6.1–6.4). */
export function readFunction(table: ModbusTable): 1 | 2 | 3 | 4 {
  switch (table) {
    case 'coil':
      return 1;
    case 'discrete':
      return 2;
    case 'holding':
      return 3;
    case 'input':
      return 4;
  }
}

/**
 * Picks the function code for a write and checks the quantity against the
 * protocol maxima.
 * @throws IocError GW_ERR_WRITE_VALUE for an empty write, too many values, or
 *   several values with mode `single`.
 */
export function writeFunction(table: WritableTable, count: number, mode: WriteMode = 'auto'): 5 | 6 | 15 | 16 {
  const max = table === 'coil' ? MAX_WRITE_COILS : MAX_WRITE_REGISTERS;
  if (count < 1 || count > max) throw new IocError('GW_ERR_WRITE_VALUE', `a ${table} write carries 1..${max} values, not ${count}`);
  if (mode === 'single' && count > 1) throw new IocError('GW_ERR_WRITE_VALUE', `this device writes one ${table} at a time (writeMode single), not ${count}`);
  const multiple = mode === 'multiple' || count > 1;
  if (table === 'coil') return multiple ? 15 : 5;
  return multiple ? 16 : 6;
}

/** Writes the MBAP header for a PDU of `pduLength` bytes into `adu` (§3.1.3: protocol id 0, length = unit id + PDU). */
function mbap(adu: Buffer, tid: number, unitId: number, pduLength: number): void {
  adu.writeUInt16BE(tid, 0);
  adu.writeUInt16BE(0, 2);
  adu.writeUInt16BE(pduLength + 1, 4);
  adu[6] = unitId;
}

/** Writes a read request ADU (FC 1–4: start address, quantity) into the first 12 bytes of `adu`. */
export function encodeReadAdu(adu: Buffer, tid: number, unitId: number, fc: number, address: number, count: number): void {
  mbap(adu, tid, unitId, 5);
  adu[7] = fc;
  adu.writeUInt16BE(address, 8);
  adu.writeUInt16BE(count, 10);
}

/** A write request ADU (FC 5: 0xFF00 = on, §6.5; FC 6; FC 15: bits LSB first, §6.11; FC 16). */
export function encodeWriteAdu(tid: number, unitId: number, fc: 5 | 6 | 15 | 16, address: number, values: readonly number[] | readonly boolean[]): Buffer {
  if (fc === 5 || fc === 6) {
    const adu = Buffer.alloc(MBAP_LENGTH + 5);
    mbap(adu, tid, unitId, 5);
    adu[7] = fc;
    adu.writeUInt16BE(address, 8);
    adu.writeUInt16BE(fc === 5 ? (values[0] ? 0xff00 : 0x0000) : Number(values[0]) & 0xffff, 10);
    return adu;
  }
  const n = values.length;
  const bytes = fc === 15 ? Math.ceil(n / 8) : 2 * n;
  const adu = Buffer.alloc(MBAP_LENGTH + 6 + bytes);
  mbap(adu, tid, unitId, 6 + bytes);
  adu[7] = fc;
  adu.writeUInt16BE(address, 8);
  adu.writeUInt16BE(n, 10);
  adu[12] = bytes;
  if (fc === 15) for (let i = 0; i < n; i++) adu[13 + (i >> 3)]! |= values[i] ? 1 << (i & 7) : 0;
  else for (let i = 0; i < n; i++) adu.writeUInt16BE(Number(values[i]) & 0xffff, 13 + 2 * i);
  return adu;
}

/** Why a response could not be used: an exception response (`modbusCode`, §7) or a malformed one. */
export class ModbusResponseError extends Error {
  constructor(message: string, readonly modbusCode?: number) {
    super(message);
    this.name = 'ModbusResponseError';
  }
}

/**
 * Checks the response PDU `frame[start .. end)` to a request with function
 * `fc` and quantity `count` and returns its data: registers for FC 3/4, `count`
 * booleans for FC 1/2 (the reply pads to whole bytes), an empty array for writes.
 * @throws ModbusResponseError with `modbusCode` for an exception response (§7),
 *   without it for a reply that does not match the request.
 */
export function parseResponsePdu(frame: Buffer, start: number, end: number, fc: number, count: number): number[] | boolean[] {
  const got = frame[start] as number;
  if (got === (fc | 0x80)) {
    if (end - start < 2) throw new ModbusResponseError(`exception response without a code to function ${fc}`);
    const code = frame[start + 1] as number;
    throw new ModbusResponseError(`Modbus exception ${code}`, code);
  }
  if (got !== fc) throw new ModbusResponseError(`reply carries function ${got}, the request was function ${fc}`);
  if (fc === 3 || fc === 4) {
    const bytes = frame[start + 1];
    if (bytes !== 2 * count || end - start < 2 + 2 * count) throw new ModbusResponseError(`reply to function ${fc} carries ${String(bytes)} data bytes, expected ${2 * count}`);
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) out[i] = frame.readUInt16BE(start + 2 + 2 * i);
    return out;
  }
  if (fc === 1 || fc === 2) {
    const bytes = frame[start + 1];
    const want = Math.ceil(count / 8);
    if (bytes !== want || end - start < 2 + want) throw new ModbusResponseError(`reply to function ${fc} carries ${String(bytes)} data bytes, expected ${want}`);
    const out = new Array<boolean>(count);
    for (let i = 0; i < count; i++) out[i] = ((frame[start + 2 + (i >> 3)] as number) & (1 << (i & 7))) !== 0;
    return out;
  }
  // FC 5/6 echo address and value, FC 15/16 address and quantity: 5 bytes with the function code.
  if (end - start < 5) throw new ModbusResponseError(`reply to function ${fc} is ${end - start} bytes, expected 5`);
  return [];
}
