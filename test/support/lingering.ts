/**
 * Finds what keeps a test process alive after its last test: once every
 * teardown ran, an unref'd timer waits `afterMs`; if the process is still
 * there, it prints the active handles (sockets with their addresses, timers,
 * child processes) on stderr, then ends the process with exit code 1 so that
 * the file fails at once with the culprit named instead of at tap's timeout.
 */
import { createHook } from 'node:async_hooks';
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
  // Timers are not among the handles Node lists: keep each one (with where it was set) until it is destroyed.
  const timers = new Map<number, { timer: object; where: string }>();
  const hook = createHook({
    init(id, type, _trigger, resource) {
      if (type === 'Timeout') timers.set(id, { timer: resource, where: (new Error().stack ?? '').split('\n').slice(1).filter((l) => !/node:(internal|timers)|lingering\.ts/.test(l)).slice(0, 6).join('\n      ') });
    },
    destroy(id) { timers.delete(id); },
  }).enable();
  t.teardown(() => {
    const timer = setTimeout(() => {
      hook.disable();
      const live = [...timers.values()].filter(({ timer: x }) => x !== timer && (x as { hasRef?(): boolean }).hasRef?.() && !(x as { _destroyed?: boolean })._destroyed)
        .map(({ timer: x, where }) => `Timeout ${(x as { _idleTimeout?: number })._idleTimeout} ms${(x as { _repeat?: number | null })._repeat ? ' (interval)' : ''}, set at\n      ${where}`);
      process.stderr.write(`test process still alive ${afterMs} ms after its last test; active: ${JSON.stringify(process.getActiveResourcesInfo())}; handles:\n  ${[...activeHandles(), ...live].join('\n  ')}\n`);
      process.exit(1);
    }, afterMs);
    timer.unref();
  });
}
