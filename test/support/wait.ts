/**
 * Waiting helpers for tests: poll a condition until it holds or a deadline
 * passes. Bounded, so a broken system fails the test instead of hanging it.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `fn` every `everyMs` until it returns a truthy value; throws after `timeoutMs` with `what`. */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 15_000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}
