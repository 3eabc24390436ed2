/**
 * A minimal Modbus TCP client that carries any PDU (the flasher needs FC 21,
 * which modbus-serial cannot build). MBAP header per the Modbus Messaging on
 * TCP/IP Implementation Guide v1.0b §3.1.3: transaction id (2 bytes),
 * protocol id 0 (2), length of what follows (2: unit id + PDU), unit id (1).
 * One request at a time; every request has a timeout; a reply with another
 * transaction id (a late answer to a timed-out request) is dropped.
 */
import net from 'node:net';
import { once } from 'node:events';
import { IocError } from '../contract/index.js';

/** Sends a request PDU to a unit and resolves with the response PDU (an exception PDU included). */
export interface ModbusPduChannel {
  request(unitId: number, pdu: Buffer, timeoutMs: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Modbus TCP (MBAP) connection to one endpoint. */
export class MbapClient implements ModbusPduChannel {
  private socket: net.Socket | null = null;
  private rx: Buffer = Buffer.alloc(0);
  private tid = 0;
  private pending: { tid: number; resolve: (pdu: Buffer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: string, private readonly port: number, private readonly connectTimeoutMs = 5000) {}

  private get where(): string {
    return `${this.host}:${this.port}`;
  }

  private async connect(): Promise<net.Socket> {
    if (this.socket && !this.socket.destroyed) return this.socket;
    const socket = net.connect({ host: this.host, port: this.port });
    const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
    try {
      await once(socket, 'connect');
    } catch (err) {
      socket.destroy();
      throw new IocError('FW_ERR_FLASH_TIMEOUT', `cannot connect to the device at ${this.where}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      this.rx = Buffer.alloc(0);
      this.fail(new IocError('FW_ERR_FLASH_TIMEOUT', `connection to the device at ${this.where} was lost`));
    });
    this.socket = socket;
    return socket;
  }

  private fail(err: Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    clearTimeout(p.timer);
    p.reject(err);
  }

  private onData(d: Buffer): void {
    this.rx = this.rx.length === 0 ? d : Buffer.concat([this.rx, d]);
    while (this.rx.length >= 7) {
      const len = this.rx.readUInt16BE(4);
      if (this.rx.readUInt16BE(2) !== 0 || len < 2 || len > 254) {
        // Not MBAP: resynchronising is hopeless on a stream, drop the connection.
        this.socket?.destroy();
        return;
      }
      if (this.rx.length < 6 + len) return;
      const tid = this.rx.readUInt16BE(0);
      const pdu = Buffer.from(this.rx.subarray(7, 6 + len));
      this.rx = this.rx.subarray(6 + len);
      const p = this.pending;
      if (p && p.tid === tid) {
        this.pending = null;
        clearTimeout(p.timer);
        p.resolve(pdu);
      }
    }
  }

  request(unitId: number, pdu: Buffer, timeoutMs: number): Promise<Buffer> {
    const run = async (): Promise<Buffer> => {
      const socket = await this.connect();
      this.tid = (this.tid + 1) & 0xffff;
      const tid = this.tid;
      const adu = Buffer.alloc(7 + pdu.length);
      adu.writeUInt16BE(tid, 0);
      adu.writeUInt16BE(0, 2);
      adu.writeUInt16BE(pdu.length + 1, 4);
      adu[6] = unitId;
      pdu.copy(adu, 7);
      return new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (this.pending?.tid === tid) this.pending = null;
          reject(new IocError('FW_ERR_FLASH_TIMEOUT', `the device at ${this.where} (unit ${unitId}) did not answer function ${pdu[0]} within ${timeoutMs} ms`, { context: { fc: pdu[0], unitId } }));
        }, timeoutMs);
        this.pending = { tid, resolve, reject, timer };
        socket.write(adu);
      });
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    const s = this.socket;
    this.socket = null;
    s?.destroy();
  }
}
