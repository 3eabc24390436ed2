/**
 * A Modbus TCP simulator (modbus-serial ServerTCP, real MBAP framing) serving
 * several simulated devices by unit id on one endpoint, like a cabinet's
 * Modbus TCP gateway. It can go silent (requests get no answer, as with a
 * dead device behind a gateway), come back, drop its connections, and freeze
 * its values so a test can compare what the hub stored with what was served.
 *
 * modbus-serial's ServerTCP falls back to port 502 when given 0, so the port
 * is chosen here with {@link freePort}.
 */
import { once } from 'node:events';
import mb from 'modbus-serial';
import { freePort } from './free-port.js';
import type { SimDevice } from './field-devices.js';

type Cb<T> = (err: Error | null, value?: T) => void;

/** Options of {@link ModbusTcpSimulator}. */
export interface ModbusTcpSimOptions {
  host?: string;
  /** 0 or absent: a free port is chosen. */
  port?: number;
  /** Milliseconds between value updates. */
  tickMs?: number;
  /** Simulated processing time per request (ms). */
  responseDelayMs?: number;
  /**
   * How a unit id with no device answers: 'exception' (default) = exception
   * 0x0B, as a Modbus TCP gateway does; 'silent' = no answer at all, as a
   * device that serves only its own unit id (a scan then waits out a timeout
   * per id).
   */
  unknownUnits?: 'exception' | 'silent';
}

/** One Modbus TCP endpoint with devices behind unit ids. */
export class ModbusTcpSimulator {
  private server: InstanceType<typeof mb.ServerTCP> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly t0 = Date.now();
  private silentUnits = new Set<number>();
  private allSilent = false;
  private frozen = false;
  /** Requests answered, by unit id. */
  readonly requests = new Map<number, number>();
  port = 0;

  constructor(readonly devices: Map<number, SimDevice>, private readonly opts: ModbusTcpSimOptions = {}) {}

  async start(): Promise<void> {
    const host = this.opts.host ?? '127.0.0.1';
    this.port = this.opts.port || (await freePort(host));
    const device = (unit: number): SimDevice | undefined => this.devices.get(unit);
    const answer = <T>(unit: number, cb: Cb<T>, fn: (d: SimDevice) => T, read?: [string, number, number]): void => {
      if (this.allSilent || this.silentUnits.has(unit)) return; // no answer at all
      const d = device(unit);
      // Modbus Application Protocol v1.1b3 §7: 0x0B gateway target device failed to respond.
      if (!d && this.opts.unknownUnits === 'silent') return;
      if (!d) return cb(Object.assign(new Error("gateway target device failed to respond"), { modbusErrorCode: 0x0b }));
      this.requests.set(unit, (this.requests.get(unit) ?? 0) + 1);
      const reply = (): void => {
        try {
          if (read) d.onRead?.(read[0], read[1], read[2]);
          cb(null, fn(d));
        } catch (err) {
          cb(err as Error);
        }
      };
      if (this.opts.responseDelayMs) setTimeout(reply, this.opts.responseDelayMs);
      else reply();
    };
    const vector = {
      getMultipleHoldingRegisters: (addr: number, len: number, unit: number, cb: Cb<number[]>) =>
        answer(unit, cb, (d) => Array.from({ length: len }, (_, i) => d.bank.word('holding', addr + i)), ['holding', addr, len]),
      getHoldingRegister: (addr: number, unit: number, cb: Cb<number>) => answer(unit, cb, (d) => d.bank.word('holding', addr), ['holding', addr, 1]),
      getMultipleInputRegisters: (addr: number, len: number, unit: number, cb: Cb<number[]>) =>
        answer(unit, cb, (d) => Array.from({ length: len }, (_, i) => d.bank.word('input', addr + i))),
      getInputRegister: (addr: number, unit: number, cb: Cb<number>) => answer(unit, cb, (d) => d.bank.word('input', addr)),
      getCoil: (addr: number, unit: number, cb: Cb<boolean>) => answer(unit, cb, (d) => d.bank.bit('coil', addr)),
      getDiscreteInput: (addr: number, unit: number, cb: Cb<boolean>) => answer(unit, cb, (d) => d.bank.bit('discrete', addr)),
      setRegister: (addr: number, value: number, unit: number, cb: Cb<void>) => answer(unit, cb, (d) => void d.bank.holding.set(addr, value)),
      setCoil: (addr: number, value: boolean, unit: number, cb: Cb<void>) => answer(unit, cb, (d) => void d.bank.coil.set(addr, value)),
    };
    this.server = new mb.ServerTCP(vector as unknown as ConstructorParameters<typeof mb.ServerTCP>[0], { host, port: this.port, unitID: 255 });
    this.server.on('socketError', () => undefined);
    this.server.on('serverError', () => undefined);
    await once(this.server, 'initialized');
    const tickMs = this.opts.tickMs ?? 250;
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  /** Advances every device now (unless frozen). */
  tick(): void {
    if (this.frozen) return;
    const t = Date.now() - this.t0;
    for (const d of this.devices.values()) d.tick(t);
  }

  /** Stop (true) or resume (false) value changes. */
  freeze(on = true): void {
    this.frozen = on;
  }

  /** Make one unit (or, with no argument, the whole endpoint) stop answering, or answer again. */
  silent(on: boolean, unit?: number): void {
    if (unit === undefined) this.allSilent = on;
    else if (on) this.silentUnits.add(unit);
    else this.silentUnits.delete(unit);
  }

  /** Drops every open client connection (like a power-cycled TCP gateway). */
  dropConnections(): void {
    const socks = (this.server as unknown as { socks?: Map<import('node:net').Socket, unknown> })?.socks;
    for (const s of socks?.keys() ?? []) s.destroy();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const server = this.server;
    this.server = null;
    if (!server) return;
    this.dropConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
