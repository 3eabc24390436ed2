/**
 * The grace period for a dead node's gateways (issue 16, docs/cluster.md):
 * every heartbeat, gateways whose connection row names a node that has not
 * beaten for three heartbeats are marked offline in the store, unless they
 * reconnected elsewhere (their row then names the live node). This covers the
 * gateways whose last wills Aedes publishes late or not at all.
 */
import type { Logger } from '../../lib/index.js';

/** Dependencies of {@link ConnectionSweep}. */
export interface ConnectionSweepDeps {
  logger: Logger;
  intervalMs: number;
  /** Live nodes, or null while that is not known yet. */
  liveNodes: () => string[] | null;
  /** Marks offline the gateways held by other nodes; returns their ids. */
  sweep: (live: string[]) => Promise<string[]>;
  /** Told of each gateway marked offline (events for the live stream and the registry). */
  onOffline: (gateway: string) => void;
}

/** A timer around the store's sweep. */
export class ConnectionSweep {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly deps: ConnectionSweepDeps) {}

  async start(): Promise<void> {
    this.timer = setInterval(() => void this.runOnce(), this.deps.intervalMs);
    this.timer.unref();
  }

  /** One pass (tests call it); overlapping calls share the running one. */
  runOnce(): Promise<void> {
    this.running ??= (async () => {
      const live = this.deps.liveNodes();
      if (!live) return;
      try {
        const gone = await this.deps.sweep(live);
        if (gone.length > 0) this.deps.logger.info({ gateways: gone.length, first: gone.slice(0, 10), liveNodes: live }, 'gateways of a node that stopped beating marked offline');
        for (const g of gone) this.deps.onOffline(g);
      } catch (err) {
        this.deps.logger.warn({ err, code: 'HUB_ERR_STORE_IO' }, 'connection sweep failed; the next heartbeat tries again');
      }
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
