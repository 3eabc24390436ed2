/**
 * The pino root logger factory. One root logger per process; services receive
 * a child (`logger.child({component})`) through their dependencies, never a
 * global.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

/** Options for {@link createLogger}. */
export interface CreateLoggerOptions {
  level?: string;
  /** Human-readable, coloured output (the demo, a technician's terminal). JSON otherwise. */
  pretty?: boolean;
  /** Where JSON lines go; stdout when absent. */
  destination?: NodeJS.WritableStream;
  name?: string;
  /** Also keeps every line in this destination (e.g. a {@link LogRing} for the remote "logs" command). */
  ring?: { write(line: string): unknown };
}

/** Creates the process's root logger. */
export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  const base: LoggerOptions = {
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    ...(opts.name ? { name: opts.name } : {}),
  };
  if (opts.ring) {
    // Each stream takes every line the logger's own level lets through.
    const main = opts.pretty
      ? pretty({ colorize: process.stdout.isTTY ?? false, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, sync: true })
      : ((opts.destination as pino.DestinationStream | undefined) ?? pino.destination(1));
    return pino(base, pino.multistream([{ level: 'trace', stream: main }, { level: 'trace', stream: opts.ring as pino.DestinationStream }]));
  }
  if (opts.pretty) {
    return pino(base, pretty({ colorize: process.stdout.isTTY ?? false, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, sync: true }));
  }
  return opts.destination ? pino(base, opts.destination as pino.DestinationStream) : pino(base);
}

/** A logger that discards everything (tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
