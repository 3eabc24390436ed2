/**
 * Modbus TCP transport: MBAP framing (Modbus Messaging on TCP/IP
 * Implementation Guide v1.0b) on a plain socket, PDUs from modbus-pdu.ts.
 * One connection per endpoint, transactions one at a time (many field devices
 * and TCP gateways handle a single transaction), always with a timeout. A
 * refused or dropped connection is retried with exponential backoff; while
 * backing off, reads fail fast so polls of other endpoints never wait on a
 * dead one.
 *
 * Why not modbus-serial here (it still drives the RTU lines): its TCP client
 * keeps every finished transaction — callback, promise, reply buffer and
 * decoded data — until the transaction id wraps at 256, about 200 kB per
 * endpoint polled twice a second, and allocates several objects per request.
 * At 500 endpoints that was most of the gateway's heap. Here a request costs
 * one small record, its promise and the decoded array, all short-lived; the
 * read request buffer is reused.
 */
import net from 'node:net';
import { IocError } from '../../../contract/index.js';
import { Backoff, type Logger } from '../../../lib/index.js';
import type { ModbusTable } from '../../../device-profiles/index.js';
import type { ModbusTcpBusConfig } from '../../config.js';
import { reasonOf, toModbusError } from './modbus-errors.js';
import { encodeReadAdu, encodeWriteAdu, MBAP_LENGTH, parseResponsePdu, readFunction, writeFunction } from './modbus-pdu.js';
import type { ModbusRequestOptions, ModbusTransport, WritableTable, WriteMode } from './modbus-transport.js';
import { cancelledRequest, cancelWhenAborted } from './modbus-transport.js';

/** Dependencies of {@link ModbusTcpTransport}. */
export interface ModbusTcpDeps {
  config: ModbusTcpBusConfig;
  logger: Logger;
  clock?: () => number;
}

/** One queued or running transaction. */
interface Transaction {
  unitId: number;
  table: ModbusTable;
  fc: number;
  address: number;
  count: number;
  /** Values of a write; null for a read. */
  values: readonly number[] | readonly boolean[] | null;
  timeoutMs: number;
  resolve: (data: number[] | boolean[]) => void;
  reject: (err: unknown) => void;
}

const NOOP = (): void => undefined;

/** Connection lost while a transaction waited: reported like a refused connection. */
const CONNECTION_LOST = Object.assign(new Error('connection closed'), { code: 'ECONNRESET' });
/** Named so toModbusError maps it to GW_ERR_MODBUS_TIMEOUT. */
const TIMED_OUT = Object.assign(new Error('Timed out'), { name: 'TransactionTimedOutError' });

/** A Modbus TCP endpoint. */
export class ModbusTcpTransport implements ModbusTransport {
  private socket: net.Socket | null = null;
  private connecting = false;
  private readonly queue: Transaction[] = [];
  private current: Transaction | null = null;
  private tid = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Bytes of an incomplete reply (rare: replies are small and arrive whole). */
  private rx: Buffer | null = null;
  /** Read requests are always 12 bytes: one buffer, reused while the socket has nothing queued. */
  private readonly readAdu = Buffer.alloc(MBAP_LENGTH + 5);
  private retryAt = 0;
  private lastError: IocError | null = null;
  private stopped = false;
  private idle: (() => void) | null = null;
  private stopping: Promise<void> | null = null;
  private readonly backoff: Backoff;
  private readonly clock: () => number;
  private readonly onTimeout = (): void => {
    this.timer = null;
    this.finish(null, TIMED_OUT, false);
  };

  constructor(private readonly deps: ModbusTcpDeps) {
    this.clock = deps.clock ?? Date.now;
    this.backoff = new Backoff({ minMs: deps.config.reconnectMinMs, maxMs: deps.config.reconnectMaxMs });
  }

  get id(): string {
    return this.deps.config.id;
  }

  private get endpoint(): string {
    return `${this.deps.config.host}:${this.deps.config.port}`;
  }

  async start(): Promise<void> {
    this.stopped = false;
  }

  /** Fails what is queued, lets the running transaction finish, closes the connection. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const tx of this.queue.splice(0)) tx.reject(new IocError('GW_ERR_MODBUS_IO', `bus ${this.id} is stopped`));
    if (this.current || this.connecting) {
      this.stopping ??= new Promise<void>((resolve) => (this.idle = resolve));
      await this.stopping;
      this.stopping = null;
    }
    this.drop();
  }

  read(unitId: number, table: ModbusTable, address: number, count: number, opts: ModbusRequestOptions = {}): Promise<number[] | boolean[]> {
    return this.enqueue(unitId, table, readFunction(table), address, count, null, opts);
  }

  async write(unitId: number, table: WritableTable, address: number, values: number[] | boolean[], opts: ModbusRequestOptions & { mode?: WriteMode } = {}): Promise<void> {
    const fc = writeFunction(table, values.length, opts.mode); // refuse a bad quantity before queueing
    await this.enqueue(unitId, table, fc, address, values.length, values, opts);
  }

  private enqueue(unitId: number, table: ModbusTable, fc: number, address: number, count: number, values: Transaction['values'], opts: ModbusRequestOptions): Promise<number[] | boolean[]> {
    if (this.stopped) return Promise.reject(new IocError('GW_ERR_MODBUS_IO', `bus ${this.id} is stopped`));
    const timeoutMs = opts.timeoutMs ?? this.deps.config.timeoutMs;
    if (opts.signal?.aborted) return Promise.reject(cancelledRequest(this.id));
    return new Promise((resolve, reject) => {
      const tx: Transaction = { unitId, table, fc, address, count, values, timeoutMs, resolve, reject };
      const detach = cancelWhenAborted(this.queue, tx, opts.signal, this.id, reject);
      tx.resolve = (data) => {
        detach();
        resolve(data);
      };
      tx.reject = (err) => {
        detach();
        reject(err);
      };
      this.queue.push(tx);
      this.next();
    });
  }

  /** Starts the next transaction if none runs: on the open connection, or after connecting. */
  private next(): void {
    if (this.current || this.connecting) return;
    if (this.queue.length === 0) {
      this.idle?.();
      this.idle = null;
      return;
    }
    if (this.socket) {
      this.send(this.queue.shift() as Transaction, this.socket);
      return;
    }
    if (this.clock() < this.retryAt && this.lastError) {
      // Backing off: everything queued fails fast with the connect error.
      const err = this.lastError;
      for (const tx of this.queue.splice(0)) tx.reject(err);
      this.next();
      return;
    }
    this.connect();
  }

  private connect(): void {
    const { host, port, timeoutMs } = this.deps.config;
    this.connecting = true;
    const socket = net.connect({ host, port });
    let settled = false;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (settled) return;
      settled = true;
      this.connecting = false;
      const wait = this.backoff.next();
      this.retryAt = this.clock() + wait;
      // No "retrying in" here: a one-shot probe does not retry; the gateway's log line says when it does.
      this.lastError = new IocError('GW_ERR_MODBUS_CONNECT', `cannot connect to Modbus TCP ${this.endpoint}: ${reasonOf(err)}`, { cause: err, context: { bus: this.id, endpoint: this.endpoint } });
      if (this.backoff.attempts === 1 || this.backoff.attempts % 10 === 0) {
        this.deps.logger.warn({ bus: this.id, endpoint: this.endpoint, attempts: this.backoff.attempts, retryInMs: wait, code: 'GW_ERR_MODBUS_CONNECT' }, 'Modbus TCP connect failed');
      }
      this.next();
    };
    const timer = setTimeout(() => fail(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      if (settled) return;
      settled = true;
      this.connecting = false;
      socket.setNoDelay(true);
      socket.on('data', (d: Buffer) => this.onData(d, socket));
      socket.on('error', () => undefined); // 'close' follows and fails what is running
      socket.on('close', () => this.onClose(socket));
      if (this.backoff.attempts > 0) this.deps.logger.info({ bus: this.id, endpoint: this.endpoint }, 'Modbus TCP connected');
      this.backoff.reset();
      this.lastError = null;
      if (this.stopped) {
        socket.destroy();
        this.next();
        return;
      }
      this.socket = socket;
      this.rx = null;
      this.next();
    });
  }

  private send(tx: Transaction, socket: net.Socket): void {
    this.current = tx;
    this.tid = (this.tid + 1) & 0xffff;
    let adu: Buffer;
    if (tx.values) adu = encodeWriteAdu(this.tid, tx.unitId, tx.fc as 5 | 6 | 15 | 16, tx.address, tx.values);
    else {
      // The shared buffer only when the socket holds no unsent bytes that could still point at it.
      adu = socket.writableLength === 0 ? this.readAdu : Buffer.alloc(MBAP_LENGTH + 5);
      encodeReadAdu(adu, this.tid, tx.unitId, tx.fc, tx.address, tx.count);
    }
    this.timer = setTimeout(this.onTimeout, tx.timeoutMs);
    socket.write(adu);
  }

  /** Splits the stream into MBAP frames (§3.1.3: the length field counts the unit id and the PDU). */
  private onData(d: Buffer, socket: net.Socket): void {
    let buf = d;
    if (this.rx) {
      buf = Buffer.concat([this.rx, d]);
      this.rx = null;
    }
    let at = 0;
    while (buf.length - at >= MBAP_LENGTH) {
      const len = buf.readUInt16BE(at + 4);
      if (buf.readUInt16BE(at + 2) !== 0 || len < 2 || len > 254) {
        // Not MBAP: a byte stream cannot be resynchronised, reconnect.
        this.finish(null, new Error(`not a Modbus TCP frame (protocol ${buf.readUInt16BE(at + 2)}, length ${len})`), true);
        socket.destroy();
        return;
      }
      const end = at + 6 + len;
      if (buf.length < end) break;
      this.onFrame(buf, at, end);
      at = end;
    }
    if (at < buf.length) this.rx = Buffer.from(buf.subarray(at));
  }

  private onFrame(frame: Buffer, at: number, end: number): void {
    const tx = this.current;
    // A reply whose transaction id is not the pending one (a late answer to a timed-out
    // request) is discarded (Implementation Guide v1.0b §4.2.1.2).
    if (!tx || frame.readUInt16BE(at) !== this.tid) return;
    const unit = frame[at + 6] as number;
    if (unit !== tx.unitId) {
      this.finish(null, new Error(`reply from unit ${unit} to a request for unit ${tx.unitId}`), true);
      return;
    }
    let data: number[] | boolean[];
    try {
      data = parseResponsePdu(frame, at + MBAP_LENGTH, end, tx.fc, tx.count);
    } catch (err) {
      this.finish(null, err, (err as { modbusCode?: number }).modbusCode === undefined);
      return;
    }
    this.finish(data, null, false);
  }

  private onClose(socket: net.Socket): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.rx = null;
    this.finish(null, CONNECTION_LOST, false);
  }

  /** Ends the running transaction; an IO-level failure (`drop`) closes the connection. */
  private finish(data: number[] | boolean[] | null, err: unknown, drop: boolean): void {
    const tx = this.current;
    if (!tx) return;
    this.current = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const { resolve, reject } = tx;
    const write = tx.values !== null;
    // A record that waited out a slow round trip may already sit in V8's old generation: cut its
    // links to the (young) promise and what hangs off it, or they would survive until a full GC.
    tx.resolve = NOOP;
    tx.reject = NOOP;
    tx.values = null;
    if (err === null) resolve(data as number[] | boolean[]);
    else {
      const e = toModbusError(err, { bus: this.id, endpoint: this.endpoint, unitId: tx.unitId, table: tx.table, address: tx.address, count: tx.count, ...(write ? { write: true } : {}) });
      if (drop || e.code === 'GW_ERR_MODBUS_CONNECT' || e.code === 'GW_ERR_MODBUS_IO') this.drop();
      reject(e);
    }
    this.next();
  }

  private drop(): void {
    const s = this.socket;
    this.socket = null;
    this.rx = null;
    s?.destroy();
  }
}
