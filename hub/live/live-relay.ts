/**
 * The live stream across hub nodes (issue 16 item 3): what ingest commits on
 * one node reaches the SSE clients of every node. Each node publishes its
 * committed batches (not replays), gateway events and gateway changes on the
 * cluster's message bus (H4's mqemitter-redis, ClusterLink.mq, channels under
 * the cluster's key prefix) under `$SYS/ioc-edge/live/<relay id>`; a node
 * subscribes to the others' only while it has live clients, so a node
 * nobody watches does not read the cluster's whole telemetry.
 *
 * Local updates still reach local clients straight from the hub's event bus
 * (live-stream.ts); the relay skips its own messages when Redis echoes them.
 * Per-client bounds are the live stream's (a client that stops reading is
 * disconnected past `maxBufferedBytes`), whatever node the data came from.
 * Delivery is at most once: a message published while Redis is away is not
 * seen on the other nodes (the stream is live data; history comes from
 * /api/v1/readings, which reads PostgreSQL).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../lib/index.js';
import type { HubEventMap, HubEvents } from '../hub-events.js';

/** The part of an mqemitter (ClusterLink.mq) the relay uses. */
export interface LiveBus {
  on(topic: string, fn: (packet: { topic: string; payload: unknown }, done: () => void) => void, cb?: () => void): unknown;
  removeListener(topic: string, fn: (packet: { topic: string; payload: unknown }, done: () => void) => void, cb?: () => void): unknown;
  emit(packet: { topic: string; payload: unknown }, cb?: (err?: Error) => void): void;
}

/** Where remote updates go (the live stream's handlers). */
export interface LiveSink {
  batch(b: HubEventMap['batch'][0]): void;
  event(e: HubEventMap['event'][0]): void;
  gateway(g: HubEventMap['gateway'][0]): void;
}

/** What the live stream asks of a remote source (live-stream.ts `remote`). */
export interface RemoteLive {
  /** Starts delivering other nodes' updates to `sink` (the stream has clients). */
  open(sink: LiveSink): void;
  /** Stops delivering (the last client left, or the stream stops). */
  close(): void;
}

/** Dependencies of {@link LiveRelay}. */
export interface LiveRelayDeps {
  /** The cluster's bus; asked for when first used (ClusterLink.mq exists once the link has started). */
  bus: () => LiveBus;
  events: HubEvents;
  logger: Logger;
  /** This node's id (logs; part of the relay id). */
  nodeId: string;
}

const PREFIX = '$SYS/ioc-edge/live/';

type Wire = { k: 'batch'; d: HubEventMap['batch'][0] } | { k: 'event'; d: HubEventMap['event'][0] } | { k: 'gateway'; d: HubEventMap['gateway'][0] };

/** Publishes this node's live updates to the cluster and feeds the others' to the live stream. */
export class LiveRelay implements RemoteLive {
  /** Node id and a boot id: a restarted node never mistakes its predecessor's messages for its own. */
  readonly id: string;
  private sink: LiveSink | null = null;
  private running = false;
  private publishErrorLogged = false;
  /** Updates published, received from other nodes, and refused as malformed. */
  readonly counters = { published: 0, received: 0, malformed: 0 };

  constructor(private readonly deps: LiveRelayDeps) {
    this.id = `${deps.nodeId}.${randomBytes(3).toString('hex')}`;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.deps.events.on('batch', this.onBatch);
    this.deps.events.on('event', this.onEvent);
    this.deps.events.on('gateway', this.onGateway);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.deps.events.off('batch', this.onBatch);
    this.deps.events.off('event', this.onEvent);
    this.deps.events.off('gateway', this.onGateway);
    this.close();
  }

  /** True while other nodes' updates are being received. */
  get subscribed(): boolean {
    return this.sink !== null;
  }

  open(sink: LiveSink): void {
    if (this.sink) {
      this.sink = sink;
      return;
    }
    this.sink = sink;
    this.deps.bus().on(`${PREFIX}+`, this.onRemote);
    this.deps.logger.debug({ relay: this.id }, 'live relay: receiving other nodes\' updates');
  }

  close(): void {
    if (!this.sink) return;
    this.sink = null;
    this.deps.bus().removeListener(`${PREFIX}+`, this.onRemote);
  }

  private publish(msg: Wire): void {
    if (!this.running) return;
    this.counters.published++;
    this.deps.bus().emit({ topic: `${PREFIX}${this.id}`, payload: JSON.stringify(msg) }, (err) => {
      if (!err) {
        this.publishErrorLogged = false;
        return;
      }
      // Once per outage: the bus's own connections log Redis' state.
      if (this.publishErrorLogged) return;
      this.publishErrorLogged = true;
      this.deps.logger.warn({ err: err.message, code: 'HUB_ERR_CLUSTER_UNAVAILABLE' }, 'live relay: updates of this node do not reach the other nodes\' live streams until Redis answers');
    });
  }

  private readonly onBatch = (b: HubEventMap['batch'][0]): void => {
    if (b.duplicate) return;
    this.publish({ k: 'batch', d: { gateway: b.gateway, epoch: b.epoch, seq: b.seq, historical: b.historical, readings: b.readings, duplicate: false } });
  };

  private readonly onEvent = (e: HubEventMap['event'][0]): void => this.publish({ k: 'event', d: e });

  private readonly onGateway = (g: HubEventMap['gateway'][0]): void => this.publish({ k: 'gateway', d: g });

  private readonly onRemote = (packet: { topic: string; payload: unknown }, done: () => void): void => {
    try {
      if (packet.topic.slice(PREFIX.length) === this.id || !this.sink) return;
      const msg = JSON.parse(String(packet.payload)) as Wire;
      const sink = this.sink;
      if (msg.k === 'batch' && typeof msg.d?.gateway === 'string' && Array.isArray(msg.d.readings)) sink.batch(msg.d);
      else if (msg.k === 'event' && typeof msg.d?.gateway === 'string' && typeof msg.d.event === 'object' && msg.d.event !== null) sink.event(msg.d);
      else if (msg.k === 'gateway' && typeof msg.d?.gateway === 'string') sink.gateway(msg.d);
      else throw new Error(`unknown update kind '${String((msg as { k?: unknown }).k)}'`);
      this.counters.received++;
    } catch (err) {
      // Only hub nodes publish here (the ACL keeps clients off $SYS): a bad message is a bug or a version mix; never let it break the bus.
      this.counters.malformed++;
      if (this.counters.malformed === 1 || this.counters.malformed % 1000 === 0) this.deps.logger.warn({ err: (err as Error).message, topic: packet.topic, malformed: this.counters.malformed }, 'live relay: malformed update from another node ignored');
    } finally {
      done();
    }
  };
}
