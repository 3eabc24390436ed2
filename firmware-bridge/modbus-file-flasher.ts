/**
 * Flashes a Modbus device with FC 21 Write File Record (Modbus Application
 * Protocol v1.1b3 §6.15; PDUs in modbus-pdu.ts): the image goes out in
 * consecutive records over consecutive files, then the optional size point
 * is written and the commit point set so the device checks and installs the
 * image. Re-sending a record after a timeout is safe (the same bytes land in
 * the same place), so each request may be retried a few times; an exception
 * answer is final.
 */
import { IocError, isIocError, type ReadingValue } from '../contract/index.js';
import { decodeRegisters, encodeValue, registerCount, type ModbusPoint } from '../device-profiles/index.js';
import type { ModbusPduChannel } from './mbap-client.js';
import { checkException, parseReadRegisters, planFileRecords, readRegistersPdu, writeFileRecordPdu, writeRegistersPdu } from './modbus-pdu.js';

/** Settings of {@link flashModbusFileRecords}. */
export interface ModbusFileFlashOptions {
  channel: ModbusPduChannel;
  unitId: number;
  /** First file number. Default 1. */
  firstFile?: number;
  /** Registers per FC 21 request, 1..122. Default 122. */
  recordsPerRequest?: number;
  /** Per request. Default 2000 ms. */
  timeoutMs?: number;
  /** Extra attempts of a request that timed out. Default 2. */
  retries?: number;
  /** Holding-register point that takes the image length in bytes before the commit. */
  sizePoint?: ModbusPoint;
  /** Holding-register point written with `commitValue` once every record is in. */
  commitPoint?: ModbusPoint;
  commitValue?: number;
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
}

/** What a flash cost. */
export interface ModbusFlashResult {
  requests: number;
  retries: number;
  durationMs: number;
}

async function call(o: Pick<ModbusFileFlashOptions, 'channel' | 'unitId' | 'timeoutMs' | 'retries'>, pdu: Buffer, what: string, retryable: boolean): Promise<{ res: Buffer; retries: number }> {
  let retries = 0;
  for (;;) {
    try {
      const res = await o.channel.request(o.unitId, pdu, o.timeoutMs ?? 2000);
      checkException(pdu[0]!, res, what);
      return { res, retries };
    } catch (err) {
      if (!retryable || !isIocError(err, 'FW_ERR_FLASH_TIMEOUT') || retries >= (o.retries ?? 2)) throw err;
      retries++;
    }
  }
}

/** Writes a holding-register point (FC 6 or FC 16) with an engineering value. */
export async function writeModbusPoint(o: Pick<ModbusFileFlashOptions, 'channel' | 'unitId' | 'timeoutMs'>, point: ModbusPoint, value: number): Promise<void> {
  if (point.table !== 'holding') throw new IocError('FW_ERR_UNSUPPORTED', `point '${point.name}' is in the ${point.table} table; firmware size and commit points are holding registers`);
  const words = encodeValue(point, value) as number[];
  await call({ ...o, retries: 0 }, writeRegistersPdu(point.address, words), `the write of '${point.name}'`, false);
}

/** Reads a register point (FC 3 or FC 4) and decodes it with the profile. */
export async function readModbusPoint(o: Pick<ModbusFileFlashOptions, 'channel' | 'unitId' | 'timeoutMs'>, point: ModbusPoint): Promise<ReadingValue> {
  if (point.table !== 'holding' && point.table !== 'input') throw new IocError('FW_ERR_UNSUPPORTED', `version point '${point.name}' must be a holding or input register point`);
  const count = registerCount(point);
  const fc = point.table === 'holding' ? 3 : 4;
  const { res } = await call({ ...o, retries: 0 }, readRegistersPdu(fc, point.address, count), `the read of '${point.name}'`, false);
  return decodeRegisters(point, parseReadRegisters(res, count));
}

/**
 * Sends `image` as FC 21 file records, then the size and commit points.
 * Rejects with FW_ERR_FLASH_TIMEOUT (silence or connection lost past the
 * retries), FW_ERR_FLASH_REJECTED (an exception) or FW_ERR_CANCELLED.
 */
export async function flashModbusFileRecords(image: Buffer, o: ModbusFileFlashOptions): Promise<ModbusFlashResult> {
  const started = Date.now();
  const plan = planFileRecords(image, o.firstFile ?? 1, o.recordsPerRequest);
  const out: ModbusFlashResult = { requests: 0, retries: 0, durationMs: 0 };
  for (const w of plan) {
    if (o.signal?.aborted) throw new IocError('FW_ERR_CANCELLED', 'firmware transfer cancelled');
    const { retries } = await call(o, writeFileRecordPdu(w), `file ${w.file} record ${w.record} (FC 21)`, true);
    out.requests++;
    out.retries += retries;
    o.onProgress?.(Math.min(image.length, w.offset + w.data.length), image.length);
  }
  if (o.sizePoint) await writeModbusPoint(o, o.sizePoint, image.length);
  if (o.commitPoint) await writeModbusPoint(o, o.commitPoint, o.commitValue ?? 1);
  out.durationMs = Date.now() - started;
  return out;
}
