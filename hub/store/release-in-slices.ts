/**
 * Answers a committed group a slice at a time, a turn of the event loop
 * apart. Shared by both telemetry stores (the SQLite HubStore, hub/store/sqlite/hub-store.ts,
 * and the PostgreSQL one, hub/store/postgres/pg-telemetry-store.ts).
 *
 * Why: each answer lets Aedes send a PUBACK and forward the message, and
 * mqemitter delivers the messages queued behind its concurrency by recursion
 * (released → _do). A thousand answers in one turn overflowed the stack
 * (RangeError in mqemitter; bench:hub at 64 publishers × 64 in flight on the
 * PostgreSQL store). Between two slices Aedes' queue unwinds.
 * The hub's bus now has no queue (Broker: `concurrency: 0`), so this is no
 * longer what stops that overflow; it stays so that one large group does not
 * hold the event loop for a whole turn of PUBACKs.
 */

/** Answers released per turn of the event loop. */
export const RELEASE_SLICE = 64;

/**
 * Calls `release(item, index)` for every item in order, `slice` per turn of
 * the event loop (setImmediate between slices, so I/O callbacks run too).
 * Resolves after the last one. A `slice` below 1 is taken as 1.
 */
export async function releaseInSlices<T>(items: readonly T[], release: (item: T, index: number) => void, slice = RELEASE_SLICE): Promise<void> {
  const step = Math.max(1, Math.floor(slice));
  for (let i = 0; i < items.length; i += step) {
    if (i > 0) await new Promise<void>((r) => setImmediate(r));
    const end = Math.min(items.length, i + step);
    for (let k = i; k < end; k++) release(items[k]!, k);
  }
}
