/**
 * IOC data routes of the HTTP API beyond latest values and raw history:
 * downsampled history (min/max/avg per bucket) and alarms (list and
 * operator acknowledgement). Route schemas validate requests and feed the
 * OpenAPI document.
 */
import type { FastifyInstance } from 'fastify';
import type { TelemetryPort } from './store/port.js';

const ID = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;
const VALUE = { anyOf: [{ type: 'number' }, { type: 'boolean' }, { type: 'string' }, { type: 'null' }] } as const;
const ERROR = { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } } as const;
/** Most buckets one query may return. */
export const MAX_BUCKETS = 10_000;

/** An alarm as the API returns it. */
export const alarmSchema = {
  type: 'object',
  required: ['id', 'gateway', 'device', 'point', 'state', 'severity', 'message', 'raisedAt'],
  properties: {
    id: { type: 'integer' }, gateway: { type: 'string' }, device: { type: 'string' }, point: { type: 'string' },
    state: { enum: ['active', 'cleared'] }, severity: { enum: ['info', 'warning', 'critical'] },
    limit: { type: ['string', 'null'], description: 'high, low or equals' }, threshold: VALUE, value: VALUE, message: { type: 'string' },
    raisedAt: { type: 'integer', description: 'sample time of the reading that raised it, ms since the Unix epoch' },
    clearedAt: { type: ['integer', 'null'] }, clearValue: VALUE, clearMessage: { type: ['string', 'null'] },
    ackedAt: { type: ['integer', 'null'] }, ackedBy: { type: ['string', 'null'] },
    malformed: { type: 'array', items: { type: 'string' }, description: 'fields of the stored row that could not be read (data of an older version, or damaged), shown as null; absent when the row is sound' },
  },
} as const;
/** Latest sample time a query may name (year 3000, as the contract's reading ts). */
const MAX_TS = 32_503_680_000_000;

/** Adds the data routes to `app`. */
export function registerDataRoutes(app: FastifyInstance, deps: { store: TelemetryPort }): void {
  const { store } = deps;

  app.get<{ Querystring: { gateway: string; device: string; point: string; from?: number; to?: number; bucketMs: number } }>('/api/v1/readings/buckets', {
    schema: {
      summary: 'History of one point downsampled to min/max/avg per time bucket',
      tags: ['readings'],
      querystring: {
        type: 'object', additionalProperties: false, required: ['gateway', 'device', 'point', 'bucketMs'],
        properties: {
          gateway: ID, device: ID, point: ID,
          from: { type: 'integer', minimum: 0, maximum: MAX_TS, description: 'ms since the Unix epoch, inclusive; default 24 hours before to; buckets start here' },
          to: { type: 'integer', minimum: 0, maximum: MAX_TS, description: 'ms since the Unix epoch, inclusive; default now' },
          bucketMs: { type: 'integer', minimum: 1, maximum: 31_622_400_000, description: `bucket width in ms (at most 366 days); at most ${MAX_BUCKETS} buckets per query. Ranges older than raw retention are served from rollups (docs/operations.md)` },
        },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            from: { type: 'integer' }, to: { type: 'integer' }, bucketMs: { type: 'integer' },
            items: {
              type: 'array',
              description: 'buckets holding at least one good numeric (or bool as 0/1) reading, oldest first',
              items: { type: 'object', properties: { ts: { type: 'integer', description: 'bucket start' }, count: { type: 'integer' }, min: { type: 'number' }, max: { type: 'number' }, avg: { type: 'number' } } },
            },
          },
        },
        400: ERROR,
      },
    },
  }, async (req, reply) => {
    const to = req.query.to ?? Date.now();
    const from = req.query.from ?? to - 86_400_000;
    const { bucketMs } = req.query;
    if (from > to) return reply.status(400).send({ error: { code: 'HUB_ERR_BAD_REQUEST', message: `'from' (${from}) is after 'to' (${to}) (HUB_ERR_BAD_REQUEST)` } });
    if ((to - from) / bucketMs > MAX_BUCKETS) {
      return reply.status(400).send({ error: { code: 'HUB_ERR_BAD_REQUEST', message: `${Math.ceil((to - from) / bucketMs)} buckets asked for; at most ${MAX_BUCKETS}: widen bucketMs or narrow from..to (HUB_ERR_BAD_REQUEST)` } });
    }
    const items = await store.downsample({ gateway: req.query.gateway, device: req.query.device, point: req.query.point, from, to, bucketMs });
    return { from, to, bucketMs, items };
  });

  app.get<{ Querystring: { state: 'active' | 'cleared' | 'all'; gateway?: string; device?: string; since?: number; limit: number } }>('/api/v1/alarms', {
    schema: {
      summary: 'Threshold alarms raised by gateways (active first by default)',
      tags: ['alarms'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          state: { enum: ['active', 'cleared', 'all'], default: 'active' }, gateway: ID, device: ID,
          since: { type: 'integer', minimum: 0, maximum: MAX_TS, description: 'raised at or after, ms since the Unix epoch' },
          limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 500 },
        },
      },
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: alarmSchema } } }, 400: ERROR },
    },
  }, async (req) => ({ items: await store.alarms(req.query) }));

  app.post<{ Params: { id: number } }>('/api/v1/alarms/:id/ack', {
    config: { role: 'operator', action: 'alarm.ack' },
    schema: {
      summary: 'Acknowledge an alarm (operator); the first acknowledgement is kept',
      tags: ['alarms'],
      params: { type: 'object', properties: { id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } } },
      response: { 200: alarmSchema, 404: ERROR },
    },
  }, async (req, reply) => {
    const actor = req.principal?.actor ?? 'anonymous';
    if (!(await store.ackAlarm(req.params.id, actor))) return reply.status(404).send({ error: { code: 'HUB_ERR_NOT_FOUND', message: `no alarm ${req.params.id} (HUB_ERR_NOT_FOUND)` } });
    return (await store.alarms({ state: 'all', id: req.params.id }))[0];
  });
}
