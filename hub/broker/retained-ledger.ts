/**
 * Which retained topics each client holds outside the contract's namespace,
 * for the `maxRetainedPerClient` bound (broker-limits.ts). One node keeps it
 * in memory ({@link memoryRetainedLedger}); a cluster keeps it in Redis
 * (hub/cluster/cluster-link.ts) so the bound holds across nodes.
 */

/** Counts retained topics per client. */
export interface RetainedLedger {
  /** True when `topic` is already held by `clientId` or fits under `bound` (then it is recorded). */
  admit(clientId: string, topic: string, bound: number): Promise<boolean>;
  /** The client cleared `topic` (an empty retained payload). */
  release(clientId: string, topic: string): Promise<void>;
}

/** The one-node ledger. */
export function memoryRetainedLedger(): RetainedLedger {
  const by = new Map<string, Set<string>>();
  return {
    async admit(clientId, topic, bound) {
      let set = by.get(clientId);
      if (!set) by.set(clientId, (set = new Set()));
      if (set.has(topic)) return true;
      if (set.size >= bound) return false;
      set.add(topic);
      return true;
    },
    async release(clientId, topic) {
      by.get(clientId)?.delete(topic);
    },
  };
}
