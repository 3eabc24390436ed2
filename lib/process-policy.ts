/**
 * The process policy of both long-running processes (`hub run`, `gateway
 * run`): an `uncaughtException` or an `unhandledRejection` is a bug whose
 * state nobody can reason about, so the process logs it as `fatal` with its
 * stack through its pino logger, waits until the log is written (at most
 * 2 s), and exits
 * non-zero; systemd restarts it (Restart=on-failure). Without the policy,
 * Node prints a plain-text stack on stderr (not a JSON line a log pipeline
 * reads) and, for rejections, the default depends on Node's flags.
 */
import type { Logger } from './logger.js';

/** Exit code of a process stopped by the policy (EX_SOFTWARE, sysexits.h: internal software error). */
export const FATAL_EXIT_CODE = 70;

/** Settings of {@link installProcessPolicy}. */
export interface ProcessPolicyOptions {
  /** Ends the process (default `process.exit`); tests replace it. */
  exit?: (code: number) => void;
  /** Which process, for the fatal line (`hub`, `gateway`). */
  name?: string;
}

/**
 * Installs the handlers; returns a function that removes them (tests, or a
 * composition root that stops and hands the process back).
 */
export function installProcessPolicy(logger: Logger, opts: ProcessPolicyOptions = {}): () => void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let dying = false;
  const die = (kind: 'uncaughtException' | 'unhandledRejection', reason: unknown): void => {
    if (dying) return; // a second failure while logging the first: the first decides
    dying = true;
    const err = reason instanceof Error ? reason : new Error(`non-Error ${kind}: ${describe(reason)}`);
    let exited = false;
    const end = (): void => {
      if (exited) return;
      exited = true;
      exit(FATAL_EXIT_CODE);
    };
    try {
      logger.fatal({ err, kind, process: opts.name, code: 'PROCESS_FATAL' }, `${kind}: ${err.message}; exiting with code ${FATAL_EXIT_CODE} (a supervisor restarts the process)`);
      // pino's default destination writes asynchronously: exit once the lines before the fatal one and the fatal one
      // itself are written, in order. An exit right here (flushSync on exit) raced a write still in flight and put
      // the fatal line before earlier ones. A log sink that does not drain within 2 s does not hold the exit.
      const flush = (logger as { flush?: (cb?: (err?: Error) => void) => void }).flush;
      if (typeof flush !== 'function') return end();
      setTimeout(end, 2000);
      flush.call(logger, () => end());
    } catch {
      end();
    }
  };
  const onException = (err: unknown): void => die('uncaughtException', err);
  const onRejection = (reason: unknown): void => die('unhandledRejection', reason);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.slice(0, 200));
  try {
    return JSON.stringify(v)?.slice(0, 200) ?? String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}
