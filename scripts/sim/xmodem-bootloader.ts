/**
 * A simulated field device with a serial XMODEM bootloader (the receiving
 * side of Forsberg's "XMODEM/YMODEM Protocol Reference", 1988).
 *
 * - Application mode: a line protocol — `?\r\n` is answered with
 *   `VER,<version>,<uptime s>\r\n` (what the `sim-xmodem-sensor` profile
 *   reads), `BOOT\r\n` enters the bootloader.
 * - Bootloader: sends `C` (CRC mode; NAK with `crc: false`) every
 *   `handshakeIntervalMs` until the first block, checks block number, its
 *   complement and the CRC-16 (or checksum), ACKs good and duplicate blocks,
 *   NAKs damaged ones, cancels with CAN CAN when the sequence is lost; NAKs
 *   the first EOT and ACKs the second (Forsberg §3.2).
 * - After EOT it "installs": the image must carry the simulated firmware
 *   header (sim-firmware.ts); the device then stores it, reports the new
 *   version, and returns to application mode after `rebootMs`.
 * - Faults: `failAfterBlocks` (CAN CAN mid-flash: a failing flash), `nakBlocks`
 *   (NAK those blocks once), `silentAfterBlocks` (stops answering).
 * - `baudRate`: bytes take their wire time (10 bits per byte) in both
 *   directions, because a pty or the mock binding delivers at once.
 *
 * It is a `SerialEndpoint` for MockSerialHub or attachToSerialPort (serial-adapters.ts).
 */
import { CAN, EOT, NAK, ACK, SOH, STX, CRC_REQUEST, checksum8, crc16Xmodem } from '../../firmware-bridge/index.js';
import { parseSimImage } from './sim-firmware.js';
import type { SerialEndpoint } from './serial-adapters.js';

/** Settings and faults of the simulated bootloader. */
export interface XmodemBootloaderOptions {
  version?: string;
  /** Ask for CRC blocks (`C`); false asks for checksum blocks (NAK). Default true. */
  crc?: boolean;
  /** Start in the bootloader instead of the application. */
  startInBootloader?: boolean;
  handshakeIntervalMs?: number;
  /** Back to the application when no transfer starts within this long. Default 30 s. */
  bootTimeoutMs?: number;
  /** Application mode resumes this long after an install. Default 50 ms. */
  rebootMs?: number;
  /** Simulated line speed (10 bits per byte); absent: no wire time. */
  baudRate?: number;
  failAfterBlocks?: number;
  nakBlocks?: number[];
  silentAfterBlocks?: number;
  nakFirstEot?: boolean;
}

/** What the simulated device went through. */
export interface BootloaderStats {
  handshakes: number;
  /** Transfers that got at least one block. */
  sessions: number;
  blocks: number;
  duplicates: number;
  naks: number;
  cancels: number;
  installs: number;
  badImages: number;
  /** Wall time from the first block to EOT of the last transfer, ms. */
  lastTransferMs: number;
}

type Mode = 'app' | 'boot' | 'receiving' | 'rebooting' | 'silent';

/** The simulated device. */
export class XmodemBootloaderSim implements SerialEndpoint {
  send: (data: Buffer) => void = () => undefined;
  version: string;
  /** The image last installed (really stored). */
  image: Buffer | null = null;
  readonly stats: BootloaderStats = { handshakes: 0, sessions: 0, blocks: 0, duplicates: 0, naks: 0, cancels: 0, installs: 0, badImages: 0, lastTransferMs: 0 };
  private mode: Mode = 'app';
  private rx = Buffer.alloc(0);
  private text = '';
  private expected = 1;
  private received: Buffer[] = [];
  private eots = 0;
  private blocksThisSession = 0;
  private transferStart = 0;
  private readonly naked = new Set<number>();
  private hsTimer: NodeJS.Timeout | null = null;
  private bootTimer: NodeJS.Timeout | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private rxFreeAt = 0;
  private txFreeAt = 0;
  private readonly started = Date.now();

  constructor(private readonly o: XmodemBootloaderOptions = {}) {
    this.version = o.version ?? '1.0.0';
    if (o.startInBootloader) this.enterBootloader();
  }

  /** Current mode, for tests. */
  get state(): Mode {
    return this.mode;
  }

  private wire(bytes: number): number {
    return this.o.baudRate ? (bytes * 10 * 1000) / this.o.baudRate : 0;
  }

  private later(ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  /** Bytes from the gateway; with a baud rate they are handled when their last byte would have arrived. */
  receive(data: Buffer): void {
    if (!this.o.baudRate) {
      this.handle(data);
      return;
    }
    const now = performance.now();
    this.rxFreeAt = Math.max(now, this.rxFreeAt) + this.wire(data.length);
    this.later(this.rxFreeAt - now, () => this.handle(data));
  }

  private out(bytes: number[] | Buffer): void {
    const data = Buffer.from(bytes);
    if (!this.o.baudRate) {
      this.send(data);
      return;
    }
    const now = performance.now();
    this.txFreeAt = Math.max(now, this.txFreeAt) + this.wire(data.length);
    this.later(this.txFreeAt - now, () => this.send(data));
  }

  private handle(data: Buffer): void {
    if (this.mode === 'app') return this.appBytes(data);
    if (this.mode === 'boot' || this.mode === 'receiving') {
      this.rx = this.rx.length ? Buffer.concat([this.rx, data]) : Buffer.from(data);
      this.parse();
    }
  }

  private appBytes(data: Buffer): void {
    this.text += data.toString('latin1');
    let nl: number;
    while ((nl = this.text.indexOf('\n')) >= 0) {
      const line = this.text.slice(0, nl).replace(/\r$/, '').trim();
      this.text = this.text.slice(nl + 1);
      if (line === '?') this.out(Buffer.from(`VER,${this.version},${Math.round((Date.now() - this.started) / 1000)}\r\n`, 'latin1'));
      else if (line === 'BOOT') this.enterBootloader();
    }
    if (this.text.length > 256) this.text = '';
  }

  private enterBootloader(): void {
    this.mode = 'boot';
    this.rx = Buffer.alloc(0);
    this.expected = 1;
    this.received = [];
    this.eots = 0;
    this.blocksThisSession = 0;
    const ask = (): void => {
      if (this.mode !== 'boot') return;
      this.stats.handshakes++;
      this.out([this.o.crc === false ? NAK : CRC_REQUEST]);
    };
    ask();
    this.hsTimer = setInterval(ask, this.o.handshakeIntervalMs ?? 1000);
    this.bootTimer = setTimeout(() => this.leaveBootloader(), this.o.bootTimeoutMs ?? 30_000);
  }

  private leaveBootloader(delayMs = 0): void {
    if (this.hsTimer) clearInterval(this.hsTimer);
    if (this.bootTimer) clearTimeout(this.bootTimer);
    this.hsTimer = this.bootTimer = null;
    this.rx = Buffer.alloc(0);
    if (delayMs > 0) {
      this.mode = 'rebooting';
      this.later(delayMs, () => (this.mode = 'app'));
    } else this.mode = 'app';
  }

  private cancel(): void {
    this.stats.cancels++;
    this.out([CAN, CAN]);
    this.leaveBootloader();
  }

  private parse(): void {
    const crc = this.o.crc !== false;
    while (this.rx.length > 0 && (this.mode === 'boot' || this.mode === 'receiving')) {
      const b = this.rx[0]!;
      if (b === EOT) {
        this.rx = this.rx.subarray(1);
        this.onEot();
        continue;
      }
      if (b === CAN) {
        if (this.rx.length < 2) return;
        this.rx = this.rx.subarray(this.rx[1] === CAN ? 2 : 1);
        if (this.rx.length === 0) this.leaveBootloader();
        continue;
      }
      if (b !== SOH && b !== STX) {
        this.rx = this.rx.subarray(1); // noise
        continue;
      }
      const size = b === SOH ? 128 : 1024;
      const need = 3 + size + (crc ? 2 : 1);
      if (this.rx.length < need) return;
      const frame = this.rx.subarray(0, need);
      this.rx = this.rx.subarray(need);
      this.onBlock(frame, size, crc);
    }
  }

  private onBlock(frame: Buffer, size: number, crc: boolean): void {
    if (this.mode === 'boot') {
      this.mode = 'receiving';
      this.stats.sessions++;
      this.transferStart = performance.now();
      if (this.hsTimer) clearInterval(this.hsTimer);
      this.hsTimer = null;
    }
    const n = frame[1]!;
    const data = frame.subarray(3, 3 + size);
    const ok = frame[2] === 0xff - n && (crc ? frame.readUInt16BE(3 + size) === crc16Xmodem(data) : frame[3 + size] === checksum8(data));
    const seqNo = this.blocksThisSession + 1;
    if (this.o.silentAfterBlocks !== undefined && this.blocksThisSession >= this.o.silentAfterBlocks) {
      this.mode = 'silent';
      return;
    }
    if (!ok || (this.o.nakBlocks?.includes(seqNo) && !this.naked.has(seqNo))) {
      this.naked.add(seqNo);
      this.stats.naks++;
      this.out([NAK]);
      return;
    }
    if (n === ((this.expected - 1) & 0xff)) {
      this.stats.duplicates++;
      this.out([ACK]);
      return;
    }
    if (n !== (this.expected & 0xff)) {
      this.cancel();
      return;
    }
    if (this.o.failAfterBlocks !== undefined && this.blocksThisSession >= this.o.failAfterBlocks) {
      // The flash write failed: a real bootloader cancels the transfer.
      this.cancel();
      return;
    }
    this.received.push(Buffer.from(data));
    this.blocksThisSession++;
    this.stats.blocks++;
    this.expected = (this.expected + 1) & 0xff;
    this.out([ACK]);
  }

  private onEot(): void {
    if (this.mode !== 'receiving') return;
    this.eots++;
    if (this.o.nakFirstEot !== false && this.eots === 1) {
      this.out([NAK]);
      return;
    }
    this.out([ACK]);
    this.stats.lastTransferMs = performance.now() - this.transferStart;
    const parsed = parseSimImage(Buffer.concat(this.received));
    if (parsed) {
      this.image = Buffer.from(parsed.image);
      this.version = parsed.version;
      this.stats.installs++;
    } else this.stats.badImages++;
    this.leaveBootloader(this.o.rebootMs ?? 50);
  }

  /** Stops every timer. */
  stop(): void {
    if (this.hsTimer) clearInterval(this.hsTimer);
    if (this.bootTimer) clearTimeout(this.bootTimer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
