/**
 * Aedes's in-memory persistence (aedes-persistence 11) with the hub's bounds:
 *
 * - offline queues: at most `maxQueuedPerSession` QoS 1/2 messages and
 *   `maxQueuedBytesPerSession` payload bytes per persistent session; when
 *   full, the oldest are dropped and counted
 *   (`queueDropped`). The upstream queue is a private field, so the five
 *   outgoing methods are reimplemented here with the same semantics;
 * - quarantined payloads (quarantine-mark.ts) are never queued;
 * - subscriptions: only filters the broker granted are stored, each once
 *   (subscription-book.ts explains the quadratic cost this removes).
 *
 * Everything else (retained messages, wills, the subscription trie, QoS 2
 * incoming state) is the upstream implementation.
 */
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Client, Subscription } from 'aedes';
import type { BrokerLimitCounters } from './broker-limits.js';
import { isQuarantined } from './quarantine-mark.js';
import type { SubscriptionBook } from './subscription-book.js';

/** A queued packet (aedes-packet's shape, the fields used here). */
interface QueuedPacket {
  topic: string;
  payload: Buffer;
  brokerId?: string;
  brokerCounter?: number;
  messageId?: number;
  [k: string]: unknown;
}

/** The upstream class's public methods this file uses or overrides. */
interface MemoryPersistence {
  setup(broker: unknown): Promise<void>;
  addSubscriptions(client: Client, subs: Subscription[]): Promise<void>;
}

const require = createRequire(import.meta.url);
const Upstream = require('aedes-persistence/asyncPersistence.js') as new (opts?: object) => MemoryPersistence;
const Packet = require('aedes-packet') as new (p: object, broker?: unknown) => QueuedPacket;

/** Settings of {@link BoundedPersistence}. */
export interface BoundedPersistenceOptions {
  maxQueuedPerSession: number;
  maxQueuedBytesPerSession: number;
  book: SubscriptionBook;
  counters: BrokerLimitCounters;
  /** Called when a session's queue first overflows (then once per 1,000 drops): for a log line. */
  onDrop?: (clientId: string, dropped: number) => void;
}

/** Memory persistence with bounded offline queues and only granted subscriptions stored. */
export class BoundedPersistence extends Upstream {
  private readonly outgoing = new Map<string, QueuedPacket[]>();
  /** Payload bytes per queue (kept beside it: summing on each enqueue would be quadratic). */
  private readonly queuedBytes = new Map<string, number>();
  private readonly dropsBySession = new Map<string, number>();

  constructor(private readonly opts: BoundedPersistenceOptions) {
    super({});
  }

  override async addSubscriptions(client: Client, subs: Subscription[]): Promise<void> {
    const fresh = this.opts.book.toPersist(client, subs);
    if (fresh.length > 0) await super.addSubscriptions(client, fresh);
  }

  private enqueue(clientId: string, packet: QueuedPacket): void {
    if (isQuarantined(packet.payload)) return;
    let q = this.outgoing.get(clientId);
    if (!q) {
      q = [];
      this.outgoing.set(clientId, q);
    }
    const size = packet.payload?.length ?? 0;
    let bytes = (this.queuedBytes.get(clientId) ?? 0) + size;
    let drop = Math.max(0, q.length - this.opts.maxQueuedPerSession + 1);
    for (let i = 0; i < drop; i++) bytes -= q[i]!.payload?.length ?? 0;
    while (drop < q.length && bytes > this.opts.maxQueuedBytesPerSession) bytes -= q[drop++]!.payload?.length ?? 0;
    this.queuedBytes.set(clientId, bytes);
    if (drop > 0) {
      q.splice(0, drop);
      this.opts.counters.queueDropped += drop;
      const n = (this.dropsBySession.get(clientId) ?? 0) + drop;
      this.dropsBySession.set(clientId, n);
      if (n === drop || Math.floor(n / 1000) !== Math.floor((n - drop) / 1000)) this.opts.onDrop?.(clientId, n);
    }
    q.push(new Packet(packet));
  }

  /** Messages dropped from this session's full queue since the hub started. */
  droppedFor(clientId: string): number {
    return this.dropsBySession.get(clientId) ?? 0;
  }

  /** Payload bytes queued for this session now. */
  queuedBytesFor(clientId: string): number {
    return this.queuedBytes.get(clientId) ?? 0;
  }

  /** Messages queued for this session now. */
  queuedFor(clientId: string): number {
    return this.outgoing.get(clientId)?.length ?? 0;
  }

  async outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void> {
    this.enqueue(sub.clientId, packet);
  }

  async outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: QueuedPacket): Promise<void> {
    for (const s of subs) this.enqueue(s.clientId, packet);
  }

  /** Same as upstream: records the message id given to a queued packet when it is sent. */
  async outgoingUpdate(client: Client, packet: QueuedPacket): Promise<void> {
    const q = this.outgoing.get(client.id) ?? [];
    for (let i = 0; i < q.length; i++) {
      const temp = q[i]!;
      if (temp.brokerId === packet.brokerId) {
        if (temp.brokerCounter === packet.brokerCounter) {
          temp.messageId = packet.messageId;
          return;
        }
      } else if (temp.messageId === packet.messageId) {
        q[i] = packet;
        return;
      }
    }
    // Upstream throws 'no such packet', and Aedes then closes the client. Here a packet
    // dropped from a full queue lands here while it is being sent: send it anyway.
  }

  async outgoingClearMessageId(client: Client, packet: QueuedPacket): Promise<QueuedPacket | undefined> {
    const q = this.outgoing.get(client.id);
    if (!q) return undefined;
    for (let i = 0; i < q.length; i++) {
      if (q[i]!.messageId === packet.messageId) {
        const [removed] = q.splice(i, 1);
        this.queuedBytes.set(client.id, (this.queuedBytes.get(client.id) ?? 0) - (removed!.payload?.length ?? 0));
        if (q.length === 0) {
          this.outgoing.delete(client.id);
          this.queuedBytes.delete(client.id);
        }
        return removed;
      }
    }
    return undefined;
  }

  outgoingStream(client: Client): Readable {
    return Readable.from([...(this.outgoing.get(client.id) ?? [])]);
  }
}
