/**
 * Maps modbus-serial's errors onto the catalogue. modbus-serial reports a
 * timeout as `TransactionTimedOutError`, an exception response with
 * `modbusCode` (Modbus Application Protocol v1.1b3 §7), and socket errors with
 * their errno.
 */
import { IocError } from '../../../contract/index.js';

/** Exception codes, Modbus Application Protocol v1.1b3 §7. */
const EXCEPTIONS: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

/** Converts whatever modbus-serial threw into an IocError with context. */
export function toModbusError(err: unknown, context: Record<string, unknown>): IocError {
  if (err instanceof IocError) return err;
  const e = err as { name?: string; message?: string; modbusCode?: number; errno?: string; code?: string };
  const what = `unit ${String(context.unitId)} ${String(context.table)} @${String(context.address)}×${String(context.count)}`;
  if (e?.name === 'TransactionTimedOutError' || /timed out/i.test(e?.message ?? '')) {
    return new IocError('GW_ERR_MODBUS_TIMEOUT', `no answer from ${what} within the timeout`, { cause: err, context });
  }
  if (typeof e?.modbusCode === 'number') {
    // Code 11 from a gateway means the device behind it is silent: treat like a timeout.
    const code = e.modbusCode === 11 ? 'GW_ERR_MODBUS_TIMEOUT' : 'GW_ERR_MODBUS_EXCEPTION';
    return new IocError(code, `${what} answered exception ${e.modbusCode} (${EXCEPTIONS[e.modbusCode] ?? 'unknown'})`, { cause: err, context: { ...context, modbusCode: e.modbusCode } });
  }
  const errno = e?.errno ?? e?.code;
  if (errno === 'ECONNREFUSED' || errno === 'EHOSTUNREACH' || errno === 'ENETUNREACH' || errno === 'ETIMEDOUT' || errno === 'ECONNRESET' || /Port Not Open/i.test(e?.message ?? '')) {
    return new IocError('GW_ERR_MODBUS_CONNECT', `connection to ${String(context.endpoint ?? 'the device')} failed: ${e?.message ?? errno}`, { cause: err, context });
  }
  return new IocError('GW_ERR_MODBUS_IO', `Modbus transport error on ${what}: ${e?.message ?? String(err)}`, { cause: err, context });
}
