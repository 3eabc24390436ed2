/**
 * A size guard in front of Aedes. MQTT 3.1.1 §2.2.3 lets a packet declare a
 * remaining length of up to 268,435,455 bytes and Aedes buffers a packet
 * whole before it looks at it, so one hostile client could make the hub hold
 * 256 MB — before it has even authenticated. This duplex sits between the
 * socket and Aedes, follows packet boundaries (fixed header + remaining
 * length, never the payload) and closes the connection as soon as a packet
 * announces more than the limit: `maxConnectBytes` for the first packet
 * (CONNECT, before authentication) and `maxPacketBytes` after it.
 */
import { Duplex } from 'node:stream';
import type net from 'node:net';

/** Limits enforced by {@link PacketGuard}, in bytes of remaining length. */
export interface PacketLimits {
  maxPacketBytes: number;
  maxConnectBytes: number;
}

/** Default limits: 2 MiB per packet (a full telemetry batch of 10,000 readings fits), 64 KiB for CONNECT. */
export const DEFAULT_PACKET_LIMITS: PacketLimits = { maxPacketBytes: 2 * 1024 * 1024, maxConnectBytes: 64 * 1024 };

/** Why a guarded connection was closed. */
export interface OversizeInfo {
  remoteAddress: string | undefined;
  declared: number;
  limit: number;
  first: boolean;
}

/** Optional settings of a {@link PacketGuard}. */
export interface GuardOptions {
  /** The client's address when a proxy told it (PROXY protocol); default: the socket's. */
  remoteAddress?: string;
  /** Bytes already read from the socket (after a PROXY header), fed first. */
  head?: Buffer;
  /** High-water mark of the write side, bytes. */
  writableHighWaterMark?: number;
}

/** Wraps one socket; give the guard, not the socket, to `aedes.handle`. */
export class PacketGuard extends Duplex {
  /** Source address of the socket (for per-address rate limiting). */
  readonly remoteAddress: string | undefined;
  private phase: 0 | 1 | 2 = 0; // 0: fixed header byte, 1: remaining length, 2: body
  private remaining = 0;
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private first = true;
  /** The socket is corked until the check phase ({@link holdUntilCheck}). */
  private holding = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly limits: PacketLimits,
    private readonly onOversize: (info: OversizeInfo) => void = () => undefined,
    opts: GuardOptions = {},
  ) {
    // The write side buffers past the hub's outgoing bound (broker-limits.ts), so Aedes never
    // waits for a 'drain' that a client which does not read would never give: the broker
    // disconnects such a client at the bound instead (Broker, authorizeForward).
    super({ allowHalfOpen: false, ...(opts.writableHighWaterMark ? { writableHighWaterMark: opts.writableHighWaterMark } : {}) });
    this.remoteAddress = opts.remoteAddress ?? socket.remoteAddress;
    if (opts.head && opts.head.length > 0 && this.inspect(opts.head)) this.push(opts.head);
    socket.on('data', (chunk: Buffer) => {
      if (!this.inspect(chunk)) return;
      if (!this.push(chunk)) socket.pause();
    });
    let ended = false;
    socket.on('end', () => {
      ended = true;
      this.push(null);
    });
    socket.on('error', (err) => this.destroy(err));
    // After a clean end, let Aedes read what is buffered (a DISCONNECT must still count).
    socket.on('close', () => {
      if (!ended) this.destroy();
    });
  }

  /** Follows packet boundaries through `chunk`; false (and the connection closed) when a packet is too large. */
  private inspect(chunk: Buffer): boolean {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.phase === 2) {
        const take = Math.min(this.remaining, n - i);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.phase = 0;
        continue;
      }
      if (this.phase === 0) {
        i++;
        this.phase = 1;
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      // MQTT 3.1.1 §2.2.3: variable length encoding, at most four bytes.
      const b = chunk[i++]!;
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      if (b & 0x80) {
        if (this.lengthBytes === 4) return this.reject(Number.POSITIVE_INFINITY);
        continue;
      }
      const limit = this.first ? this.limits.maxConnectBytes : this.limits.maxPacketBytes;
      if (this.length > limit) return this.reject(this.length);
      this.first = false;
      this.remaining = this.length;
      this.phase = this.length === 0 ? 0 : 2;
    }
    return true;
  }

  private reject(declared: number): false {
    const limit = this.first ? this.limits.maxConnectBytes : this.limits.maxPacketBytes;
    this.onOversize({ remoteAddress: this.remoteAddress, declared, limit, first: this.first });
    this.socket.destroy();
    this.destroy();
    return false;
  }

  /** Bytes written by Aedes and not yet taken by the kernel (this guard's buffer plus the socket's). */
  get pendingBytes(): number {
    return this.writableLength + this.socket.writableLength;
  }

  override _read(): void {
    this.socket.resume();
  }

  /**
   * Holds the socket's writes until the event loop's check phase: every packet Aedes writes to
   * this client in one turn of the loop (PUBACKs of a group commit, the messages it forwards,
   * each from its own callback) leaves in one `writev` instead of one system call per packet.
   * A subscriber of busy telemetry got one `writev` per message before (bench:hub: 12,400 in 3 s).
   */
  private holdUntilCheck(): void {
    if (this.holding) return;
    this.holding = true;
    this.socket.cork();
    setImmediate(this.release);
  }

  private readonly release = (): void => {
    if (!this.holding) return;
    this.holding = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) {
      cb();
      return;
    }
    this.holdUntilCheck();
    if (this.socket.write(chunk)) cb();
    else this.socket.once('drain', () => cb());
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) {
      cb();
      return;
    }
    this.holdUntilCheck();
    let ok = true;
    for (const c of chunks) ok = this.socket.write(c.chunk);
    if (ok) cb();
    else this.socket.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.release();
    if (this.socket.destroyed) cb();
    else this.socket.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // What Aedes wrote last (a CONNACK refusing the login, say) leaves before the connection closes.
    this.release();
    this.socket.destroy();
    cb(err);
  }
}
