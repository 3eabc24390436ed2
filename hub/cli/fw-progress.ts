/**
 * Progress output of the `ioc-edge fw` commands: a bar redrawn in place on a
 * terminal, one plain line per change otherwise (logs, pipes, CI).
 */
import type { CommandIo } from './command.js';

/** True when `stream` is a terminal. */
export function isTty(stream: NodeJS.WritableStream): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}

/** `[#########-----------]  45%` for `done` of `total`, `width` cells wide. */
export function bar(done: number, total: number, width = 30): string {
  const ratio = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const full = Math.round(ratio * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${String(Math.floor(ratio * 100)).padStart(3)}%`;
}

/** Writes progress lines: redrawn on a TTY, printed when they change otherwise. */
export class ProgressLine {
  private last = '';
  private readonly tty: boolean;

  constructor(private readonly io: CommandIo) {
    this.tty = isTty(io.out);
  }

  update(text: string): void {
    if (text === this.last) return;
    this.last = text;
    if (this.tty) this.io.out.write(`\r\x1b[2K${text}`);
    else this.io.out.write(`${text}\n`);
  }

  /** Ends the line (TTY) so later output starts on a fresh one. */
  done(): void {
    if (this.tty && this.last) this.io.out.write('\n');
    this.last = '';
  }
}
