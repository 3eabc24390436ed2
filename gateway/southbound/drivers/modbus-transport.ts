/**
 * What a Modbus poller needs from a line: read a table range of one unit,
 * write registers or coils. Implemented by the TCP transport and by the RTU
 * transport (serial line, RTU over TCP), each with its own scheduling rules.
 */
import type { ModbusTable } from '../../../device-profiles/index.js';
import { IocError } from '../../../contract/index.js';

/** Per-request overrides (a device's own timeout and retries on a shared bus). */
export interface ModbusRequestOptions {
  /** Milliseconds to wait for the answer; default the bus's. */
  timeoutMs?: number;
  /** Extra attempts after a timeout or a garbled answer; default the bus's. */
  retries?: number;
  /**
   * Aborted: a request still waiting in the bus queue leaves it at once,
   * rejected with GW_ERR_MODBUS_IO (cancelled) (the one on the wire finishes). A device
   * that stops aborts its own, so stopping does not wait for every request
   * queued behind a silent device on a shared line.
   */
  signal?: AbortSignal;
}

/** The error of a request that left the bus queue because its signal was aborted. */
export function cancelledRequest(bus: string): IocError {
  return new IocError('GW_ERR_MODBUS_IO', `request cancelled before it reached bus ${bus}: the device stopped`, { context: { bus } });
}

/**
 * Takes `item` out of `queue` when `signal` aborts (before it runs), and calls
 * `reject` with {@link cancelledRequest}. Returns the detach function, to call
 * once the item runs.
 */
export function cancelWhenAborted<T>(queue: T[], item: T, signal: AbortSignal | undefined, bus: string, reject: (err: unknown) => void): () => void {
  if (!signal) return () => undefined;
  const onAbort = (): void => {
    const i = queue.indexOf(item);
    if (i < 0) return; // already running: it finishes
    queue.splice(i, 1);
    reject(cancelledRequest(bus));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/** The writable tables: coils (FC 5/15) and holding registers (FC 6/16). */
export type WritableTable = 'coil' | 'holding';

/**
 * Which function code writes: `auto` = FC 5/6 for one value, FC 15/16 for
 * more; `single` = always FC 5/6 (one value only); `multiple` = always FC 15/16
 * (some devices, e.g. the Eastron SDM meters, accept only FC 16).
 */
export type WriteMode = 'auto' | 'single' | 'multiple';

/** A Modbus line shared by the devices on it. */
export interface ModbusTransport {
  readonly id: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Reads `count` registers (holding/input: uint16 words) or bits (coil/discrete)
   * from `unitId` starting at `address`. Rejects with an IocError:
   * GW_ERR_MODBUS_TIMEOUT, GW_ERR_MODBUS_CONNECT, GW_ERR_MODBUS_EXCEPTION or GW_ERR_MODBUS_IO
   * (RTU lines also GW_ERR_MODBUS_CRC, GW_ERR_MODBUS_FRAME, GW_ERR_MODBUS_WRONG_UNIT,
   * GW_ERR_SERIAL_OPEN, GW_ERR_SERIAL_PORT_GONE).
   */
  read(unitId: number, table: ModbusTable, address: number, count: number, opts?: ModbusRequestOptions): Promise<number[] | boolean[]>;
  /**
   * Writes `values` (uint16 words for holding registers, booleans for coils)
   * from `address` (Modbus Application Protocol v1.1b3 §6.5, §6.6, §6.11, §6.12).
   * Writes are never retried after a timeout: the device may have acted on it.
   */
  write(unitId: number, table: WritableTable, address: number, values: number[] | boolean[], opts?: ModbusRequestOptions & { mode?: WriteMode }): Promise<void>;
}
