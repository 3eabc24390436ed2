/**
 * A byte link: the raw stream under a serial protocol — a serial port
 * (serialport 13, real or mock binding) or a TCP socket to a serial device
 * server. The drivers above see only `data` and `close`, so the same Modbus
 * RTU and line-protocol code runs on all of them.
 */
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { IocError } from '../../../contract/index.js';

/** Serial settings of a port. */
export interface SerialOpenOptions {
  path: string;
  baudRate: number;
  parity: 'none' | 'even' | 'odd';
  dataBits: 7 | 8;
  stopBits: 1 | 2;
}

/**
 * An open byte link. Events: `data` (Buffer), `close` (Error | null: an
 * error when the link broke — USB adapter unplugged, socket reset — null on
 * a requested close). `close` is emitted once.
 */
export interface ByteLink extends EventEmitter {
  readonly isOpen: boolean;
  /** Human-readable endpoint for logs: a path or host:port. */
  readonly where: string;
  write(data: Buffer): void;
  close(): Promise<void>;
}

/** Opens a serial port; rejects with GW_ERR_SERIAL_OPEN. Injected so tests can use serialport's mock binding. */
export type SerialPortFactory = (opts: SerialOpenOptions) => Promise<ByteLink>;

/** The minimal surface of a serialport `SerialPortStream` (real or mock binding). */
export interface SerialStreamLike extends EventEmitter {
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  write(data: Buffer): boolean;
  close(cb?: (err: Error | null) => void): void;
}

class StreamLink extends EventEmitter implements ByteLink {
  private closed = false;

  constructor(private readonly port: SerialStreamLike, readonly where: string) {
    super();
    port.on('data', (d: Buffer) => this.emit('data', d));
    // serialport emits `close` with a DisconnectedError when the device vanishes (err.disconnected);
    // a vanished pty may also just end the stream: any close we did not ask for is a broken link.
    port.on('close', (err?: Error | null) => this.finish(err ?? new Error('serial port closed unexpectedly')));
    port.on('error', (err: Error) => {
      if (!port.isOpen) this.finish(err);
    });
  }

  get isOpen(): boolean {
    return !this.closed && this.port.isOpen;
  }

  private finish(err: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', err);
  }

  write(data: Buffer): void {
    if (this.isOpen) this.port.write(data);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.port.isOpen) await new Promise<void>((resolve) => this.port.close(() => resolve()));
    this.emit('close', null);
  }
}

/** Wraps an unopened serialport stream (any binding): opens it and returns the link. */
export async function openSerialStream(port: SerialStreamLike, path: string): Promise<ByteLink> {
  try {
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  } catch (err) {
    throw new IocError('GW_ERR_SERIAL_OPEN', `cannot open serial port ${path}: ${(err as Error).message}`, { cause: err, context: { path } });
  }
  return new StreamLink(port, path);
}

/**
 * Opens a real serial port (serialport's native binding). serialport is
 * imported on the first call: a gateway without serial buses never loads
 * its native binding.
 */
export const openSerialPort: SerialPortFactory = async (opts) => {
  const { SerialPort } = await import('serialport');
  return openSerialStream(new SerialPort({ path: opts.path, baudRate: opts.baudRate, parity: opts.parity, dataBits: opts.dataBits, stopBits: opts.stopBits, autoOpen: false }), opts.path);
};

class SocketLink extends EventEmitter implements ByteLink {
  private closed = false;

  constructor(private readonly socket: net.Socket, readonly where: string) {
    super();
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.emit('data', d));
    let error: Error | null = null;
    socket.on('error', (err) => (error = err));
    socket.on('close', () => this.finish(error ?? new Error('connection closed by the peer')));
  }

  get isOpen(): boolean {
    return !this.closed && !this.socket.destroyed;
  }

  private finish(err: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', err);
  }

  write(data: Buffer): void {
    if (this.isOpen) this.socket.write(data);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.emit('close', null);
  }
}

/** Connects a TCP socket (raw bytes, e.g. RTU frames to a serial device server); rejects with GW_ERR_MODBUS_CONNECT. */
export async function openTcpLink(host: string, port: number, timeoutMs: number): Promise<ByteLink> {
  const socket = net.connect({ host, port });
  const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
  try {
    await once(socket, 'connect');
  } catch (err) {
    socket.destroy();
    throw new IocError('GW_ERR_MODBUS_CONNECT', `cannot connect to ${host}:${port}: ${(err as Error).message}`, { cause: err, context: { endpoint: `${host}:${port}` } });
  } finally {
    clearTimeout(timer);
  }
  return new SocketLink(socket, `${host}:${port}`);
}
