/**
 * The byte stream a flasher talks over: a serial port to a bootloader (or a
 * pty in tests). Structurally the same as the gateway's `ByteLink`
 * (gateway/southbound/drivers/byte-link.ts), declared here because the firmware bridge
 * does not import the gateway.
 */
import type { EventEmitter } from 'node:events';

/**
 * An open byte stream. Events: `data` (Buffer) and `close` (Error | null),
 * emitted once when the stream ends (an error when it broke).
 */
export interface ByteChannel extends EventEmitter {
  readonly isOpen: boolean;
  write(data: Buffer): void;
}

/**
 * Buffers the bytes of a channel and hands them out one at a time with a
 * timeout: what a stop-and-wait protocol needs. `next()` resolves with the
 * next byte, `null` after `timeoutMs` without one, and rejects once the
 * channel has closed.
 */
export class ByteReader {
  private readonly queue: number[] = [];
  private waiter: { resolve: (b: number | null) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private closedWith: Error | null = null;
  private readonly onData = (d: Buffer): void => {
    for (const b of d) this.queue.push(b);
    this.wake();
  };
  private readonly onClose = (err: Error | null): void => {
    this.closedWith = err ?? new Error('channel closed');
    this.wake();
  };

  constructor(private readonly channel: ByteChannel) {
    channel.on('data', this.onData);
    channel.once('close', this.onClose);
    if (!channel.isOpen) this.closedWith = new Error('channel is not open');
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.queue.length > 0) {
      this.waiter = null;
      clearTimeout(w.timer);
      w.resolve(this.queue.shift()!);
    } else if (this.closedWith) {
      this.waiter = null;
      clearTimeout(w.timer);
      w.reject(this.closedWith);
    }
  }

  /** The next byte, or null when none came within `timeoutMs`. */
  next(timeoutMs: number): Promise<number | null> {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift()!);
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(null);
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  /** Drops bytes received so far (stale handshake characters, line noise). */
  purge(): void {
    this.queue.length = 0;
  }

  /** Stops listening to the channel. */
  detach(): void {
    this.channel.off('data', this.onData);
    this.channel.off('close', this.onClose);
    if (this.waiter) {
      clearTimeout(this.waiter.timer);
      this.waiter.resolve(null);
      this.waiter = null;
    }
  }
}
