/**
 * A Modbus RTU line with simulated slaves (Modbus over Serial Line v1.02),
 * independent of any transport: bytes from the master go in through
 * `receive()`, replies come out through the `send` function. Adapters attach
 * it to a pseudo-terminal (socat), to serialport's mock binding or to a TCP
 * socket (RTU over TCP). Written apart from the gateway's framing code so the
 * tests check one against the other.
 *
 * Realistic timing (optional, `baudRate`): a request is processed only after
 * its bytes would have crossed the wire, the reply starts after the 3.5
 * character silence (§2.5.1.1) plus `turnaroundMs`, and arrives when its own
 * bytes would have. Requests that start before 3.5 characters of silence
 * after the previous reply are counted in `silenceViolations` (a real slave
 * would merge or drop them).
 *
 * Faults on demand: silence (a unit or the whole line), and one-shot or
 * persistent reply faults — bad CRC, short frame, reply from another unit id,
 * leading noise, exception responses, garbage bursts.
 *
 * Serial settings (for commissioning, `scan --auto`): a line may be given the
 * setting its slaves use (`setting`, baud rate and parity). A pty or a mock
 * port does not enforce baud rate or parity, so the adapter tells the line
 * the setting the master opened its port with ({@link RtuSlaveLine.masterSetting};
 * serialport's mock binding knows it, as a UART does). While the two differ
 * the slaves hear nothing they can decode and stay silent, as a real slave
 * does with framing and parity errors. Wiring faults ({@link RtuSlaveLine.wiring}):
 * `dead` (no power, broken pair: no byte ever comes back) and `swapped` (A
 * and B swapped: the bytes the master receives are inverted, so at every
 * setting something arrives and nothing passes its CRC).
 */
import type { SimDevice } from './field-devices.js';

/** CRC-16/MODBUS, low byte first on the wire. */
export function crc16Modbus(buf: Uint8Array, end = buf.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) {
    crc ^= buf[i] as number;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/** Appends the CRC to a frame body. */
export function withCrc(body: number[] | Buffer): Buffer {
  const b = Buffer.alloc(body.length + 2);
  Buffer.from(body).copy(b);
  b.writeUInt16LE(crc16Modbus(b, body.length), body.length);
  return b;
}

/** Reply faults a test can inject. */
export type RtuFault =
  | { kind: 'crc' }
  | { kind: 'short'; bytes?: number }
  | { kind: 'wrong-unit'; unit: number }
  | { kind: 'noise-prefix'; bytes?: Buffer }
  | { kind: 'exception'; code: number }
  | { kind: 'garbage'; bytes?: Buffer };

/** Baud rate and parity of a serial line. */
export interface SerialSetting {
  baudRate: number;
  parity: 'none' | 'even' | 'odd';
}

/** Wiring of the simulated line: as it should be, dead, or with A and B swapped. */
export type RtuWiring = 'ok' | 'dead' | 'swapped';

/** Options of {@link RtuSlaveLine}. */
export interface RtuSlaveOptions {
  /** The setting the slaves use; absent = they answer at any setting the master opens with. */
  setting?: SerialSetting;
  /** Emulate wire timing at this baud rate (11 bits per character); absent = answer at once. */
  baudRate?: number;
  /** Device processing time before replying, on top of the 3.5-character silence (ms). */
  turnaroundMs?: number;
}

/** A multidrop RTU line with several slaves. */
export class RtuSlaveLine {
  private rx: Buffer = Buffer.alloc(0);
  private silentUnits = new Set<number>();
  private allSilent = false;
  private readonly persistent = new Map<number, RtuFault>();
  private readonly oneShot = new Map<number, RtuFault[]>();
  private lastReplyEnd = 0;
  private busyUntil = 0;
  private timers = new Set<NodeJS.Timeout>();
  private immediates = new Set<NodeJS.Immediate>();
  /** Requests answered, per unit. */
  readonly answered = new Map<number, number>();
  /** Requests seen with bad CRC (discarded, as a real slave does). */
  crcErrors = 0;
  /** Requests that started less than 3.5 characters after the previous reply. */
  silenceViolations = 0;
  /** Bytes sent by the slaves (replies, garbage). */
  bytesOut = 0;
  send: (data: Buffer) => void = () => undefined;
  /** The setting the master opened its port with (set by the adapter); null = unknown, taken as matching. */
  masterSetting: SerialSetting | null = null;
  /** Wiring fault (see the module comment). */
  wiring: RtuWiring = 'ok';
  /** Requests that arrived at a setting other than the slaves' (not understood, not answered). */
  settingMismatches = 0;

  constructor(readonly devices: Map<number, SimDevice>, private readonly opts: RtuSlaveOptions = {}) {}

  private get charMs(): number {
    return this.opts.baudRate ? 11_000 / this.opts.baudRate : 0;
  }

  private get silenceMs(): number {
    const b = this.opts.baudRate;
    if (!b) return 0;
    return b > 19200 ? 1.75 : 3.5 * this.charMs;
  }

  /** Stop (or resume) answering: one unit, or the whole line. */
  silent(on: boolean, unit?: number): void {
    if (unit === undefined) this.allSilent = on;
    else if (on) this.silentUnits.add(unit);
    else this.silentUnits.delete(unit);
  }

  /** Applies `fault` to the next reply of `unit` (or every reply while `persistent`). */
  inject(unit: number, fault: RtuFault, persistent = false): void {
    if (persistent) this.persistent.set(unit, fault);
    else this.oneShot.set(unit, [...(this.oneShot.get(unit) ?? []), fault]);
  }

  /** Removes persistent faults (all units, or one). */
  clearFaults(unit?: number): void {
    if (unit === undefined) this.persistent.clear();
    else this.persistent.delete(unit);
    if (unit === undefined) this.oneShot.clear();
    else this.oneShot.delete(unit);
  }

  /** Sends unsolicited bytes on the line now (noise between transactions). */
  garbage(bytes: Buffer = Buffer.from([0x00, 0xff, 0x13, 0x37, 0x42])): void {
    this.bytesOut += bytes.length;
    this.send(bytes);
  }

  /** Cancels pending replies. */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const i of this.immediates) clearImmediate(i);
    this.immediates.clear();
  }

  /** Bytes from the master. */
  receive(data: Buffer): void {
    if (this.wiring === 'dead') return;
    const want = this.opts.setting;
    const got = this.masterSetting;
    if (want && got && (want.baudRate !== got.baudRate || want.parity !== got.parity)) {
      // Framing and parity errors at the slave: nothing decodes, nothing is answered.
      this.settingMismatches++;
      if (this.wiring === 'swapped') this.garbage(Buffer.from(data.map((b) => ~b & 0xff)));
      return;
    }
    const now = performance.now();
    if (this.rx.length === 0 && this.lastReplyEnd > 0 && now < this.lastReplyEnd + this.silenceMs - 0.05) this.silenceViolations++;
    this.rx = this.rx.length === 0 ? Buffer.from(data) : Buffer.concat([this.rx, data]);
    for (;;) {
      const len = requestLength(this.rx);
      if (len === 0 || this.rx.length < len) return;
      const frame = this.rx.subarray(0, len);
      this.rx = this.rx.subarray(len);
      if (crc16Modbus(frame, len - 2) !== frame.readUInt16LE(len - 2)) {
        this.crcErrors++;
        this.rx = Buffer.alloc(0);
        return;
      }
      this.handle(Buffer.from(frame), now);
    }
  }

  private handle(req: Buffer, arrivedAt: number): void {
    const unit = req[0] as number;
    if (unit === 0 || this.allSilent || this.silentUnits.has(unit)) return; // broadcast or silent: no reply
    const device = this.devices.get(unit);
    if (!device) return; // nobody at this address
    const fault = this.oneShot.get(unit)?.shift() ?? this.persistent.get(unit);
    let reply = fault?.kind === 'exception' ? withCrc([unit, (req[1] as number) | 0x80, fault.code]) : this.execute(device, req);
    this.answered.set(unit, (this.answered.get(unit) ?? 0) + 1);
    if (fault) reply = applyFault(reply, fault);
    // Wire timing: the request arrived in one chunk from a pty/mock; it would have taken len × char.
    const start = Math.max(arrivedAt + req.length * this.charMs, this.busyUntil) + this.silenceMs + (this.opts.turnaroundMs ?? 0);
    const end = start + reply.length * this.charMs;
    this.busyUntil = end;
    const deliver = (): void => {
      this.lastReplyEnd = performance.now();
      this.bytesOut += reply.length;
      // A and B swapped: every bit arrives inverted.
      this.send(this.wiring === 'swapped' ? Buffer.from(reply.map((b) => ~b & 0xff)) : reply);
    };
    if (!this.opts.baudRate && !this.opts.turnaroundMs) deliver();
    else this.at(end, deliver);
  }

  /**
   * Runs `fn` at `deadline` (performance.now() time) as precisely as the event
   * loop allows: a timer to just before, then setImmediate turns, the way a
   * UART would deliver the last byte on time.
   */
  private at(deadline: number, fn: () => void): void {
    const left = deadline - performance.now();
    if (left <= 0) return fn();
    if (left > 2) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.at(deadline, fn);
      }, left - 1.5);
      this.timers.add(t);
    } else {
      const i = setImmediate(() => {
        this.immediates.delete(i);
        this.at(deadline, fn);
      });
      this.immediates.add(i);
    }
  }

  /** Executes FC 1–6, 15, 16 against the device's register bank; other functions get exception 1. */
  private execute(d: SimDevice, req: Buffer): Buffer {
    const unit = req[0] as number;
    const fc = req[1] as number;
    const addr = req.readUInt16BE(2);
    const qty = req.readUInt16BE(4);
    const bank = d.bank;
    const ex = (code: number): Buffer => withCrc([unit, fc | 0x80, code]);
    switch (fc) {
      case 1:
      case 2: {
        if (qty < 1 || qty > 2000) return ex(3);
        const table = fc === 1 ? 'coil' : 'discrete';
        const bytes = Buffer.alloc(Math.ceil(qty / 8));
        for (let i = 0; i < qty; i++) if (bank.bit(table, addr + i)) bytes[i >> 3] = (bytes[i >> 3] as number) | (1 << (i & 7));
        return withCrc([unit, fc, bytes.length, ...bytes]);
      }
      case 3:
      case 4: {
        if (qty < 1 || qty > 125) return ex(3);
        const table = fc === 3 ? 'holding' : 'input';
        (d as { onRead?: (t: string, a: number, c: number) => void }).onRead?.(table, addr, qty);
        const body = [unit, fc, qty * 2];
        for (let i = 0; i < qty; i++) {
          const w = bank.word(table, addr + i);
          body.push(w >> 8, w & 0xff);
        }
        return withCrc(body);
      }
      case 5:
        if (qty !== 0xff00 && qty !== 0) return ex(3);
        bank.coil.set(addr, qty === 0xff00);
        return withCrc([...req.subarray(0, 6)]);
      case 6:
        bank.holding.set(addr, qty);
        return withCrc([...req.subarray(0, 6)]);
      case 15:
        for (let i = 0; i < qty; i++) bank.coil.set(addr + i, (((req[7 + (i >> 3)] as number) >> (i & 7)) & 1) === 1);
        return withCrc([...req.subarray(0, 6)]);
      case 16:
        for (let i = 0; i < qty; i++) bank.holding.set(addr + i, req.readUInt16BE(7 + 2 * i));
        return withCrc([...req.subarray(0, 6)]);
      default:
        return ex(1);
    }
  }
}

/** Length of the request at the start of `buf` (0 = not yet known). */
function requestLength(buf: Buffer): number {
  if (buf.length < 2) return 0;
  const fc = buf[1] as number;
  if (fc === 15 || fc === 16) return buf.length < 7 ? 0 : 9 + (buf[6] as number);
  return 8;
}

function applyFault(reply: Buffer, fault: RtuFault): Buffer {
  switch (fault.kind) {
    case 'crc': {
      const b = Buffer.from(reply);
      b[b.length - 1] = (b[b.length - 1] as number) ^ 0x5a;
      return b;
    }
    case 'short':
      return reply.subarray(0, fault.bytes ?? Math.max(3, reply.length - 4));
    case 'wrong-unit':
      return withCrc([fault.unit, ...reply.subarray(1, reply.length - 2)]);
    case 'noise-prefix':
      return Buffer.concat([fault.bytes ?? Buffer.from([0x00]), reply]);
    case 'garbage':
      return fault.bytes ?? Buffer.from('\x7f\x7f garbage \xff\xfe', 'latin1');
    case 'exception':
      return reply;
  }
}
