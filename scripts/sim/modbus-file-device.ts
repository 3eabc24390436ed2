/**
 * A simulated Modbus TCP field device that takes firmware as FC 21 Write
 * File Record (Modbus Application Protocol v1.1b3 §6.15) — modbus-serial's
 * ServerTCP has no FC 21, so this is a small MBAP server of its own
 * (Modbus Messaging on TCP/IP Implementation Guide v1.0b §3.1.3) with
 * FC 3/4 (§6.3, §6.4), FC 6 (§6.6), FC 16 (§6.12) and FC 21.
 *
 * Register map (the `sim-fc21-device` profile):
 * - input 0: `level` (uint16, changes every read), input 256..271:
 *   `fw_version` (string, 16 registers), input 272..273: `fw_code` (uint32);
 * - holding 300..301: `fw_size` (uint32), 302: `fw_commit` (write 1 to
 *   install), 303: `fw_status` (0 idle, 1 installing, 2 installed, 3 bad image).
 *
 * Files 1..n hold 10 000 records (registers) each. On commit the device
 * joins the files into `fw_size` bytes, checks the simulated firmware
 * header (sim-firmware.ts), and after `installMs` reports the new version.
 * Faults: `failAtRequest` (exception 4 on that FC 21 request),
 * `dropAtRequest` (closes the connection on it), `rejectImage`.
 */
import net from 'node:net';
import { once } from 'node:events';
import { parseWriteFileRecord, RECORDS_PER_FILE } from '../../firmware-bridge/index.js';
import { parseSimImage } from './sim-firmware.js';

/** Settings and faults. */
export interface ModbusFileDeviceOptions {
  version?: string;
  versionCode?: number;
  unitId?: number;
  installMs?: number;
  failAtRequest?: number;
  dropAtRequest?: number;
  rejectImage?: boolean;
}

/** Counters. */
export interface ModbusFileDeviceStats {
  connections: number;
  fc21Requests: number;
  recordsWritten: number;
  commits: number;
  installs: number;
  badImages: number;
  exceptions: number;
}

const VERSION_ADDR = 256;
const CODE_ADDR = 272;
const SIZE_ADDR = 300;
const COMMIT_ADDR = 302;
const STATUS_ADDR = 303;

/** The simulated device and its TCP server. */
export class ModbusFileDeviceSim {
  readonly stats: ModbusFileDeviceStats = { connections: 0, fc21Requests: 0, recordsWritten: 0, commits: 0, installs: 0, badImages: 0, exceptions: 0 };
  version: string;
  versionCode: number;
  /** The image last installed (really stored). */
  image: Buffer | null = null;
  readonly files = new Map<number, Buffer>();
  private readonly holding = new Map<number, number>();
  private level = 0;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly o: ModbusFileDeviceOptions = {}) {
    this.version = o.version ?? '1.0.0';
    this.versionCode = o.versionCode ?? 0x0100;
  }

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  async start(port = 0): Promise<void> {
    this.server = net.createServer((s) => this.onSocket(s));
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    const srv = this.server;
    this.server = null;
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
  }

  /** Closes every open connection (a device reboot, a cable pulled). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  private onSocket(s: net.Socket): void {
    this.stats.connections++;
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    let rx = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      rx = Buffer.concat([rx, d]);
      while (rx.length >= 7) {
        const len = rx.readUInt16BE(4);
        if (rx.length < 6 + len) return;
        const tid = rx.readUInt16BE(0);
        const unit = rx[6]!;
        const pdu = rx.subarray(7, 6 + len);
        rx = rx.subarray(6 + len);
        if (this.o.unitId !== undefined && unit !== this.o.unitId) continue; // not for us: silence
        const res = this.handle(Buffer.from(pdu));
        if (res === 'drop') {
          s.destroy();
          return;
        }
        const adu = Buffer.alloc(7 + res.length);
        adu.writeUInt16BE(tid, 0);
        adu.writeUInt16BE(0, 2);
        adu.writeUInt16BE(res.length + 1, 4);
        adu[6] = unit;
        res.copy(adu, 7);
        s.write(adu);
      }
    });
  }

  private exception(fc: number, code: number): Buffer {
    this.stats.exceptions++;
    return Buffer.from([fc | 0x80, code]);
  }

  private inputRegister(a: number): number {
    if (a === 0) return (this.level = (this.level + 7) & 0xffff);
    if (a >= VERSION_ADDR && a < VERSION_ADDR + 16) {
      const i = (a - VERSION_ADDR) * 2;
      const v = Buffer.alloc(32);
      v.write(this.version.slice(0, 32), 'latin1');
      return v.readUInt16BE(i);
    }
    if (a === CODE_ADDR) return (this.versionCode >>> 16) & 0xffff;
    if (a === CODE_ADDR + 1) return this.versionCode & 0xffff;
    return 0;
  }

  private handle(pdu: Buffer): Buffer | 'drop' {
    const fc = pdu[0]!;
    switch (fc) {
      case 3:
      case 4: {
        const addr = pdu.readUInt16BE(1);
        const count = pdu.readUInt16BE(3);
        if (count < 1 || count > 125) return this.exception(fc, 3);
        const res = Buffer.alloc(2 + count * 2);
        res[0] = fc;
        res[1] = count * 2;
        for (let i = 0; i < count; i++) res.writeUInt16BE(fc === 4 ? this.inputRegister(addr + i) : this.holding.get(addr + i) ?? 0, 2 + i * 2);
        return res;
      }
      case 6: {
        this.writeHolding(pdu.readUInt16BE(1), pdu.readUInt16BE(3));
        return pdu;
      }
      case 16: {
        const addr = pdu.readUInt16BE(1);
        const count = pdu.readUInt16BE(3);
        for (let i = 0; i < count; i++) this.writeHolding(addr + i, pdu.readUInt16BE(6 + i * 2));
        return pdu.subarray(0, 5);
      }
      case 21:
        return this.writeFileRecord(pdu);
      default:
        return this.exception(fc, 1);
    }
  }

  private writeFileRecord(pdu: Buffer): Buffer | 'drop' {
    this.stats.fc21Requests++;
    const n = this.stats.fc21Requests;
    if (this.o.dropAtRequest === n) return 'drop';
    if (this.o.failAtRequest === n) return this.exception(21, 4);
    let subs;
    try {
      subs = parseWriteFileRecord(pdu);
    } catch {
      return this.exception(21, 3);
    }
    for (const s of subs) {
      if (s.file < 1 || s.record + s.data.length / 2 > RECORDS_PER_FILE) return this.exception(21, 2);
      let f = this.files.get(s.file);
      if (!f) this.files.set(s.file, (f = Buffer.alloc(RECORDS_PER_FILE * 2)));
      s.data.copy(f, s.record * 2);
      this.stats.recordsWritten += s.data.length / 2;
    }
    return pdu; // the normal response echoes the request (§6.15)
  }

  private writeHolding(addr: number, value: number): void {
    this.holding.set(addr, value);
    if (addr === COMMIT_ADDR && value === 1) this.commit();
  }

  private commit(): void {
    this.stats.commits++;
    this.holding.set(STATUS_ADDR, 1);
    const size = ((this.holding.get(SIZE_ADDR) ?? 0) << 16) | (this.holding.get(SIZE_ADDR + 1) ?? 0);
    const files = [...this.files.keys()].sort((a, b) => a - b).map((k) => this.files.get(k)!);
    const all = Buffer.concat(files);
    const parsed = this.o.rejectImage ? null : parseSimImage(size > 0 ? all.subarray(0, size) : all);
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!parsed) {
        this.stats.badImages++;
        this.holding.set(STATUS_ADDR, 3);
        return;
      }
      this.image = Buffer.from(parsed.image);
      this.version = parsed.version;
      const m = /^(\d+)\.(\d+)/.exec(parsed.version);
      if (m) this.versionCode = (Number(m[1]) << 8) | Number(m[2]);
      this.stats.installs++;
      this.holding.set(STATUS_ADDR, 2);
      this.files.clear();
    }, this.o.installMs ?? 50);
    this.timers.add(t);
  }
}
