/**
 * Where a burst of logins spent its time, from two `stats` answers of
 * secure-hub-process.ts taken around it (bench:connections,
 * bench:reconnect-storm): hub CPU per login (main thread and libuv pool, where
 * scrypt runs), how busy the event loop was, and per login the wait for a
 * login slot (maxConcurrentLogins) and the check itself (identity read + secret hash).
 */

/** One line describing the logins between `before` and `after` (stats objects), `seconds` apart. */
export function loginReport(before: Record<string, unknown>, after: Record<string, unknown>, seconds: number): string {
  const d = (k: string): number => ((after[k] as number | undefined) ?? 0) - ((before[k] as number | undefined) ?? 0);
  const logins = Math.max(1, d('checks'));
  const elu = d('loopActiveMs') / Math.max(1, d('loopActiveMs') + d('loopIdleMs'));
  return `hub during the logins: CPU ${(d('cpuMs') / logins).toFixed(2)} ms per login, ${((d('cpuMs') / 1000 / seconds) * 100).toFixed(0)} % of one core; `
    + `event loop busy ${(elu * 100).toFixed(0)} %; per login ${(d('slotWaitMs') / logins).toFixed(1)} ms waiting for a login slot `
    + `(at most ${(after.peakConcurrentLogins as number | undefined) ?? '?'} at once), ${(d('checkMs') / logins).toFixed(1)} ms in the check (identity read + secret hash)`;
}
