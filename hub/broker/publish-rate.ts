/**
 * Per-client publish-rate bound (issue 13, "a client can publish as fast as
 * it likes"): a token bucket per connection, checked first in the broker's
 * `authorizePublish` (hub/broker.ts), before the ACL and the ingest.
 *
 * - Within the bucket (`publishBurst` messages, refilled at `publishRate`
 *   per second) a PUBLISH goes on at once.
 * - Past it, the PUBLISH is held until its token is due: the PUBACK (QoS 1)
 *   comes that much later, and because Aedes reads a client's next packets
 *   only after the ones it is handling are done, the client's socket stops
 *   being read: it is slowed to the rate by TCP itself, without costing the
 *   hub more than a timer per held message.
 * - A client with more than `publishMaxHeld` messages held at once (it
 *   pipelines far more than any QoS 1 window of a gateway) is past the hard
 *   limit: it is disconnected (the PUBLISH is refused, which closes the
 *   connection without PUBACK), with a warning and a counter.
 *
 * Settings in broker-limits.ts; docs/security.md "Broker limits".
 */
import type { Client } from 'aedes';
import { IocError } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { BrokerLimitCounters, BrokerLimits } from './broker-limits.js';

/** Dependencies of {@link PublishRate}. */
export interface PublishRateDeps {
  logger: Logger;
  limits: Pick<BrokerLimits, 'publishRate' | 'publishBurst' | 'publishMaxHeld'>;
  counters: Pick<BrokerLimitCounters, 'publishesDelayed' | 'publishRateDisconnects'>;
  /** Monotonic clock in ms (tests). Default performance.now. */
  clock?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** Messages waiting for their token now. */
  held: number;
  /** The slowing of this connection was logged. */
  logged: boolean;
  refused: boolean;
}

/** The broker's per-connection token buckets and the messages they hold. */
export class PublishRate {
  private readonly buckets = new WeakMap<Client, Bucket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly clock: () => number;

  constructor(private readonly deps: PublishRateDeps) {
    this.clock = deps.clock ?? (() => performance.now());
  }

  /**
   * Runs `go` now when the client has a token, later when its token is due
   * (slowed), or refuses with `refuse(err)` past the hard limit (the broker's
   * callback closes the connection). A publish without a client (the hub's
   * own) is never bounded.
   */
  admit(client: Client | null, go: () => void, refuse: (err: Error) => void): void {
    if (!client) {
      go();
      return;
    }
    const { publishRate: rate, publishBurst: burst, publishMaxHeld: maxHeld } = this.deps.limits;
    const now = this.clock();
    let b = this.buckets.get(client);
    if (!b) {
      b = { tokens: burst, at: now, held: 0, logged: false, refused: false };
      this.buckets.set(client, b);
    }
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) * rate) / 1000) - 1;
    b.at = now;
    if (b.tokens >= 0) {
      go();
      return;
    }
    if (b.held >= maxHeld || b.refused) {
      b.tokens += 1;
      if (!b.refused) {
        b.refused = true;
        this.deps.counters.publishRateDisconnects++;
        this.deps.logger.warn({ client: client.id, held: b.held, publishRate: rate, publishBurst: burst, publishMaxHeld: maxHeld, code: 'HUB_ERR_LIMIT' }, 'client publishes far past its rate: disconnected');
      }
      refuse(new IocError('HUB_ERR_LIMIT', `client '${client.id}' has ${b.held} messages waiting for the publish rate of ${rate}/s (at most ${maxHeld}); disconnected`));
      return;
    }
    const waitMs = (-b.tokens * 1000) / rate;
    b.held++;
    this.deps.counters.publishesDelayed++;
    if (!b.logged) {
      b.logged = true;
      this.deps.logger.warn({ client: client.id, publishRate: rate, publishBurst: burst, code: 'HUB_ERR_LIMIT' }, 'client publishes faster than its rate: its messages are held (PUBACK later); logged once per connection');
    }
    const bucket = b;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      bucket.held--;
      if (bucket.refused || (client as { closed?: boolean }).closed) refuse(new IocError('HUB_ERR_LIMIT', `client '${client.id}' disconnected while its message waited for the publish rate`));
      else go();
    }, Math.ceil(waitMs));
    this.timers.add(timer);
  }

  /** Messages held for this client now. */
  heldFor(client: Client): number {
    return this.buckets.get(client)?.held ?? 0;
  }

  /** Drops every held message (the broker is stopping): nothing is acknowledged. */
  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
