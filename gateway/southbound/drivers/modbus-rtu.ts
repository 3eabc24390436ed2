/**
 * Modbus RTU transport for a serial line (RS-485/RS-232, `modbus-rtu`) or raw
 * RTU frames over TCP to a serial device server (`modbus-rtu-tcp`; what
 * modbus-serial's `connectTelnet` sends — not `connectTcpRTUBuffered`, which
 * is MBAP). modbus-serial (`new ModbusRTU(port)`) builds and parses the PDUs;
 * {@link RtuPort} frames replies; this class schedules the line:
 *
 * - one transaction at a time (RTU has no transaction ids; modbus-serial
 *   fails with concurrent RTU requests), in arrival order, so a device that
 *   is backing off never blocks the others for longer than one timeout;
 * - at least 3.5 character times of silence between frames (Modbus over
 *   Serial Line v1.02 §2.5.1.1; a fixed 1.75 ms above 19200 baud) plus a
 *   configurable extra delay for slow RS-485 converters;
 * - a per-request timeout (the device's or the bus's) counted from the end
 *   of the request on the wire: the transmit time of request and reply at
 *   the line's baud rate is added, so large reads at 9600 baud do not time out;
 * - retries of reads after a timeout or a garbled reply; never of writes;
 * - the line reopened with backoff when it breaks (USB adapter unplugged,
 *   converter rebooted), with `bus.down` / `bus.up` events. A silent device
 *   never closes the line: the other devices behind a converter keep going.
 */
import mb from 'modbus-serial';
import { IocError, isIocError, type GatewayEvent } from '../../../contract/index.js';
import type { ModbusTable } from '../../../device-profiles/index.js';
import { Backoff, type Logger } from '../../../lib/index.js';
import type { ModbusRtuBusConfig, ModbusRtuTcpBusConfig } from '../../config.js';
import { eventId } from '../device-state.js';
import { openTcpLink, type ByteLink, type SerialPortFactory } from './byte-link.js';
import { reasonOf, toModbusError } from './modbus-errors.js';
import { readTable, writeFunction, writeTable, type ModbusClient } from './modbus-ops.js';
import type { ModbusRequestOptions, ModbusTransport, WritableTable, WriteMode } from './modbus-transport.js';
import { cancelledRequest, cancelWhenAborted } from './modbus-transport.js';
import { RtuPort, type RtuLineStats } from './rtu-port.js';

const ModbusRTU = mb.default;

/** Dependencies of {@link ModbusRtuTransport}. */
export interface ModbusRtuDeps {
  config: ModbusRtuBusConfig | ModbusRtuTcpBusConfig;
  logger: Logger;
  /** Opens the serial port (`modbus-rtu`); tests pass the mock binding. */
  openPort: SerialPortFactory;
  onEvent?: (event: GatewayEvent) => void;
}

/** Bits per character: start + data + parity + stop (RTU: 11, §2.5.1). */
export function bitsPerChar(cfg: { dataBits?: number; parity?: string; stopBits?: number }): number {
  return 1 + (cfg.dataBits ?? 8) + (cfg.parity === undefined || cfg.parity === 'none' ? 0 : 1) + (cfg.stopBits ?? 1);
}

/** One character time in ms at `baudRate`. */
export function charTimeMs(baudRate: number, bits = 11): number {
  return (bits * 1000) / baudRate;
}

/** The inter-frame silence t3.5 in ms (Modbus over Serial Line v1.02 §2.5.1.1: 1.75 ms fixed above 19200 baud). */
export function interFrameSilenceMs(baudRate: number, bits = 11): number {
  return baudRate > 19200 ? 1.75 : 3.5 * charTimeMs(baudRate, bits);
}

/** Line statistics plus scheduling counters. */
export interface RtuTransportStats extends RtuLineStats {
  transactions: number;
  timeouts: number;
  retries: number;
  reopenings: number;
}

/**
 * Waits until `performance.now()` reaches `deadline`. Timers are armed from
 * the event loop's cached clock and may fire up to a millisecond early, which
 * would cut the inter-frame silence short: the last stretch is waited out on
 * setImmediate turns.
 */
export async function sleepUntil(deadline: number): Promise<void> {
  for (;;) {
    const left = deadline - performance.now();
    if (!(left > 0)) return;
    if (left > 2) await new Promise((r) => setTimeout(r, left - 1));
    else await new Promise((r) => setImmediate(r));
  }
}

const RETRYABLE = new Set(['GW_ERR_MODBUS_TIMEOUT', 'GW_ERR_MODBUS_CRC', 'GW_ERR_MODBUS_FRAME', 'GW_ERR_MODBUS_WRONG_UNIT']);

interface Job {
  run(): Promise<void>;
}

/** A Modbus RTU line shared by the devices on it. */
export class ModbusRtuTransport implements ModbusTransport {
  readonly stats: RtuTransportStats = { frames: 0, crcErrors: 0, shortFrames: 0, wrongUnit: 0, noiseBytes: 0, transactions: 0, timeouts: 0, retries: 0, reopenings: 0 };
  private link: ByteLink | null = null;
  private port: RtuPort | null = null;
  private client: ModbusClient | null = null;
  private opening: Promise<void> | null = null;
  private lastError: IocError | null = null;
  private retryAt = 0;
  private reportedDown = false;
  private stopped = true;
  private readonly queue: Job[] = [];
  private busy = false;
  /** performance.now() before which no frame may start. */
  private lineFreeAt = 0;
  private readonly backoff: Backoff;
  private readonly charMs: number;
  /** t3.5 plus the configured extra delay, ms. */
  readonly silenceMs: number;

  constructor(private readonly deps: ModbusRtuDeps) {
    const c = deps.config;
    const bits = c.type === 'modbus-rtu' ? bitsPerChar(c) : 11;
    this.charMs = charTimeMs(c.baudRate, bits);
    this.silenceMs = interFrameSilenceMs(c.baudRate, bits) + c.interFrameDelayMs;
    this.backoff = new Backoff({ minMs: c.reconnectMinMs, maxMs: c.reconnectMaxMs });
  }

  get id(): string {
    return this.deps.config.id;
  }

  private get where(): string {
    const c = this.deps.config;
    return c.type === 'modbus-rtu' ? c.path : `${c.host}:${c.port}`;
  }

  async start(): Promise<void> {
    this.stopped = false;
    // Open in the background: a missing adapter must not keep the gateway from starting.
    void this.ensureOpen().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const job of this.queue.splice(0)) void job.run();
    await this.opening?.catch(() => undefined);
    const link = this.link;
    this.dropLink();
    await link?.close();
  }

  read(unitId: number, table: ModbusTable, address: number, count: number, opts: ModbusRequestOptions = {}): Promise<number[] | boolean[]> {
    const replyBytes = table === 'coil' || table === 'discrete' ? 5 + Math.ceil(count / 8) : 5 + 2 * count;
    return this.enqueue({ unitId, table, address, count }, 8 + replyBytes, opts, opts.retries ?? this.deps.config.retries, (client) => readTable(client, table, address, count));
  }

  async write(unitId: number, table: WritableTable, address: number, values: number[] | boolean[], opts: ModbusRequestOptions & { mode?: WriteMode } = {}): Promise<void> {
    const fc = writeFunction(table, values.length, opts.mode);
    const requestBytes = fc === 5 || fc === 6 ? 8 : fc === 15 ? 9 + Math.ceil(values.length / 8) : 9 + 2 * values.length;
    // Never retried: a write that timed out may still have been carried out.
    return this.enqueue({ unitId, table, address, count: values.length, write: true }, requestBytes + 8, opts, 0, (client) => writeTable(client, table, address, values, opts.mode));
  }

  /** Queues one request (with its retries) for the line. */
  private enqueue<T>(what: Record<string, unknown> & { unitId: number }, wireBytes: number, opts: ModbusRequestOptions, retries: number, fn: (c: ModbusClient) => Promise<T>): Promise<T> {
    if (opts.signal?.aborted) return Promise.reject(cancelledRequest(this.id));
    return new Promise<T>((resolve, reject) => {
      let detach = (): void => undefined;
      const job = {
        run: async () => {
          detach();
          if (this.stopped) return reject(new IocError('GW_ERR_MODBUS_IO', `bus ${this.id} is stopped`, { context: { bus: this.id } }));
          for (let attempt = 0; ; attempt++) {
            try {
              return resolve(await this.transaction(what, wireBytes, opts, fn));
            } catch (err) {
              const e = err as IocError;
              if (attempt >= retries || !RETRYABLE.has(e.code) || this.stopped) return reject(e);
              this.stats.retries++;
            }
          }
        },
      };
      detach = cancelWhenAborted(this.queue, job, opts.signal, this.id, reject);
      this.queue.push(job);
      this.pump();
    });
  }

  private pump(): void {
    if (this.busy) return;
    const job = this.queue.shift();
    if (!job) return;
    this.busy = true;
    void job.run().finally(() => {
      this.busy = false;
      this.pump();
    });
  }

  /** One request/reply on the line, after the mandatory silence. */
  private async transaction<T>(what: Record<string, unknown> & { unitId: number }, wireBytes: number, opts: ModbusRequestOptions, fn: (c: ModbusClient) => Promise<T>): Promise<T> {
    await this.ensureOpen();
    await sleepUntil(this.lineFreeAt);
    const client = this.client;
    const port = this.port;
    if (!client || !port) throw this.lastError ?? new IocError('GW_ERR_SERIAL_PORT_GONE', `line ${this.where} is closed`, { context: { bus: this.id } });
    const timeout = (opts.timeoutMs ?? this.deps.config.timeoutMs) + Math.ceil(wireBytes * this.charMs);
    client.setID(what.unitId);
    client.setTimeout(timeout);
    this.stats.transactions++;
    const ctx = { bus: this.id, endpoint: this.where, ...what };
    try {
      const result = await fn(client);
      this.lineFreeAt = Math.max(performance.now(), port.lastRxAt) + this.silenceMs;
      return result;
    } catch (err) {
      let e = port.takeFault();
      if (!e) {
        const mapped = toModbusError(err, ctx);
        e = mapped.code === 'GW_ERR_MODBUS_TIMEOUT' && !('modbusCode' in mapped.context) ? port.classifyTimeout() ?? mapped : mapped;
        if (/Data length error|Unexpected data error/.test((err as Error)?.message ?? '')) {
          e = new IocError('GW_ERR_MODBUS_FRAME', `malformed reply from unit ${what.unitId}: ${(err as Error).message}`, { cause: err, context: ctx });
        }
      }
      if (e.code === 'GW_ERR_MODBUS_TIMEOUT') this.stats.timeouts++;
      if (!e.context.bus) Object.assign(e.context, ctx);
      // After a failure, let a late or noisy reply die out before the next frame.
      port.flush();
      this.lineFreeAt = performance.now() + Math.max(this.silenceMs, 4 * this.charMs);
      throw e;
    }
  }

  /** Opens the line if it is closed; fails fast while backing off. */
  private async ensureOpen(): Promise<void> {
    if (this.client && this.link?.isOpen) return;
    if (this.opening) return this.opening;
    if (this.lastError && Date.now() < this.retryAt) throw this.lastError;
    this.opening = (async () => {
      const c = this.deps.config;
      let link: ByteLink;
      try {
        link = c.type === 'modbus-rtu'
          ? await this.deps.openPort({ path: c.path, baudRate: c.baudRate, parity: c.parity, dataBits: c.dataBits, stopBits: c.stopBits })
          : await openTcpLink(c.host, c.port, Math.max(1000, c.timeoutMs));
      } catch (err) {
        const wait = this.backoff.next();
        this.retryAt = Date.now() + wait;
        const code = c.type === 'modbus-rtu' ? 'GW_ERR_SERIAL_OPEN' : 'GW_ERR_MODBUS_CONNECT';
        this.lastError = new IocError(code, isIocError(err) ? err.message : `cannot open ${this.where}: ${reasonOf(err)}`, { cause: err, context: { bus: this.id, endpoint: this.where } });
        if (this.backoff.attempts === 1 || this.backoff.attempts % 10 === 0) {
          this.deps.logger.warn({ bus: this.id, endpoint: this.where, attempts: this.backoff.attempts, retryInMs: wait, code }, 'cannot open Modbus RTU line');
        }
        this.busDown(code, `bus ${this.id}: cannot open ${this.where}: ${(err as Error).message}`);
        throw this.lastError;
      }
      if (this.stopped) {
        await link.close();
        throw new IocError('GW_ERR_MODBUS_IO', `bus ${this.id} is stopped`);
      }
      const port = new RtuPort(link, this.stats, Math.max(50, 20 * this.charMs), { bus: this.id, endpoint: this.where });
      const client = new ModbusRTU(port as unknown as ConstructorParameters<typeof ModbusRTU>[0]);
      await new Promise<void>((resolve, reject) => client.open((err: Error | null) => (err ? reject(err) : resolve())));
      client.on('error', () => undefined);
      link.once('close', (err: Error | null) => this.onLinkClosed(link, err));
      if (this.backoff.attempts > 0 || this.reportedDown) this.stats.reopenings++;
      this.link = link;
      this.port = port;
      this.client = client;
      this.lastError = null;
      this.backoff.reset();
      this.lineFreeAt = performance.now() + this.silenceMs;
      if (this.reportedDown) {
        this.reportedDown = false;
        this.deps.logger.info({ bus: this.id, endpoint: this.where }, 'Modbus RTU line is back');
        this.event('bus.up', 'info', `bus ${this.id}: ${this.where} is open again`);
      }
    })();
    try {
      await this.opening;
    } finally {
      this.opening = null;
    }
  }

  private onLinkClosed(link: ByteLink, err: Error | null): void {
    if (this.link !== link) return;
    this.dropLink();
    if (this.stopped || err === null) return;
    const c = this.deps.config;
    const code = c.type === 'modbus-rtu' ? 'GW_ERR_SERIAL_PORT_GONE' : 'GW_ERR_MODBUS_CONNECT';
    this.lastError = new IocError(code, `line ${this.where} of bus ${this.id} went away: ${err.message}`, { cause: err, context: { bus: this.id, endpoint: this.where } });
    this.retryAt = Date.now() + this.backoff.next();
    this.deps.logger.warn({ bus: this.id, endpoint: this.where, code, err: err.message }, 'Modbus RTU line lost');
    this.busDown(code, this.lastError.message);
  }

  private dropLink(): void {
    this.link = null;
    this.port = null;
    this.client = null;
  }

  private busDown(code: string, message: string): void {
    if (this.reportedDown) return;
    this.reportedDown = true;
    this.event('bus.down', 'warning', message, code);
  }

  private event(type: string, severity: GatewayEvent['severity'], message: string, code?: string): void {
    const ev: GatewayEvent = { v: 1, id: eventId(), ts: Date.now(), type, severity, message: message.slice(0, 1024), data: { bus: this.id, endpoint: this.where } };
    if (code) ev.code = code;
    this.deps.onEvent?.(ev);
  }
}
