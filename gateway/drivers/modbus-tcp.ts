/**
 * Modbus TCP transport (modbus-serial `connectTCP`, MBAP framing, Modbus
 * Messaging on TCP/IP Implementation Guide v1.0b). One connection per
 * endpoint, transactions one at a time (many field devices and TCP gateways
 * handle a single transaction), always with a timeout: modbus-serial's
 * default is to wait forever. A refused or dropped connection is retried with
 * exponential backoff; while backing off, reads fail fast so polls of other
 * endpoints never wait on a dead one.
 */
import mb from 'modbus-serial';
import { IocError } from '../../contract/index.js';
import { Backoff, type Logger } from '../../lib/index.js';
import type { ModbusTable } from '../../device-profiles/index.js';
import type { ModbusTcpBusConfig } from '../config.js';
import { toModbusError } from './modbus-errors.js';
import { readTable, writeFunction, writeTable, type ModbusClient } from './modbus-ops.js';
import type { ModbusRequestOptions, ModbusTransport, WritableTable, WriteMode } from './modbus-transport.js';

// modbus-serial is CommonJS: under NodeNext its default export is `module.exports.default`.
const ModbusRTU = mb.default;

/** Dependencies of {@link ModbusTcpTransport}. */
export interface ModbusTcpDeps {
  config: ModbusTcpBusConfig;
  logger: Logger;
  clock?: () => number;
}

/** A Modbus TCP endpoint. */
export class ModbusTcpTransport implements ModbusTransport {
  private client: ModbusClient | null = null;
  private connecting: Promise<ModbusClient> | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private retryAt = 0;
  private lastError: IocError | null = null;
  private stopped = false;
  private readonly backoff: Backoff;
  private readonly clock: () => number;

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

  async stop(): Promise<void> {
    this.stopped = true;
    await this.queue.catch(() => undefined);
    this.drop();
  }

  private drop(): void {
    const c = this.client;
    this.client = null;
    if (c) {
      try {
        c.close(() => undefined);
      } catch {
        // already closed
      }
    }
  }

  private async connect(): Promise<ModbusClient> {
    if (this.client?.isOpen) return this.client;
    if (this.connecting) return this.connecting;
    if (this.clock() < this.retryAt && this.lastError) throw this.lastError;
    const { host, port, timeoutMs } = this.deps.config;
    this.connecting = (async () => {
      const client = new ModbusRTU();
      try {
        await client.connectTCP(host, { port, timeout: timeoutMs });
      } catch (err) {
        const e = toModbusError(err, { endpoint: this.endpoint, bus: this.id });
        const wait = this.backoff.next();
        this.retryAt = this.clock() + wait;
        this.lastError = new IocError('GW_ERR_MODBUS_CONNECT', `cannot connect to Modbus TCP ${this.endpoint}: ${e.message}; retrying in ${wait} ms`, { cause: err, context: { bus: this.id, endpoint: this.endpoint } });
        if (this.backoff.attempts === 1 || this.backoff.attempts % 10 === 0) {
          this.deps.logger.warn({ bus: this.id, endpoint: this.endpoint, attempts: this.backoff.attempts, retryInMs: wait, code: 'GW_ERR_MODBUS_CONNECT' }, 'Modbus TCP connect failed');
        }
        throw this.lastError;
      }
      client.setTimeout(timeoutMs);
      client.on('close', () => {
        if (this.client === client) this.client = null;
      });
      client.on('error', () => undefined);
      if (this.backoff.attempts > 0) this.deps.logger.info({ bus: this.id, endpoint: this.endpoint }, 'Modbus TCP connected');
      this.backoff.reset();
      this.lastError = null;
      this.client = client;
      return client;
    })();
    try {
      return await this.connecting;
    } finally {
      this.connecting = null;
    }
  }

  read(unitId: number, table: ModbusTable, address: number, count: number, opts: ModbusRequestOptions = {}): Promise<number[] | boolean[]> {
    return this.transaction(unitId, { unitId, table, address, count }, opts, (client) => readTable(client, table, address, count));
  }

  async write(unitId: number, table: WritableTable, address: number, values: number[] | boolean[], opts: ModbusRequestOptions & { mode?: WriteMode } = {}): Promise<void> {
    writeFunction(table, values.length, opts.mode); // refuse a bad quantity before queueing
    return this.transaction(unitId, { unitId, table, address, count: values.length, write: true }, opts, (client) => writeTable(client, table, address, values, opts.mode));
  }

  /** Runs one request on the connection, one at a time, with the device's timeout. */
  private transaction<T>(unitId: number, what: Record<string, unknown>, opts: ModbusRequestOptions, fn: (client: ModbusClient) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.stopped) throw new IocError('GW_ERR_MODBUS_IO', `bus ${this.id} is stopped`);
      const client = await this.connect();
      const ctx = { bus: this.id, endpoint: this.endpoint, ...what };
      client.setID(unitId);
      client.setTimeout(opts.timeoutMs ?? this.deps.config.timeoutMs);
      try {
        return await fn(client);
      } catch (err) {
        const e = toModbusError(err, ctx);
        if (e.code === 'GW_ERR_MODBUS_CONNECT' || e.code === 'GW_ERR_MODBUS_IO') this.drop();
        throw e;
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }
}
