/**
 * Finds what keeps a test process alive after its last test: once every
 * teardown ran, an unref'd timer waits `afterMs`; if the process is still
 * there, it prints the active handles (sockets with their addresses, timers,
 * child processes) on stderr, then ends the process with exit code 1 so that
 * the file fails at once with the culprit named instead of at tap's timeout.
 */
import type { Test } from 'tap';

/** Describes the handles that keep the event loop alive. */
export function activeHandles(): string[] {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.map((h) => {
    const name = (h as object).constructor?.name ?? typeof h;
    const s = h as { localPort?: number; remotePort?: number; remoteAddress?: string; destroyed?: boolean; pid?: number; spawnfile?: string; _idleTimeout?: number };
    if (name === 'Socket' || name === 'TLSSocket') return `${name} ${s.localPort ?? '?'} → ${s.remoteAddress ?? ''}:${s.remotePort ?? '?'}${s.destroyed ? ' (destroyed)' : ''}`;
    if (name === 'ChildProcess') return `ChildProcess pid ${s.pid} ${s.spawnfile ?? ''}`;
    if (name === 'Server') return `Server ${JSON.stringify((h as { address(): unknown }).address())}`;
    return name;
  }).filter((d) => !/^(WriteStream|ReadStream|Pipe)/.test(d) || d.includes('→'));
}

/**
 * Call once at the top of a test file. After the file's tests end, a process
 * still alive `afterMs` later names its handles and exits 1.
 */
export function failIfLingering(t: Test, afterMs = 10_000): void {
  t.teardown(() => {
    const timer = setTimeout(() => {
      process.stderr.write(`test process still alive ${afterMs} ms after its last test; active: ${JSON.stringify(process.getActiveResourcesInfo())}; handles:\n  ${activeHandles().join('\n  ')}\n`);
      process.exit(1);
    }, afterMs);
    timer.unref();
  });
}
