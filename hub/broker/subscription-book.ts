/**
 * The filters each connected client holds, so the broker can bound them per
 * session (broker-limits.ts) and its persistence stores only the filters that
 * were granted.
 *
 * Why the persistence needs it: Aedes 1.2 (lib/handlers/subscribe.js,
 * `storeSubscriptions`) calls `persistence.addSubscriptions(client,
 * packet.subscriptions)` once per granted filter with the WHOLE packet's
 * list, refused filters included. A persistent session sending 5,000 filters
 * thus cost 5,000 × 5,000 trie insertions (the 10–25 s stall of issue 13 item
 * 1) and kept every refused filter. {@link SubscriptionBook.toPersist} hands
 * the persistence only granted filters not yet stored.
 *
 * A persistent session's stored filters pass through `authorizeSubscribe`
 * again when it reconnects (Aedes restores them through the same hook), so
 * the book is rebuilt per connection and the bound holds across reconnects.
 */
import type { Client } from 'aedes';

/** Per-client granted filters. Entries go with the client object. */
export class SubscriptionBook {
  private readonly granted = new WeakMap<Client, Set<string>>();
  private readonly persisted = new WeakMap<Client, Set<string>>();
  private readonly warned = new WeakSet<Client>();

  /** Filters the client holds now. */
  count(client: Client): number {
    return this.granted.get(client)?.size ?? 0;
  }

  /**
   * Grants `filter` when the client already holds it or has room under
   * `bound`; false when the bound is reached (the caller answers 0x80).
   */
  admit(client: Client, filter: string, bound: number): boolean {
    let set = this.granted.get(client);
    if (!set) {
      set = new Set();
      this.granted.set(client, set);
    }
    if (set.has(filter)) return true;
    if (set.size >= bound) return false;
    set.add(filter);
    return true;
  }

  /** Forgets filters the client unsubscribed from. */
  remove(client: Client, filters: readonly string[]): void {
    const set = this.granted.get(client);
    const stored = this.persisted.get(client);
    for (const f of filters) {
      set?.delete(f);
      stored?.delete(f);
    }
  }

  /** True the first time it is asked for a client: log a refusal once per client, not per filter. */
  firstRefusal(client: Client): boolean {
    if (this.warned.has(client)) return false;
    this.warned.add(client);
    return true;
  }

  /** Of `subs`, those granted and not yet handed to the persistence (and marks them handed). */
  toPersist<S extends { topic: string }>(client: Client, subs: readonly S[]): S[] {
    const set = this.granted.get(client);
    if (!set) return [];
    let stored = this.persisted.get(client);
    if (!stored) {
      stored = new Set();
      this.persisted.set(client, stored);
    }
    const out: S[] = [];
    for (const s of subs) {
      if (set.has(s.topic) && !stored.has(s.topic)) {
        stored.add(s.topic);
        out.push(s);
      }
    }
    return out;
  }
}
