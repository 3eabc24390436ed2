/**
 * Identity routes of the HTTP API: claims (operator), API tokens and MQTT
 * accounts (admin), the audit log (operator), and `whoami`. Secrets appear
 * once, in the answer that creates them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isIocError, type ErrorCode } from '../../contract/index.js';
import type { AuditPort, IdentityPort } from '../store/state-ports.js';
import type { Actor, IdentityService } from './identity-service.js';
import { parseStoredRules } from './integration-rules.js';

/** HTTP status for an error code raised by a service. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  HUB_ERR_BAD_REQUEST: 400, HUB_ERR_UNAUTHORIZED: 401, HUB_ERR_FORBIDDEN: 403, HUB_ERR_NOT_FOUND: 404,
  HUB_ERR_GATEWAY_EXISTS: 409, HUB_ERR_CLAIM_USED: 409, HUB_ERR_RATE_LIMITED: 429,
};

/** Replies with an IocError's wire form and a fitting status; rethrows anything else. */
export function replyError(reply: FastifyReply, err: unknown): FastifyReply {
  if (!isIocError(err)) throw err;
  return reply.status(STATUS[err.code] ?? 500).send({ error: { code: err.code, message: err.message } });
}

/** The actor of a request, for services and the audit log. */
export function actorOf(req: FastifyRequest): Actor {
  return { actor: req.principal?.actor ?? 'anonymous', source: req.ip };
}

const ID = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;
const claimView = {
  type: 'object',
  properties: {
    id: { type: 'string' }, site: { type: 'string' }, gatewayId: { type: ['string', 'null'] }, note: { type: ['string', 'null'] },
    createdAt: { type: 'integer' }, createdBy: { type: 'string' }, expiresAt: { type: 'integer' },
    state: { enum: ['active', 'used', 'expired', 'revoked'] }, usedAt: { type: ['integer', 'null'] }, usedBy: { type: ['string', 'null'] }, revokedAt: { type: ['integer', 'null'] },
  },
} as const;

/** Dependencies of {@link registerIdentityRoutes}. */
export interface IdentityRoutesDeps {
  identity: IdentityService;
  store: IdentityPort;
  audit: AuditPort;
  /** Ids of connected MQTT clients of an account (to close them on revoke). */
  clientIds: (username: string) => string[];
  /** Called once an API token is revoked: ends what it still holds open (its live streams). */
  onTokenRevoked?: (tokenId: string) => void;
}

/** Adds the identity routes to `app`. */
export function registerIdentityRoutes(app: FastifyInstance, deps: IdentityRoutesDeps): void {
  const { identity, store, audit } = deps;
  // The service wrote the audit entry; mark it before the answer's onSend hook runs.
  const done = (req: FastifyRequest): FastifyRequest => {
    req.audited = true;
    return req;
  };

  app.get('/api/v1/whoami', async (req) => ({ actor: req.principal?.actor, role: req.principal?.role }));

  app.post<{ Body: { site: string; gatewayId?: string; ttlS?: number; note?: string } }>('/api/v1/claims', {
    config: { role: 'operator', action: 'claim.create' },
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['site'],
        properties: { site: { type: 'string', minLength: 1, maxLength: 128 }, gatewayId: ID, ttlS: { type: 'integer', minimum: 60, maximum: 7_776_000 }, note: { type: 'string', maxLength: 256 } },
      },
      response: { 201: { type: 'object', properties: { token: { type: 'string' }, claim: claimView } } },
    },
  }, async (req, reply) => {
    try {
      const c = await identity.createClaim(req.body, actorOf(req));
      done(req);
      return reply.status(201).send(c);
    } catch (err) {
      return replyError(reply, err);
    }
  });

  app.get<{ Querystring: { all?: boolean } }>('/api/v1/claims', {
    config: { role: 'operator' },
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { all: { type: 'boolean', default: false } } }, response: { 200: { type: 'object', properties: { items: { type: 'array', items: claimView } } } } },
  }, async (req) => ({ items: await identity.listClaims({ all: req.query.all ?? false }) }));

  app.post<{ Params: { id: string } }>('/api/v1/claims/:id/revoke', {
    config: { role: 'operator', action: 'claim.revoke' },
    schema: { params: { type: 'object', properties: { id: ID } }, response: { 200: claimView } },
  }, async (req, reply) => {
    try {
      const c = await identity.revokeClaim(req.params.id, actorOf(req));
      done(req);
      return c;
    } catch (err) {
      return replyError(reply, err);
    }
  });

  app.get('/api/v1/tokens', { config: { role: 'admin' } }, async () => ({
    items: (await store.listTokens()).map((t) => ({ id: t.id, name: t.name, role: t.role, createdAt: t.createdAt, createdBy: t.createdBy, revokedAt: t.revokedAt })),
  }));

  app.post<{ Body: { name: string; role: 'viewer' | 'operator' | 'admin' } }>('/api/v1/tokens', {
    config: { role: 'admin', action: 'token.create' },
    schema: { body: { type: 'object', additionalProperties: false, required: ['name', 'role'], properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, role: { enum: ['viewer', 'operator', 'admin'] } } } },
  }, async (req, reply) => {
    try {
      const tok = await identity.createApiToken(req.body, actorOf(req));
      done(req);
      return reply.status(201).send(tok);
    } catch (err) {
      return replyError(reply, err);
    }
  });

  app.post<{ Params: { id: string } }>('/api/v1/tokens/:id/revoke', { config: { role: 'admin', action: 'token.revoke' }, schema: { params: { type: 'object', properties: { id: ID } } } }, async (req, reply) => {
    try {
      await identity.revokeApiToken(req.params.id, actorOf(req));
      deps.onTokenRevoked?.(req.params.id);
      done(req);
      return { id: req.params.id, revoked: true };
    } catch (err) {
      return replyError(reply, err);
    }
  });

  app.get('/api/v1/accounts', { config: { role: 'admin' } }, async () => ({
    items: (await store.listPrincipals()).filter((p) => p.kind !== 'gateway').map((p) => ({ username: p.username, kind: p.kind, createdAt: p.createdAt, createdBy: p.createdBy, revokedAt: p.revokedAt, ...(p.kind === 'integration' ? { rules: parseStoredRules(p.rules) } : {}) })),
  }));

  app.post<{ Body: { username: string; kind: 'consumer' | 'service' | 'integration'; rules?: { clientIds: string[]; publish?: string[]; subscribe?: string[] } } }>('/api/v1/accounts', {
    config: { role: 'admin', action: 'account.create' },
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['username', 'kind'],
        properties: {
          username: ID, kind: { enum: ['consumer', 'service', 'integration'] },
          // integration only (issue 14 item 9): client id globs and topic patterns, checked against the ACL (integration-rules.ts)
          rules: {
            type: 'object', additionalProperties: false, required: ['clientIds'],
            properties: { clientIds: { type: 'array', items: { type: 'string' } }, publish: { type: 'array', items: { type: 'string' } }, subscribe: { type: 'array', items: { type: 'string' } } },
          },
        },
      },
    },
  }, async (req, reply) => {
    try {
      const acc = await identity.createAccount(req.body, actorOf(req));
      done(req);
      return reply.status(201).send(acc);
    } catch (err) {
      return replyError(reply, err);
    }
  });

  app.post<{ Params: { username: string } }>('/api/v1/accounts/:username/revoke', { config: { role: 'admin', action: 'account.revoke' }, schema: { params: { type: 'object', properties: { username: ID } } } }, async (req, reply) => {
    try {
      await identity.revokeAccount(req.params.username, actorOf(req), () => deps.clientIds(req.params.username));
      done(req);
      return { username: req.params.username, revoked: true };
    } catch (err) {
      return replyError(reply, err);
    }
  });

  app.get<{ Querystring: { actor?: string; action?: string; since?: number; limit: number } }>('/api/v1/audit', {
    config: { role: 'operator' },
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { actor: { type: 'string', maxLength: 200 }, action: { type: 'string', maxLength: 100 }, since: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 } },
      },
    },
  }, async (req) => ({ items: await audit.list(req.query) }));

  // Checks the audit log's hash chain; the head it returns is what to keep elsewhere (see audit-log.ts).
  app.get<{ Querystring: { head?: string } }>('/api/v1/audit/verify', {
    config: { role: 'operator' },
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { head: { type: 'string', pattern: '^[0-9]{1,15}:[0-9a-f]{64}$', description: 'a head recorded earlier, N:HASH' } } } },
  }, async (req) => {
    const [n, hash] = req.query.head ? req.query.head.split(':') : [];
    return audit.verify(n !== undefined && hash !== undefined ? { n: Number(n), hash } : undefined);
  });
}
