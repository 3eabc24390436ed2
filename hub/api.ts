/**
 * The hub's HTTP API (fastify; route schemas validate requests with ajv and
 * document responses). Version 1 lives under `/api/v1`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../lib/index.js';
import { proxiedHttpServer } from './api-proxy.js';
import type { ProxyProtocolOptions } from './broker/proxy-protocol.js';
import { boundQueryNumbers } from './query-numbers.js';
import { markOfflineStale } from './readings-stale.js';
import type { TelemetryPort } from './store/port.js';

/** Dependencies and settings of the {@link Api}. */
export interface ApiDeps {
  logger: Logger;
  store: TelemetryPort;
  host: string;
  port: number;
  /** Readiness: true once broker and store are up (and the store's database answers). */
  ready: () => boolean;
  /** Why not ready, when known (`PostgreSQL at … unreachable: …`): shown by GET /readyz. */
  notReadyReason?: () => string | undefined;
  /**
   * Reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For is
   * believed: `req.ip` is then the nearest address not in this list. Absent:
   * `req.ip` is the TCP peer and X-Forwarded-For is ignored.
   */
  trustProxy?: string[];
  /** Read a PROXY protocol (v1/v2) header from these load balancers first (api-proxy.ts). */
  proxyProtocol?: ProxyProtocolOptions;
  /** Serve HTTPS with this certificate and key instead of plain HTTP. */
  https?: { cert: Buffer; key: Buffer };
  /** Runs on the instance before the built-in routes: authentication hooks and further routes. */
  extend?: (app: FastifyInstance) => void;
  /** Gateway list merged with the registry (site, location, versions); default: the store's list. */
  listGateways?: () => Promise<Array<{ id: string }>>;
}

const ID = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;
const readingSchema = {
  type: 'object',
  required: ['gateway', 'device', 'point', 'ts', 'value', 'quality'],
  properties: {
    gateway: { type: 'string' }, device: { type: 'string' }, point: { type: 'string' },
    ts: { type: 'integer', description: 'ms since the Unix epoch' },
    value: { anyOf: [{ type: 'number' }, { type: 'boolean' }, { type: 'string' }, { type: 'null' }] },
    quality: { enum: ['good', 'bad', 'stale'] },
    stale: { type: 'boolean', description: 'latest values only: true when the gateway that sent it is offline (quality is as read; nothing newer can arrive until the gateway is back)' },
  },
} as const;
const errorSchema = { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } } as const;

/** The HTTP API service. */
export class Api {
  private app: FastifyInstance | null = null;

  constructor(private readonly deps: ApiDeps) {}

  /** The bound port (after start). */
  get port(): number {
    const addr = this.app?.server.address();
    return addr && typeof addr === 'object' ? addr.port : 0;
  }

  /** Builds the fastify instance with every route (exposed for inject-style use). */
  build(): FastifyInstance {
    const { store } = this.deps;
    const proxy = this.deps.proxyProtocol;
    const app = Fastify({
      ...(proxy
        ? { serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => proxiedHttpServer(handler, { proxy, ...(this.deps.https ? { https: this.deps.https } : {}), logger: this.deps.logger }) }
        : this.deps.https ? { https: this.deps.https } : {}),
      ...(this.deps.trustProxy?.length ? { trustProxy: [...this.deps.trustProxy] } : {}), loggerInstance: this.deps.logger as unknown as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), ajv: { customOptions: { allErrors: true } } });

    app.setErrorHandler((err: { statusCode?: number; validation?: unknown; message: string; code?: string }, _req, reply) => {
      if (err.code === 'HUB_ERR_STORE_UNAVAILABLE') {
        // The store's database is away (issue 15): say so, and when to ask again; not a server bug.
        void reply.status(503).header('retry-after', '5').send({ error: { code: err.code, message: err.message } });
        return;
      }
      const status = err.statusCode ?? 500;
      const code = err.validation ? 'HUB_ERR_BAD_REQUEST' : status === 404 ? 'HUB_ERR_NOT_FOUND' : status >= 500 ? 'HUB_ERR_STORE_IO' : 'HUB_ERR_BAD_REQUEST';
      if (status >= 500) this.deps.logger.error({ err }, 'api error');
      void reply.status(status).send({ error: { code, message: `${err.message} (${code})` } });
    });
    app.setNotFoundHandler((req, reply) => {
      void reply.status(404).send({ error: { code: 'HUB_ERR_NOT_FOUND', message: `no route ${req.method} ${req.url} (HUB_ERR_NOT_FOUND)` } });
    });

    boundQueryNumbers(app as unknown as FastifyInstance); // before any route: Infinity, 1e400 … answer 400 (query-numbers.ts)
    this.deps.extend?.(app as unknown as FastifyInstance);

    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      if (this.deps.ready()) return { status: 'ready' };
      const reason = this.deps.notReadyReason?.();
      return reply.status(503).send(reason && reason !== 'starting' ? { status: 'unavailable', reason } : { status: 'starting' });
    });

    app.get('/api/v1/gateways', {
      schema: {
        response: {
          200: {
            type: 'object',
            properties: {
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    id: { type: 'string' }, online: { type: 'boolean' }, lastSeen: { type: 'integer' }, firstSeen: { type: 'integer' },
                    version: { type: 'string' }, backlog: { type: 'object', additionalProperties: true },
                    devices: { type: 'object', additionalProperties: { type: 'string' } },
                    firmware: { type: 'string' }, site: { type: 'string' }, location: { type: 'string' }, hostname: { type: 'string' },
                    registeredAt: { type: 'integer' }, registeredBy: { type: 'string' }, revoked: { type: 'boolean' },
                  },
                },
              },
            },
          },
        },
      },
    }, async () => {
      if (this.deps.listGateways) return { items: await this.deps.listGateways() };
      const rows = await store.listGateways();
      return {
        items: rows.map((g) => ({
          id: g.id, online: g.online, lastSeen: g.lastSeen, firstSeen: g.firstSeen,
          ...(g.status?.version ? { version: g.status.version } : {}),
          ...(g.status?.backlog ? { backlog: g.status.backlog } : {}),
          ...(g.status?.devices ? { devices: g.status.devices } : {}),
        })),
      };
    });

    app.get<{ Querystring: { gateway?: string; device?: string; point?: string; limit?: number } }>('/api/v1/readings/latest', {
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { gateway: ID, device: ID, point: ID, limit: { type: 'integer', minimum: 1, maximum: 100000, default: 10000 } } },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: readingSchema } } }, 400: errorSchema },
      },
    }, async (req) => {
      const items = await store.latest(req.query);
      return { items: items.length > 0 ? markOfflineStale(items, await store.listGateways()) : items };
    });

    app.get<{ Querystring: { gateway: string; device: string; point: string; from?: number; to?: number; limit: number } }>('/api/v1/readings', {
      schema: {
        querystring: {
          type: 'object', additionalProperties: false, required: ['gateway', 'device', 'point'],
          properties: {
            gateway: ID, device: ID, point: ID,
            from: { type: 'integer', minimum: 0, description: 'ms since the Unix epoch, inclusive; default 1 hour ago' },
            to: { type: 'integer', minimum: 0, description: 'ms since the Unix epoch, inclusive; default now' },
            limit: { type: 'integer', minimum: 1, maximum: 100000, default: 10000 },
          },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: readingSchema } } }, 400: errorSchema },
      },
    }, async (req, reply) => {
      const to = req.query.to ?? Date.now();
      const from = req.query.from ?? to - 3_600_000;
      if (from > to) return reply.status(400).send({ error: { code: 'HUB_ERR_BAD_REQUEST', message: `'from' (${from}) is after 'to' (${to}) (HUB_ERR_BAD_REQUEST)` } });
      return { items: await store.history({ gateway: req.query.gateway, device: req.query.device, point: req.query.point, from, to, limit: req.query.limit }) };
    });

    app.get<{ Querystring: { gateway?: string; device?: string; type?: string; severity?: string; since?: number; limit: number } }>('/api/v1/events', {
      schema: {
        summary: 'Gateway events (alarms, device up/down, driver faults, outbox overflow…), newest first',
        querystring: {
          type: 'object', additionalProperties: false,
          properties: {
            gateway: ID, device: ID, severity: { enum: ['info', 'warning', 'critical'] },
            type: { type: 'string', pattern: '^[a-z][a-z0-9_.]{0,63}$', description: 'type prefix, e.g. alarm. or device.down' },
            since: { type: 'integer', minimum: 0, description: 'event time at or after, ms since the Unix epoch' },
            limit: { type: 'integer', minimum: 1, maximum: 10000, default: 100 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              items: {
                type: 'array',
                items: {
                  type: 'object', required: ['gateway', 'id', 'ts', 'type', 'severity', 'message'],
                  properties: {
                    v: { type: 'integer' }, gateway: { type: 'string' }, id: { type: 'string' }, ts: { type: 'integer' }, receivedAt: { type: 'integer' }, type: { type: 'string' },
                    severity: { enum: ['info', 'warning', 'critical'] }, device: { type: 'string' }, point: { type: 'string' }, code: { type: 'string' },
                    message: { type: 'string' }, data: { type: 'object', additionalProperties: true },
                  },
                },
              },
            },
          },
          400: errorSchema,
        },
      },
    }, async (req) => ({ items: await store.events(req.query) }));

    app.get<{ Querystring: { limit: number } }>('/api/v1/quarantine', {
      schema: { querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } } },
    }, async (req) => ({ items: await store.quarantined(req.query.limit) }));

    return app;
  }

  async start(): Promise<void> {
    this.app = this.build();
    await this.app.listen({ host: this.deps.host, port: this.deps.port });
  }

  async stop(): Promise<void> {
    const app = this.app;
    this.app = null;
    await app?.close();
  }
}
