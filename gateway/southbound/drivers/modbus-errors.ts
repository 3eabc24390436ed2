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

/** Socket errors that mean "the endpoint cannot be reached" (Node sets `code`; `errno` is a number). */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/**
 * "unit 3 holding @40×2" from the fields that are there: a connect error
 * carries no unit or register, and a message must never print `undefined`
 * (issue 14.2). Empty when nothing is known.
 */
export function describeRequest(context: Record<string, unknown>): string {
  const parts: string[] = [];
  if (typeof context.unitId === 'number') parts.push(`unit ${context.unitId}`);
  if (typeof context.table === 'string') {
    let at = context.table;
    if (typeof context.address === 'number') at += ` @${context.address}`;
    if (typeof context.count === 'number') at += `×${context.count}`;
    parts.push(at);
  }
  const where = typeof context.endpoint === 'string' ? context.endpoint : typeof context.bus === 'string' ? `bus ${context.bus}` : '';
  if (where) parts.push(parts.length > 0 ? `on ${where}` : where);
  return parts.join(' ');
}

/** The readable part of whatever was thrown: never `undefined` or `[object Object]`. */
export function reasonOf(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown } | null | undefined;
  if (typeof e?.message === 'string' && e.message) return e.message;
  if (typeof e?.code === 'string') return e.code;
  if (typeof err === 'string' && err) return err;
  return 'unknown error';
}

/** Converts whatever the socket or modbus-serial threw into an IocError with context. */
export function toModbusError(err: unknown, context: Record<string, unknown>): IocError {
  if (err instanceof IocError) return err;
  const e = err as { name?: string; message?: string; modbusCode?: number; errno?: unknown; code?: unknown } | null | undefined;
  const what = describeRequest(context) || 'the Modbus device';
  const reason = reasonOf(err);
  if (e?.name === 'TransactionTimedOutError' || /timed out/i.test(e?.message ?? '')) {
    return new IocError('GW_ERR_MODBUS_TIMEOUT', `no answer from ${what} within the timeout`, { cause: err, context });
  }
  if (typeof e?.modbusCode === 'number') {
    // Code 11 from a gateway means the device behind it is silent: treat like a timeout.
    const code = e.modbusCode === 11 ? 'GW_ERR_MODBUS_TIMEOUT' : 'GW_ERR_MODBUS_EXCEPTION';
    return new IocError(code, `${what} answered exception ${e.modbusCode} (${EXCEPTIONS[e.modbusCode] ?? 'unknown'})`, { cause: err, context: { ...context, modbusCode: e.modbusCode } });
  }
  // Node puts the name in `code` ('ECONNREFUSED') and a negative number in `errno`.
  const sysCode = typeof e?.code === 'string' ? e.code : typeof e?.errno === 'string' ? e.errno : '';
  if (CONNECT_ERRORS.has(sysCode) || /Port Not Open/i.test(e?.message ?? '')) {
    const endpoint = typeof context.endpoint === 'string' ? context.endpoint : 'the Modbus endpoint';
    return new IocError('GW_ERR_MODBUS_CONNECT', `connection to ${endpoint} failed: ${reason}`, { cause: err, context });
  }
  return new IocError('GW_ERR_MODBUS_IO', `Modbus transport error on ${what}: ${reason}`, { cause: err, context });
}
