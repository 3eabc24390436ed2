/**
 * Registry routes of the HTTP API: one gateway with its field devices, the
 * field device list, an operator's edit of site and location, and revoking
 * a gateway (admin; it is disconnected at once).
 */
import type { FastifyInstance } from 'fastify';
import { actorOf, replyError } from '../identity/api-routes.js';
import type { IdentityService } from '../identity/identity-service.js';
import { listGatewayViews, type GatewayViewSources } from './gateway-view.js';

const ID = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;

/** Dependencies of {@link registerRegistryRoutes}. */
export interface RegistryRoutesDeps extends GatewayViewSources {
  identity: IdentityService;
}

/** Adds the registry routes to `app`. */
export function registerRegistryRoutes(app: FastifyInstance, deps: RegistryRoutesDeps): void {
  const { identity, registry } = deps;

  app.get<{ Params: { id: string } }>('/api/v1/gateways/:id', { schema: { params: { type: 'object', properties: { id: ID } } } }, async (req, reply) => {
    const view = (await listGatewayViews(deps)).find((g) => g.id === req.params.id);
    if (!view) return reply.status(404).send({ error: { code: 'HUB_ERR_NOT_FOUND', message: `no gateway '${req.params.id}' (HUB_ERR_NOT_FOUND)` } });
    return { ...view, fieldDevices: await registry.listDevices({ gateway: req.params.id }) };
  });

  app.patch<{ Params: { id: string }; Body: { site?: string; location?: string } }>('/api/v1/gateways/:id', {
    config: { role: 'operator', action: 'gateway.update' },
    schema: {
      params: { type: 'object', properties: { id: ID } },
      body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { site: { type: 'string', minLength: 1, maxLength: 128 }, location: { type: 'string', maxLength: 256 } } },
    },
  }, async (req, reply) => {
    try {
      const g = await identity.updateGateway(req.params.id, req.body, actorOf(req));
      req.audited = true;
      return g;
    } catch (err) {
      return replyError(reply, err);
    }
  });

  app.post<{ Params: { id: string } }>('/api/v1/gateways/:id/revoke', { config: { role: 'admin', action: 'gateway.revoke' }, schema: { params: { type: 'object', properties: { id: ID } } } }, async (req, reply) => {
    try {
      await identity.revokeGateway(req.params.id, actorOf(req));
      req.audited = true;
      return { id: req.params.id, revoked: true };
    } catch (err) {
      return replyError(reply, err);
    }
  });

  app.get<{ Querystring: { gateway?: string; includeRemoved: boolean } }>('/api/v1/devices', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { gateway: ID, includeRemoved: { type: 'boolean', default: false } } } },
  }, async (req) => ({ items: await registry.listDevices({ ...(req.query.gateway !== undefined ? { gateway: req.query.gateway } : {}), includeRemoved: req.query.includeRemoved }) }));
}
