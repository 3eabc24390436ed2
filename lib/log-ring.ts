/**
 * A bounded ring of recent log lines: a pino destination (anything with
 * `write(line)`) that keeps the last `capacity` lines in memory, so a remote
 * "fetch the logs" command can answer without reading files. Lines are kept
 * as the JSON text pino wrote and parsed only when asked for.
 */

/** pino's numeric levels by name. */
export const LOG_LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/** Options of {@link LogRing}. */
export interface LogRingOptions {
  /** Lines kept. Default 1000. */
  capacity?: number;
  /** Longest line kept, in characters; longer ones are cut. Default 8192. */
  maxLineChars?: number;
}

/** The last N log lines of the process. */
export class LogRing {
  private readonly lines: string[] = [];
  private next = 0;
  private count = 0;
  /** Lines written since the start (including those pushed out). */
  total = 0;
  readonly capacity: number;
  private readonly maxLineChars: number;

  constructor(opts: LogRingOptions = {}) {
    this.capacity = Math.max(1, opts.capacity ?? 1000);
    this.maxLineChars = opts.maxLineChars ?? 8192;
  }

  /** pino destination interface: one call per log line (JSON plus newline). */
  write(line: string): boolean {
    const text = line.endsWith('\n') ? line.slice(0, -1) : line;
    this.lines[this.next] = text.length > this.maxLineChars ? text.slice(0, this.maxLineChars) : text;
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.capacity, this.count + 1);
    this.total++;
    return true;
  }

  /**
   * The newest `limit` lines at or above `level` (and at or after `since`, ms),
   * oldest first, parsed. A line cut at {@link LogRingOptions.maxLineChars}
   * comes back as `{truncated: true, text}`.
   */
  recent(opts: { limit?: number; level?: keyof typeof LOG_LEVELS; since?: number } = {}): Array<Record<string, unknown>> {
    const min = LOG_LEVELS[opts.level ?? 'trace'];
    const limit = opts.limit ?? 100;
    const out: Array<Record<string, unknown>> = [];
    for (let i = 1; i <= this.count && out.length < limit; i++) {
      const text = this.lines[(this.next - i + this.capacity) % this.capacity]!;
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(text) as Record<string, unknown>;
      } catch {
        rec = { truncated: true, text };
      }
      if (typeof rec.level === 'number' && rec.level < min) continue;
      if (opts.since !== undefined && typeof rec.time === 'number' && rec.time < opts.since) continue;
      out.push(rec);
    }
    return out.reverse();
  }
}
