/**
 * Other libraries' output through the process logger, so that every stdout
 * line of a service is one JSON object (issue 14.7):
 *
 * - {@link routeConsole}: `console.*` (which node-opcua and others call
 *   directly) becomes log lines of `component: 'console'`;
 * - {@link routeDebugPrinters}: libraries with printer hooks (node-opcua's
 *   `setErrorLogger`/`setWarningLogger`/`setDebugLogger`/`setTraceLogger`)
 *   log as `component: NAME` with the caller (`src`), at most 100 lines per
 *   caller as node-opcua's own printer does;
 * - {@link libraryText}: a library message as one line of text without
 *   colours, certificates (PEM, long base64, DER buffers) shown by their
 *   SHA-1 fingerprint only.
 *
 * Our own code never writes to the console outside scripts/ (STYLE.md).
 */
import { createHash } from 'node:crypto';
import { format } from 'node:util';
import type { Logger } from 'pino';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;
const PEM = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const BASE64_RUN = /[A-Za-z0-9+/]{160,}={0,2}/g;

/** SHA-1 of `der` as colon-separated hex (the form certificate tools and OPC UA thumbprints show). */
export function fingerprint(der: Buffer): string {
  return createHash('sha1').update(der).digest('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

/** `text` with every PEM block and long base64 run replaced by its SHA-1 fingerprint. */
export function redactCertificates(text: string): string {
  return text
    .replace(PEM, (block: string, kind: string) => `<${kind.toLowerCase()} sha1 ${fingerprint(Buffer.from(block.replace(/-----[^-]+-----|\s/g, ''), 'base64'))}>`)
    .replace(BASE64_RUN, (run) => `<${run.length} base64 chars, sha1 ${fingerprint(Buffer.from(run, 'base64'))}>`);
}

/** One library message (console/printf-style arguments) as one plain line; Buffers over 64 bytes by size and fingerprint. */
export function libraryText(args: readonly unknown[]): string {
  const parts = args.map((a) => (Buffer.isBuffer(a) && a.length > 64 ? `<${a.length} bytes, sha1 ${fingerprint(a)}>` : a));
  return redactCertificates(format(...parts).replace(ANSI, ''))
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' | ');
}

type Level = 'error' | 'warn' | 'info' | 'debug' | 'trace';
const CONSOLE: Array<[keyof Console, Level]> = [['log', 'info'], ['info', 'info'], ['warn', 'warn'], ['error', 'error'], ['debug', 'debug'], ['trace', 'trace']];

/**
 * Sends `console.log/info/warn/error/debug/trace` to `logger` (child
 * `component: 'console'`). Returns a function that restores the console.
 */
export function routeConsole(logger: Logger): () => void {
  const log = logger.child({ component: 'console' });
  const c = console as unknown as Record<string, (...a: unknown[]) => void>;
  const saved = CONSOLE.map(([name]) => [name, c[name]] as const);
  for (const [name, level] of CONSOLE) c[name] = (...a: unknown[]) => log[level](libraryText(a));
  return () => {
    for (const [name, fn] of saved) c[name] = fn!;
  };
}

/** A library's printer hooks: each receives `(context, ...args)` where context may carry `filename` and `callerline`. */
export interface DebugPrinterHooks {
  setErrorLogger?(fn: (...a: unknown[]) => void): void;
  setWarningLogger?(fn: (...a: unknown[]) => void): void;
  setDebugLogger?(fn: (...a: unknown[]) => void): void;
  setTraceLogger?(fn: (...a: unknown[]) => void): void;
}

/**
 * Points a library's printers at `logger` (child `component: name`), e.g.
 * `routeDebugPrinters(logger, 'node-opcua', await import('node-opcua-debug'))`.
 * At most `perCaller` lines per calling source line and level, then one line
 * saying the rest is dropped.
 */
export function routeDebugPrinters(logger: Logger, name: string, hooks: DebugPrinterHooks, perCaller = 100): void {
  const log = logger.child({ component: name });
  const counts = new Map<string, number>();
  const printer = (level: Level) => (ctx?: unknown, ...args: unknown[]): void => {
    const c = (ctx ?? {}) as { filename?: unknown; callerline?: unknown };
    const src = typeof c.filename === 'string' ? `${c.filename}:${String(c.callerline)}` : 'unknown';
    const key = `${level} ${src}`;
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    if (n > perCaller) return;
    log[level]({ src }, n === perCaller ? `${libraryText(args)} (this message came ${perCaller} times; no more from ${src})` : libraryText(args));
  };
  hooks.setErrorLogger?.(printer('error'));
  hooks.setWarningLogger?.(printer('warn'));
  hooks.setDebugLogger?.(printer('debug'));
  hooks.setTraceLogger?.(printer('trace'));
}
