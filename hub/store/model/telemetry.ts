/**
 * A telemetry batch to commit, and gateway connection/status changes merged per gateway before either backend writes them in one transaction per turn.
 */
import type { GatewayEvent, GatewayStatus, Reading } from '../../../contract/index.js';

/** A telemetry batch to commit. */
export interface BatchToCommit {
  gateway: string;
  epoch: string;
  seq: number;
  historical: boolean;
  readings: Reading[];
}

/** A change of one gateway's connection state or status document, as the broker and ingest report it. */
export interface GatewayStateChange {
  online?: boolean;
  status?: GatewayStatus;
  /**
   * The last will of a connection held by a node that died, published by
   * this node (Aedes' will sweep): it may clear the row that node still
   * names, as that node's own disconnect would have. Without it an
   * `online: false` from a node that does not hold the row is a stale
   * connection's and is ignored.
   */
  deadNodeWill?: boolean;
}

/**
 * The changes of one gateway waiting for the next state commit, merged in
 * the order they were made: `online` and `status` are the last ones given
 * (null: none given, the row keeps its value), `at` the newest time. `took`
 * says an `online: true` (or a dead node's will) was among them: on a
 * cluster node the row is then this node's to change, so a later
 * `online: false` of the same group clears it even when the stored row names
 * another node (as applying them one by one would).
 */
export interface CoalescedGatewayState {
  gateway: string;
  online: boolean | null;
  took: boolean;
  status: string | null;
  at: number;
}

/**
 * Group commit of gateway connection state (issue 14.12 / 13). Every MQTT
 * connect and disconnect, and every status document, changes a gateway row;
 * written one synced commit each (~1.2 ms) they queued behind and between the
 * telemetry commits, and 50,000 returning gateways held telemetry PUBACKs for
 * about a minute. Here the changes made during one turn of the event loop,
 * and those made while a state commit runs, are merged per gateway and
 * written as one transaction by the `write` the store gives (which goes
 * through the store's own write queue). A gateway's changes are never
 * reordered: they are merged in call order, and one state commit runs at a
 * time, so a later change is either in the same commit (and wins) or in a
 * later one. Each caller is answered when the commit holding its change
 * returned; readers call {@link flush} first to see every change made
 * before the read (read-your-writes).
 */
export class GatewayStateBatcher {
  private pending = new Map<string, CoalescedGatewayState>();
  private waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private running: Promise<void> | null = null;
  private scheduled = false;
  /** State commits written, changes asked for, gateway rows written (for tests and metrics). */
  readonly counters = { commits: 0, changes: 0, rows: 0 };

  constructor(private readonly write: (rows: CoalescedGatewayState[]) => Promise<void>) {}

  /** Queues a change; resolves when it is committed, rejects with the commit's error. */
  set(gateway: string, change: GatewayStateChange, now: number): Promise<void> {
    const prev = this.pending.get(gateway);
    this.pending.set(gateway, {
      gateway,
      online: change.online ?? prev?.online ?? null,
      took: change.online === true || change.deadNodeWill === true || (prev?.took ?? false),
      status: change.status ? JSON.stringify(change.status) : (prev?.status ?? null),
      at: Math.max(now, prev?.at ?? 0),
    });
    this.counters.changes++;
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.scheduled && !this.running) {
        // Gather first: every connect of this poll phase joins the same commit.
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          void this.drain();
        });
      }
    });
  }

  /** Changes waiting or being written. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Writes every change made so far (joins a commit already running). A failed commit is reported to its callers, not here. */
  async flush(): Promise<void> {
    await this.drain();
  }

  private drain(): Promise<void> {
    if (!this.running && this.pending.size > 0) {
      this.running = (async () => {
        await Promise.resolve(); // so that `finally` below runs after `this.running` is assigned
        try {
          while (this.pending.size > 0) {
            const rows = [...this.pending.values()];
            const waiters = this.waiters;
            this.pending = new Map();
            this.waiters = [];
            try {
              await this.write(rows);
              this.counters.commits++;
              this.counters.rows += rows.length;
              for (const w of waiters) w.resolve();
            } catch (err) {
              for (const w of waiters) w.reject(err);
            }
          }
        } finally {
          this.running = null;
        }
      })();
    }
    return this.running ?? Promise.resolve();
  }
}

/** A gateway as the registry knows it. */
export interface GatewayRow {
  id: string;
  online: boolean;
  firstSeen: number;
  lastSeen: number;
  status: GatewayStatus | null;
}

/** A stored event. */
export interface StoredEvent extends GatewayEvent {
  gateway: string;
  receivedAt: number;
}
