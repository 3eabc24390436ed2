/**
 * Cuts a serial byte stream into frames as a serial-line profile describes
 * (delimiter, start…end bytes, fixed length). Pure and synchronous: the
 * driver pushes whatever the port delivered and gets whole frames back, so
 * chunk boundaries (a USB adapter delivers bytes in arbitrary pieces) never
 * matter. Noise outside frames and over-long runs are counted and dropped.
 */
import type { LineFraming } from './line-types.js';

/** Byte string (profile notation, one character per byte) to bytes. */
export function byteString(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** Counters of what the framer threw away. */
export interface FramerStats {
  /** Frames handed out. */
  frames: number;
  /** Bytes outside any frame (before a start marker, between frames). */
  noiseBytes: number;
  /** Runs longer than `maxFrameBytes` without a frame boundary, dropped. */
  overflows: number;
}

/** A stateful frame splitter for one serial port. */
export class LineFramer {
  private buf: Buffer = Buffer.alloc(0);
  private skipping = false;
  private readonly delimiter?: Buffer;
  private readonly start?: Buffer;
  private readonly end?: Buffer;
  readonly stats: FramerStats = { frames: 0, noiseBytes: 0, overflows: 0 };

  constructor(private readonly framing: LineFraming, private readonly maxFrameBytes: number) {
    if (framing.mode === 'delimiter') this.delimiter = byteString(framing.delimiter);
    if (framing.mode === 'start-end') this.end = byteString(framing.end);
    if (framing.mode !== 'delimiter' && framing.start !== undefined) this.start = byteString(framing.start);
  }

  /** Drops any partial frame (after a port reopen: the rest of that frame is lost). */
  reset(): void {
    this.stats.noiseBytes += this.buf.length;
    this.buf = Buffer.alloc(0);
    this.skipping = false;
  }

  /** Feeds received bytes; returns the frames they completed, in order. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Buffer[] = [];
    switch (this.framing.mode) {
      case 'delimiter':
        this.splitDelimited(frames);
        break;
      case 'start-end':
        this.splitStartEnd(frames);
        break;
      case 'fixed':
        this.splitFixed(frames, this.framing.length);
        break;
    }
    this.stats.frames += frames.length;
    return frames;
  }

  private splitDelimited(frames: Buffer[]): void {
    const delim = this.delimiter as Buffer;
    let from = 0;
    for (;;) {
      const at = this.buf.indexOf(delim, from);
      if (at < 0) break;
      const frame = this.buf.subarray(from, at);
      if (this.skipping) {
        // The end of a run already dropped as too long.
        this.stats.noiseBytes += frame.length;
        this.skipping = false;
      } else if (frame.length > this.maxFrameBytes) this.stats.overflows++;
      else if (frame.length > 0) frames.push(Buffer.from(frame));
      from = at + delim.length;
    }
    this.buf = this.buf.subarray(from);
    if (this.buf.length > this.maxFrameBytes + delim.length) {
      // No delimiter in sight: drop the run (and its rest up to the next delimiter), keeping
      // a tail that may hold the first bytes of a delimiter.
      if (!this.skipping) this.stats.overflows++;
      this.skipping = true;
      const keep = delim.length - 1;
      this.stats.noiseBytes += this.buf.length - keep;
      this.buf = Buffer.from(this.buf.subarray(this.buf.length - keep));
    }
  }

  /** No start marker in the buffer: count it as noise, keeping what could be the first bytes of one. */
  private dropNoiseBefore(start: Buffer): void {
    const keep = Math.min(this.buf.length, start.length - 1);
    this.stats.noiseBytes += this.buf.length - keep;
    this.buf = Buffer.from(this.buf.subarray(this.buf.length - keep));
  }

  private splitStartEnd(frames: Buffer[]): void {
    const start = this.start as Buffer;
    const end = this.end as Buffer;
    for (;;) {
      const s = this.buf.indexOf(start);
      if (s < 0) {
        this.dropNoiseBefore(start);
        return;
      }
      this.stats.noiseBytes += s;
      const bodyAt = s + start.length;
      const e = this.buf.indexOf(end, bodyAt);
      const restart = this.buf.indexOf(start, bodyAt);
      if (restart >= 0 && (e < 0 || restart < e)) {
        // A new start before this frame ended: the earlier frame was cut short (noise).
        this.stats.noiseBytes += restart - s;
        this.buf = this.buf.subarray(restart);
        continue;
      }
      if (e < 0) {
        if (this.buf.length - bodyAt > this.maxFrameBytes + end.length) {
          this.stats.overflows++;
          this.buf = Buffer.from(this.buf.subarray(bodyAt));
          continue;
        }
        this.buf = this.buf.subarray(s);
        return;
      }
      const frame = this.buf.subarray(bodyAt, e);
      if (frame.length > this.maxFrameBytes) this.stats.overflows++;
      else frames.push(Buffer.from(frame));
      this.buf = this.buf.subarray(e + end.length);
    }
  }

  private splitFixed(frames: Buffer[], length: number): void {
    const start = this.start;
    for (;;) {
      let at = 0;
      if (start) {
        const s = this.buf.indexOf(start);
        if (s < 0) {
          this.dropNoiseBefore(start);
          return;
        }
        this.stats.noiseBytes += s;
        this.buf = this.buf.subarray(s);
        at = start.length;
      }
      if (this.buf.length < at + length) return;
      frames.push(Buffer.from(this.buf.subarray(at, at + length)));
      this.buf = this.buf.subarray(at + length);
    }
  }
}
