/**
 * The pino root logger factory. One root logger per process; services receive
 * a child (`logger.child({component})`) through their dependencies, never a
 * global.
 */
import { pino, type Logger, type LoggerOptions, type LogFn } from 'pino';
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

const boundCache = new WeakMap<object, Record<string, unknown>>();

/**
 * pino writes a child's bindings and the call's fields side by side, so
 * `logger.child({bus}).warn({bus}, …)` printed `"bus":"lan","bus":"lan"`
 * (JSON.parse keeps one; log shippers may not). Fields equal to a binding are
 * dropped from the call; a field that differs from its binding is renamed
 * `<key>_` so no line carries a key twice.
 */
function dropBoundFields(this: Logger, args: Parameters<LogFn>, method: LogFn): void {
  const first = args[0] as unknown;
  if (first && typeof first === 'object' && !(first instanceof Error) && !Array.isArray(first)) {
    let bound = boundCache.get(this);
    if (!bound) boundCache.set(this, (bound = this.bindings()));
    let copy: Record<string, unknown> | null = null;
    for (const k of Object.keys(first)) {
      if (!(k in bound)) continue;
      copy ??= { ...(first as Record<string, unknown>) };
      if (copy[k] !== bound[k]) copy[`${k}_`] = copy[k];
      delete copy[k];
    }
    if (copy) (args as unknown[])[0] = copy;
  }
  method.apply(this, args);
}

/** Creates the process's root logger. */
export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  const base: LoggerOptions = {
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    ...(opts.name ? { name: opts.name } : {}),
    hooks: { logMethod: dropBoundFields },
  };
  if (opts.ring) {
    // Each stream takes every line the logger's own level lets through.
    const main = opts.pretty
      ? pretty({ colorize: process.stdout.isTTY ?? false, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, sync: true })
      : ((opts.destination as pino.DestinationStream | undefined) ?? stdoutDestination());
    return pino(base, pino.multistream([{ level: 'trace', stream: main }, { level: 'trace', stream: opts.ring as pino.DestinationStream }]));
  }
  if (opts.pretty) {
    return pino(base, pretty({ colorize: process.stdout.isTTY ?? false, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, sync: true }));
  }
  return opts.destination ? pino(base, opts.destination as pino.DestinationStream) : pino(base, stdoutDestination());
}

/** A logger that discards everything (tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * stdout, written synchronously. The processes log a few lines a second at
 * info (per-message paths log at debug or are rate-limited), and a line that
 * is written when the call returns is a line that survives a crash and keeps
 * its order: pino's asynchronous default could put the fatal line of the
 * process policy before earlier lines, or lose the lines still buffered.
 */
function stdoutDestination(): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: true });
}
