/**
 * The live stream: Server-Sent Events (WHATWG HTML §9.2) at
 * `GET /api/v1/stream?gateway=&device=&point=&types=`, fed from the hub's
 * event bus once ingest has committed what it announces. Each filter takes
 * one id or a comma-separated list; a filter applies to the fields an
 * update has (a gateway-level event passes a device filter).
 *
 * Messages: `hello` (subscription live, with the filters), `readings`
 * (`{gateway, seq, historical, readings[]}` — the matching readings of one
 * committed batch), `event` (a gateway event, alarms included),
 * `gateway` (online/offline and status summary); a `: ping` comment every
 * `heartbeatMs` keeps proxies from closing an idle stream. Replays and, by
 * default, backlog (historical) batches are not streamed: the stream is
 * live data; history comes from /api/v1/readings. A client that stops
 * reading is disconnected once `maxBufferedBytes` wait for it, so one slow
 * consumer cannot grow the hub's memory. No resume (Last-Event-ID): after a
 * reconnect, read the latest values first, then follow the stream.
 *
 * Revocation: a stream belongs to the API token that opened it. Revoking the
 * token ends all of its streams at once ({@link LiveStream.closeToken}, called
 * by the revoke route) with a last `closed` message `{reason}`; a revocation
 * made any other way is noticed through the token's epoch at the next
 * heartbeat, and a token revoked while its stream was being opened is refused
 * the stream.
 *
 * On a cluster (issue 16) the stream of any node carries every node's
 * committed readings, events and gateway changes: live-relay.ts brings the
 * other nodes' through Redis while this stream has clients.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { GatewayEvent, GatewayStatus, Reading } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { HubEventMap, HubEvents } from '../hub-events.js';
import type { LiveSink, RemoteLive } from './live-relay.js';

/** The kinds of update a client may ask for. */
export const STREAM_TYPES = ['readings', 'events', 'gateways'] as const;
type StreamType = (typeof STREAM_TYPES)[number];

interface Filter {
  gateway: Set<string> | null;
  device: Set<string> | null;
  point: Set<string> | null;
  types: Set<StreamType>;
  historical: boolean;
}

interface Client {
  res: ServerResponse;
  filter: Filter;
  actor: string;
  /** The API token that opened the stream, and its epoch then (null: open hub). */
  tokenId: string | null;
  epoch: number;
}

/** Dependencies of {@link LiveStream}. */
export interface LiveStreamDeps {
  events: HubEvents;
  logger: Logger;
  /** Comment line interval (ms). Default 15 s. */
  heartbeatMs?: number;
  /** Bytes allowed to wait for one client before it is disconnected. Default 4 MiB. */
  maxBufferedBytes?: number;
  /** Current revocation epoch of an API token (IdentityService.epoch(`token:ID`)); a change ends its streams. */
  tokenEpoch?: (tokenId: string) => number;
  /**
   * Other hub nodes' updates (a cluster: live-relay.ts), opened while this
   * stream has clients; they pass the same filters and per-client bounds.
   */
  remote?: RemoteLive;
}

const LIST = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(,[A-Za-z0-9][A-Za-z0-9_.-]{0,63})*$' } as const;
const set = (v: string | undefined): Set<string> | null => (v === undefined ? null : new Set(v.split(',')));
const pass = (s: Set<string> | null, v: string | undefined): boolean => s === null || v === undefined || s.has(v);

/** The SSE live stream service: register its route, then start it. */
export class LiveStream {
  private readonly clients = new Set<Client>();
  private heartbeat: NodeJS.Timeout | null = null;
  private listening = false;
  /** Updates written and clients dropped for not reading, since start. */
  readonly counters = { messages: 0, dropped: 0, connections: 0 };

  constructor(private readonly deps: LiveStreamDeps) {}

  /** Clients connected now. */
  get clientCount(): number {
    return this.clients.size;
  }

  /** Adds `GET /api/v1/stream` to `app` (before it is started). */
  register(app: FastifyInstance): void {
    app.get<{ Querystring: { gateway?: string; device?: string; point?: string; types?: string; historical: boolean } }>('/api/v1/stream', {
      schema: {
        summary: 'Live readings, events and gateway changes as Server-Sent Events (text/event-stream)',
        description: 'Messages: hello, readings {gateway, seq, historical, readings[]}, event {gateway, ...event}, gateway {gateway, online, status}, closed {reason} (last message when the token is revoked). Filters take one id or a comma-separated list. A `: ping` comment is sent every 15 s.',
        tags: ['live'],
        querystring: {
          type: 'object', additionalProperties: false,
          properties: {
            gateway: LIST, device: LIST, point: LIST,
            types: { type: 'string', pattern: `^(${STREAM_TYPES.join('|')})(,(${STREAM_TYPES.join('|')}))*$`, description: 'default: readings,events,gateways' },
            historical: { type: 'boolean', default: false, description: 'also stream backlog batches a gateway drains after an outage' },
          },
        },
        produces: ['text/event-stream'],
      },
    }, async (req, reply) => {
      const q = req.query;
      const filter: Filter = {
        gateway: set(q.gateway), device: set(q.device), point: set(q.point),
        types: new Set((q.types?.split(',') ?? STREAM_TYPES) as StreamType[]), historical: q.historical,
      };
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.socket?.setNoDelay(true);
      const client: Client = { res, filter, actor: req.principal?.actor ?? 'anonymous', tokenId: req.principal?.tokenId ?? null, epoch: req.principal?.epoch ?? 0 };
      if (this.revoked(client)) {
        this.end(client, 'token revoked');
        return;
      }
      this.clients.add(client);
      this.counters.connections++;
      if (this.clients.size === 1 && this.listening) this.deps.remote?.open(this.sink);
      res.on('close', () => this.forget(client));
      this.send(client, 'hello', JSON.stringify({ ts: Date.now(), filter: { gateway: q.gateway ?? null, device: q.device ?? null, point: q.point ?? null, types: [...filter.types], historical: filter.historical } }), 'retry: 2000\n');
    });
  }

  async start(): Promise<void> {
    if (this.listening) return;
    this.listening = true;
    this.deps.events.on('batch', this.onBatch);
    this.deps.events.on('event', this.onEvent);
    this.deps.events.on('gateway', this.onGateway);
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) {
        if (this.revoked(c)) this.end(c, 'token revoked');
        else this.write(c, ': ping\n\n');
      }
    }, this.deps.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
  }

  /** Ends every stream (so the HTTP server can close) and detaches from the bus. */
  async stop(): Promise<void> {
    this.listening = false;
    this.deps.events.off('batch', this.onBatch);
    this.deps.events.off('event', this.onEvent);
    this.deps.events.off('gateway', this.onGateway);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    for (const c of this.clients) c.res.end();
    this.clients.clear();
    this.deps.remote?.close();
  }

  /** Where other nodes' updates enter (the same handlers as this node's own). */
  private readonly sink: LiveSink = { batch: (b) => this.onBatch(b), event: (e) => this.onEvent(e), gateway: (g) => this.onGateway(g) };

  /** Drops a client; the last one gone closes the remote feed. */
  private forget(c: Client): void {
    this.clients.delete(c);
    if (this.clients.size === 0) this.deps.remote?.close();
  }

  /**
   * Ends every open stream of an API token at once (its revocation), each with
   * a last `closed` message. Returns how many were ended.
   */
  closeToken(tokenId: string, reason = 'token revoked'): number {
    let n = 0;
    for (const c of this.clients) {
      if (c.tokenId !== tokenId) continue;
      this.end(c, reason);
      n++;
    }
    if (n > 0) this.deps.logger.info({ token: tokenId, streams: n, reason }, 'live streams of a revoked token ended');
    return n;
  }

  private revoked(c: Client): boolean {
    return c.tokenId !== null && this.deps.tokenEpoch !== undefined && this.deps.tokenEpoch(c.tokenId) !== c.epoch;
  }

  private end(c: Client, reason: string): void {
    this.forget(c);
    if (c.res.writableEnded) return;
    this.send(c, 'closed', JSON.stringify({ reason }));
    c.res.end();
  }

  private readonly onBatch = (b: HubEventMap['batch'][0]): void => {
    if (b.duplicate || this.clients.size === 0) return;
    let all: string | null = null;
    for (const c of this.clients) {
      const f = c.filter;
      if (!f.types.has('readings') || (b.historical && !f.historical) || !pass(f.gateway, b.gateway)) continue;
      let data: string;
      if (f.device === null && f.point === null) {
        all ??= JSON.stringify({ gateway: b.gateway, seq: b.seq, historical: b.historical, readings: b.readings });
        data = all;
      } else {
        const readings: Reading[] = b.readings.filter((r) => pass(f.device, r.device) && pass(f.point, r.point));
        if (readings.length === 0) continue;
        data = JSON.stringify({ gateway: b.gateway, seq: b.seq, historical: b.historical, readings });
      }
      this.send(c, 'readings', data);
    }
  };

  private readonly onEvent = ({ gateway, event }: { gateway: string; event: GatewayEvent }): void => {
    let data: string | null = null;
    for (const c of this.clients) {
      const f = c.filter;
      if (!f.types.has('events') || !pass(f.gateway, gateway) || !pass(f.device, event.device) || !pass(f.point, event.point)) continue;
      data ??= JSON.stringify({ gateway, ...event });
      this.send(c, 'event', data);
    }
  };

  private readonly onGateway = ({ gateway, online, status }: { gateway: string; online?: boolean; status?: GatewayStatus }): void => {
    let data: string | null = null;
    for (const c of this.clients) {
      if (!c.filter.types.has('gateways') || !pass(c.filter.gateway, gateway)) continue;
      data ??= JSON.stringify({
        gateway, ...(online === undefined ? {} : { online }),
        ...(status ? { status: { state: status.state, ts: status.ts, version: status.version, backlog: status.backlog, devices: status.devices } } : {}),
      });
      this.send(c, 'gateway', data);
    }
  };

  private send(c: Client, event: string, data: string, prefix = ''): void {
    this.counters.messages++;
    this.write(c, `${prefix}event: ${event}\ndata: ${data}\n\n`);
  }

  private write(c: Client, chunk: string): void {
    if (c.res.writableEnded) return;
    c.res.write(chunk);
    if (c.res.writableLength > (this.deps.maxBufferedBytes ?? 4 * 1024 * 1024)) {
      this.counters.dropped++;
      this.deps.logger.warn({ actor: c.actor, buffered: c.res.writableLength }, 'live stream client is not reading; disconnected');
      this.forget(c);
      c.res.destroy();
    }
  }
}
