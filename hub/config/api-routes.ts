/**
 * Remote configuration and command routes of the HTTP API. Operators push
 * configurations and send commands; viewers read versions, differences,
 * reports and the fleet view. A refused configuration answers 400 with the
 * problems as JSON pointers into the desired document:
 * `{error: {code, message, context: {problems: [{pointer, message}]}}}`.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { CONFIG_MAX_BYTES, isIocError, type ErrorCode } from '../../contract/index.js';
import { actorOf } from '../identity/api-routes.js';
import type { CommandService } from './command-service.js';
import type { ConfigPush, ConfigService, FleetState } from './config-service.js';

const ID = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;
const params = { type: 'object', properties: { id: ID } } as const;
const STATES = ['in-sync', 'pending', 'applying', 'failed', 'unreported', 'no-desired', 'diverged'];

const STATUS: Partial<Record<ErrorCode, number>> = {
  CONFIG_ERR_INVALID: 400, PROFILE_ERR_INVALID: 400, CONFIG_ERR_LOCAL_ONLY: 400, CONFIG_ERR_WRONG_GATEWAY: 400, HUB_ERR_BAD_REQUEST: 400,
  HUB_ERR_NOT_FOUND: 404, CONFIG_ERR_VERSION_CONFLICT: 409, CONFIG_ERR_TOO_LARGE: 413, HUB_ERR_GATEWAY_OFFLINE: 409, HUB_ERR_CMD_TIMEOUT: 504,
};

function fail(reply: FastifyReply, err: unknown): FastifyReply {
  if (!isIocError(err)) throw err;
  return reply.status(STATUS[err.code] ?? 500).send({ error: err.toJSON() });
}

/** Dependencies of {@link registerConfigRoutes}. */
export interface ConfigRoutesDeps {
  config: ConfigService;
  commands: CommandService;
}

/** Adds the configuration and command routes to `app`. */
export function registerConfigRoutes(app: FastifyInstance, deps: ConfigRoutesDeps): void {
  const { config, commands } = deps;

  app.post<{ Params: { id: string }; Body: ConfigPush }>('/api/v1/gateways/:id/config', {
    config: { role: 'operator', action: 'config.push' },
    bodyLimit: CONFIG_MAX_BYTES + 4096,
    schema: {
      params,
      body: {
        type: 'object', additionalProperties: false, required: ['config'],
        properties: {
          config: { type: 'object', description: 'gateway configuration (contract/schemas/gateway-config.schema.json) without local-only settings' },
          profiles: { type: 'array', maxItems: 64, items: { type: 'object' } },
          note: { type: 'string', maxLength: 500 },
          confirmWindowS: { type: 'integer', minimum: 1, maximum: 3600 },
          baseVersion: { type: 'integer', minimum: 0 },
        },
      },
    },
  }, async (req, reply) => {
    try {
      const { doc, published } = await config.push(req.params.id, req.body, actorOf(req));
      req.audited = true;
      return reply.status(201).send({ gateway: doc.gateway, version: doc.version, hash: doc.hash, pushedAt: doc.pushedAt, pushedBy: doc.pushedBy, published });
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get<{ Params: { id: string } }>('/api/v1/gateways/:id/config', { schema: { params } }, async (req, reply) => {
    try {
      const row = (await config.fleet({ gateway: req.params.id })).items[0];
      const desired = row?.desired ? await config.document(req.params.id) : null;
      return { ...row, document: desired };
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get<{ Params: { id: string }; Querystring: { limit: number } }>('/api/v1/gateways/:id/config/versions', {
    schema: { params, querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } } },
  }, async (req) => ({ items: await config.versions(req.params.id, req.query.limit) }));

  app.get<{ Params: { id: string; version: number } }>('/api/v1/gateways/:id/config/versions/:version', {
    schema: { params: { type: 'object', properties: { id: ID, version: { type: 'integer', minimum: 1 } } } },
  }, async (req, reply) => {
    try {
      return await config.document(req.params.id, req.params.version);
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get<{ Params: { id: string }; Querystring: { from?: number; to?: number } }>('/api/v1/gateways/:id/config/diff', {
    schema: { params, querystring: { type: 'object', additionalProperties: false, properties: { from: { type: 'integer', minimum: 0 }, to: { type: 'integer', minimum: 1 } } } },
  }, async (req, reply) => {
    try {
      return await config.diff(req.params.id, req.query.from, req.query.to);
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get<{ Params: { id: string }; Querystring: { limit: number } }>('/api/v1/gateways/:id/config/history', {
    schema: { params, querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } } },
  }, async (req) => ({ items: await config.history(req.params.id, req.query.limit) }));

  app.get<{ Querystring: { state?: FleetState } }>('/api/v1/config/fleet', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { state: { enum: STATES } } } },
  }, async (req) => config.fleet(req.query.state ? { state: req.query.state } : {}));

  app.post<{ Params: { id: string; name: string }; Body: { args?: Record<string, unknown>; timeoutMs?: number } | null }>('/api/v1/gateways/:id/commands/:name', {
    config: { role: 'operator', action: 'gateway.command' },
    schema: {
      params: { type: 'object', properties: { id: ID, name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,31}$' } } },
      body: { type: ['object', 'null'], additionalProperties: false, properties: { args: { type: 'object' }, timeoutMs: { type: 'integer', minimum: 100, maximum: 120000 } } },
    },
  }, async (req, reply) => {
    try {
      const result = await commands.send(req.params.id, req.params.name, req.body?.args ?? {}, { ...(req.body?.timeoutMs ? { timeoutMs: req.body.timeoutMs } : {}), by: actorOf(req) });
      req.audited = true;
      return result;
    } catch (err) {
      if (isIocError(err) && (err.code === 'HUB_ERR_GATEWAY_OFFLINE' || err.code === 'HUB_ERR_CMD_TIMEOUT')) req.audited = true;
      return fail(reply, err);
    }
  });
}
