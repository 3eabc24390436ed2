/**
 * GET /api/v1/cluster (issue 16 item 5): the hub nodes sharing this hub's
 * database, their load, and which node holds which singleton (nodes.ts,
 * lease.ts). Any node answers for all of them; `ioc-edge hub status`
 * (hub/cli/hub-status.ts) prints it. Operators may read it.
 */
import type { FastifyInstance } from 'fastify';
import { IocError } from '../../contract/index.js';
import { isUnavailable } from '../store/postgres/pg-pool.js';
import type { ClusterView } from './nodes.js';

const LOAD = { type: 'object', properties: { connections: { type: 'integer' }, readingsPerS: { type: 'number' } } } as const;

/** Adds the cluster status route to `app`. */
export function registerClusterRoutes(app: FastifyInstance, deps: { view: () => Promise<ClusterView> }): void {
  app.get('/api/v1/cluster', {
    config: { role: 'operator' },
    schema: {
      summary: 'Hub nodes, their load, and which node holds which singleton (retention, firmware rollouts …)',
      tags: ['cluster'],
      response: {
        200: {
          type: 'object',
          required: ['backend', 'self', 'nodes', 'singletons'],
          properties: {
            backend: { enum: ['postgres', 'sqlite'] },
            self: { type: 'string', description: 'the node that answered' },
            nodes: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  id: { type: 'string' }, nodeId: { type: 'string' }, bootId: { type: ['string', 'null'] }, host: { type: 'string' }, pid: { type: 'integer' }, version: { type: 'string' },
                  startedAt: { type: 'integer' }, lastSeen: { type: 'integer' }, alive: { type: 'boolean', description: 'heartbeat within three intervals, not stopped' },
                  stoppedAt: { type: ['integer', 'null'] }, load: LOAD, holds: { type: 'array', items: { type: 'string' } },
                },
              },
            },
            singletons: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  name: { type: 'string' }, holder: { type: ['string', 'null'] }, epoch: { type: ['integer', 'null'], description: 'fencing token of the current holder' },
                  expiresAt: { type: ['integer', 'null'] }, live: { type: 'boolean' },
                },
              },
            },
          },
        },
      },
    },
  }, async () => {
    try {
      return await deps.view();
    } catch (err) {
      // The database is away: 503 with the reason (api.ts), not a 500.
      if (isUnavailable(err)) throw new IocError('HUB_ERR_STORE_UNAVAILABLE', `cluster status needs PostgreSQL: ${(err as Error).message}; retry when it is back`, { cause: err });
      throw err;
    }
  });
}
