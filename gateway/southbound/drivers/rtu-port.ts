/**
 * Modbus RTU framing on a byte link, as a modbus-serial "port" (the object
 * `new ModbusRTU(port)` drives: open/close/write/isOpen, `data` events with
 * whole frames). modbus-serial builds requests, checks CRC, unit and function
 * code and parses replies; this class decides where a reply starts and ends
 * and, when it cannot find one, says precisely why.
 *
 * RTU frames are delimited by silence (Modbus over Serial Line v1.02
 * §2.5.1.1), which a USB adapter or a TCP converter blurs, so a reply is
 * recognised by content: the first span that starts with the addressed unit,
 * has the length its function code implies and a valid CRC (§2.5.1.2, §6.2.2).
 * Leading noise (an RS-485 transceiver turning around often adds a byte) is
 * skipped and counted. When the bytes received cannot hold such a frame:
 * - a valid frame from another unit → GW_ERR_MODBUS_WRONG_UNIT;
 * - at least a frame's worth of bytes, settled → GW_ERR_MODBUS_CRC;
 * - fewer bytes when the transaction times out → GW_ERR_MODBUS_FRAME (short frame);
 * - nothing → the transport's GW_ERR_MODBUS_TIMEOUT.
 * Unlike modbus-serial's RTUBufferedPort/TelnetPort, the receive buffer is
 * cleared before every request, so a late reply to an earlier request is
 * never taken for the answer to the next one.
 */
import { EventEmitter } from 'node:events';
import { IocError } from '../../../contract/index.js';
import type { ByteLink } from './byte-link.js';

/** CRC-16/MODBUS (Modbus over Serial Line v1.02 §6.2.2): poly 0xA001 reflected, init 0xFFFF; sent low byte first. */
export function crc16(bytes: Uint8Array, end = bytes.length, start = 0): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) {
    crc ^= bytes[i] as number;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/**
 * Length of the RTU frame at `i` implied by its function code, or 0 if not
 * yet known (too few bytes) or not a function this gateway uses.
 * Exception replies are 5 bytes (§7 of the Application Protocol).
 */
export function frameLengthAt(buf: Uint8Array, i: number): number {
  const fc = buf[i + 1];
  if (fc === undefined) return 0;
  if (fc & 0x80) return 5;
  switch (fc) {
    case 1: case 2: case 3: case 4: {
      const n = buf[i + 2];
      return n === undefined ? 0 : 3 + n + 2;
    }
    case 5: case 6: case 15: case 16:
      return 8;
    default:
      return 0;
  }
}

/** Reply length to a request frame (for FC 1–6, 15, 16). */
export function expectedReplyLength(request: Uint8Array): number {
  const fc = request[1] as number;
  const qty = ((request[4] as number) << 8) | (request[5] as number);
  if (fc === 1 || fc === 2) return 5 + Math.ceil(qty / 8);
  if (fc === 3 || fc === 4) return 5 + 2 * qty;
  return 8;
}

/** What the port counted on its line. */
export interface RtuLineStats {
  frames: number;
  crcErrors: number;
  shortFrames: number;
  wrongUnit: number;
  /** Bytes outside any reply (leading noise, garbage between transactions). */
  noiseBytes: number;
}

const MAX_BUFFER = 512;

/** A modbus-serial port over one byte link. */
export class RtuPort extends EventEmitter {
  private rx: Buffer = Buffer.alloc(0);
  private unit = -1;
  private expected = 0;
  private pending = false;
  private fault: IocError | null = null;
  private settleTimer: NodeJS.Timeout | null = null;
  /** performance.now() of the last byte received. */
  lastRxAt = 0;
  /** Set by modbus-serial's open(). */
  _transactionIdRead = 1;
  _transactionIdWrite = 1;

  constructor(private readonly link: ByteLink, private readonly stats: RtuLineStats, private readonly settleMs: number, private readonly context: Record<string, unknown>) {
    super();
    link.on('data', (d: Buffer) => this.onBytes(d));
    link.on('close', (err: Error | null) => {
      if (this.pending) {
        this.fail(new IocError('GW_ERR_SERIAL_PORT_GONE', `line ${link.where} closed during a transaction: ${err?.message ?? 'closed'}`, { cause: err, context: this.context }));
      }
      this.emit('close');
    });
  }

  get isOpen(): boolean {
    return this.link.isOpen;
  }

  open(cb: (err?: Error | null) => void): void {
    cb(this.link.isOpen ? null : new Error(`link ${this.link.where} is closed`));
  }

  close(cb?: () => void): void {
    this.clearSettle();
    void this.link.close().then(() => cb?.());
  }

  /** Sends a request frame (modbus-serial built it, CRC included) and arms reply detection. */
  write(frame: Buffer): void {
    this.clearSettle();
    if (this.rx.length > 0) this.stats.noiseBytes += this.rx.length;
    this.rx = Buffer.alloc(0);
    this.fault = null;
    this.unit = frame[0] as number;
    this.expected = expectedReplyLength(frame);
    this.pending = true;
    this.link.write(frame);
  }

  /** The precise error of the last failed transaction, if this port decided it (then cleared). */
  takeFault(): IocError | null {
    const f = this.fault;
    this.fault = null;
    return f;
  }

  /**
   * After a timeout: what the bytes received say (wrong unit, short frame,
   * CRC), or null when nothing came. Ends the transaction.
   */
  classifyTimeout(): IocError | null {
    this.clearSettle();
    if (!this.pending) return null;
    this.pending = false;
    const e = this.rx.length === 0 ? null : this.classify();
    this.stats.noiseBytes += this.rx.length;
    this.rx = Buffer.alloc(0);
    return e;
  }

  /** Ends any transaction and drops received bytes (before the next request after a failure). */
  flush(): void {
    this.clearSettle();
    this.pending = false;
    this.stats.noiseBytes += this.rx.length;
    this.rx = Buffer.alloc(0);
  }

  private onBytes(d: Buffer): void {
    this.lastRxAt = performance.now();
    if (!this.pending) {
      this.stats.noiseBytes += d.length;
      return;
    }
    this.rx = this.rx.length === 0 ? d : Buffer.concat([this.rx, d]);
    if (this.rx.length > MAX_BUFFER) {
      this.stats.noiseBytes += this.rx.length - MAX_BUFFER;
      this.rx = this.rx.subarray(this.rx.length - MAX_BUFFER);
    }
    const at = this.findReply();
    if (at) {
      this.clearSettle();
      this.stats.noiseBytes += at.start;
      this.stats.frames++;
      this.pending = false;
      const frame = this.rx.subarray(at.start, at.start + at.length);
      this.rx = Buffer.alloc(0);
      this.emit('data', frame);
      return;
    }
    // A frame's worth of bytes and no valid reply: wait for the line to settle, then give up.
    if (this.rx.length >= Math.min(this.expected, 5)) {
      this.clearSettle();
      this.settleTimer = setTimeout(() => {
        this.settleTimer = null;
        if (!this.pending) return;
        this.pending = false;
        this.fail(this.classify());
      }, this.settleMs);
    }
  }

  /** First span from our unit with a consistent length and a valid CRC. */
  private findReply(): { start: number; length: number } | null {
    const rx = this.rx;
    for (let i = 0; i + 5 <= rx.length; i++) {
      if (rx[i] !== this.unit) continue;
      const len = frameLengthAt(rx, i);
      if (len === 0 || i + len > rx.length) continue;
      const crc = (rx[i + len - 2] as number) | ((rx[i + len - 1] as number) << 8);
      if (crc16(rx, i + len - 2, i) === crc) return { start: i, length: len };
    }
    return null;
  }

  /** Why the bytes received are not a reply. */
  private classify(): IocError {
    const rx = this.rx;
    const hex = rx.subarray(0, 32).toString('hex').replace(/(..)/g, '$1 ').trim();
    for (let i = 0; i + 5 <= rx.length; i++) {
      const len = frameLengthAt(rx, i);
      if (len === 0 || i + len > rx.length || rx[i] === this.unit) continue;
      const crc = (rx[i + len - 2] as number) | ((rx[i + len - 1] as number) << 8);
      if (crc16(rx, i + len - 2, i) === crc) {
        this.stats.wrongUnit++;
        return new IocError('GW_ERR_MODBUS_WRONG_UNIT', `asked unit ${this.unit}, a valid reply came from unit ${rx[i]} (two devices with one address, or a converter echoing another bus?)`, {
          context: { ...this.context, unitId: this.unit, replyUnit: rx[i] },
        });
      }
    }
    if (rx.length < this.expected && rx.length < 5) {
      this.stats.shortFrames++;
      return new IocError('GW_ERR_MODBUS_FRAME', `short frame from unit ${this.unit}: ${rx.length} of ${this.expected} bytes (${hex})`, { context: { ...this.context, unitId: this.unit, bytes: rx.length } });
    }
    if (rx.length < this.expected && rx[0] === this.unit && !((rx[1] as number) & 0x80)) {
      this.stats.shortFrames++;
      return new IocError('GW_ERR_MODBUS_FRAME', `short frame from unit ${this.unit}: ${rx.length} of ${this.expected} bytes (${hex})`, { context: { ...this.context, unitId: this.unit, bytes: rx.length } });
    }
    this.stats.crcErrors++;
    return new IocError('GW_ERR_MODBUS_CRC', `reply from unit ${this.unit} failed its CRC check (${rx.length} bytes: ${hex}); check baud rate, parity, wiring and termination`, {
      context: { ...this.context, unitId: this.unit, bytes: rx.length },
    });
  }

  /** Fails the pending modbus-serial transaction now: a too-short frame makes it call back at once. */
  private fail(err: IocError): void {
    this.fault = err;
    this.stats.noiseBytes += this.rx.length;
    this.rx = Buffer.alloc(0);
    this.pending = false;
    // modbus-serial rejects frames under 5 bytes ("Data length error") without parsing them.
    this.emit('data', Buffer.alloc(0));
  }

  private clearSettle(): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = null;
  }
}
