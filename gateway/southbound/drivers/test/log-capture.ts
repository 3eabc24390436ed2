/** A pino logger whose JSON lines a test can read. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../../../lib/index.js';

/** A log line as pino writes it. */
export interface LogLine {
  level: number;
  msg: string;
  code?: string;
  [key: string]: unknown;
}

/** Creates a debug-level logger that keeps every line in `lines`. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}

/** pino's numeric levels. */
export const WARN = 40;
