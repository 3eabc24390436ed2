/**
 * HTTP API authentication, roles and audit (a fastify extension, installed
 * before any route). Every request except `/healthz` and `/readyz` needs
 * `Authorization: Bearer <token>`; a route's `config.role` names the least
 * role it needs (default: `viewer` to read, `admin` to change anything).
 * Roles nest: viewer ⊂ operator ⊂ admin.
 *
 * Audit: services write the entry of each successful change themselves
 * (with what changed); this hook writes one for every state-changing call
 * that was refused or failed, and for any that succeeded without a service
 * entry — so every POST/PUT/PATCH/DELETE leaves a row, written before the
 * answer is sent.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../lib/index.js';
import type { AuditLog } from './audit-log.js';
import type { IdentityService } from './identity-service.js';
import type { ApiRole } from './identity-store.js';
import type { FailureLimiter } from './rate-limiter.js';

/** The caller of an API request. */
export interface ApiPrincipal {
  actor: string;
  role: ApiRole;
  tokenId: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook. */
    principal?: ApiPrincipal;
    /** Set by a handler once its service wrote the audit entry. */
    audited?: boolean;
  }
  interface FastifyContextConfig {
    /** Least role the route needs. */
    role?: ApiRole;
    /** Name of the action in the audit log (default: method and route). */
    action?: string;
    /** Served without a token (static console files; they hold no data). Only for GET routes. */
    public?: boolean;
  }
}

/** Dependencies of {@link installApiAuth}. */
export interface ApiAuthDeps {
  logger: Logger;
  identity: IdentityService;
  audit: AuditLog;
  limiter: FailureLimiter;
  /** `open`: every caller is an anonymous admin (loopback tests and demos). */
  mode: 'required' | 'open';
}

const RANK: Record<ApiRole, number> = { viewer: 0, operator: 1, admin: 2 };
const PUBLIC = new Set(['/healthz', '/readyz']);
const READ = new Set(['GET', 'HEAD', 'OPTIONS']);

/** True when `role` includes the rights of `needed`. */
export function hasRole(role: ApiRole, needed: ApiRole): boolean {
  return RANK[role] >= RANK[needed];
}

function fail(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.status(status).send({ error: { code, message: `${message} (${code})` } });
}

/** Installs the auth hook and the audit hook on `app`. Call before routes are added. */
export function installApiAuth(app: FastifyInstance, deps: ApiAuthDeps): void {
  const { identity, audit, limiter, logger } = deps;
  const actionOf = (req: FastifyRequest): string => req.routeOptions.config?.action ?? `${req.method} ${req.routeOptions.url ?? req.url}`;
  const record = async (req: FastifyRequest, outcome: 'ok' | 'denied' | 'error', detail: Record<string, unknown>): Promise<void> => {
    await audit.record({ actor: req.principal?.actor ?? 'unauthenticated', source: req.ip, action: actionOf(req), target: req.url, outcome, detail }).catch((err: unknown) => logger.error({ err }, 'audit write failed'));
  };

  app.addHook('onRequest', async (req, reply) => {
    const url = req.routeOptions.url;
    if (url === undefined || PUBLIC.has(url)) return; // 404s and health checks
    if (req.routeOptions.config?.public === true && READ.has(req.method)) return;
    if (deps.mode === 'open') {
      req.principal = { actor: 'anonymous', role: 'admin', tokenId: null };
      return;
    }
    const key = `api:${req.ip}`;
    const wait = limiter.blockedFor(key);
    if (wait > 0) {
      reply.header('retry-after', String(Math.ceil(wait / 1000)));
      return fail(reply, 429, 'HUB_ERR_RATE_LIMITED', `too many failed logins from ${req.ip}; retry in ${Math.ceil(wait / 1000)} s`);
    }
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : null;
    const row = token ? await identity.verifyApiToken(token) : null;
    if (!row) {
      limiter.fail(key);
      return fail(reply, 401, 'HUB_ERR_UNAUTHORIZED', token ? 'API token is unknown or revoked' : 'send an API token: Authorization: Bearer <token>');
    }
    req.principal = { actor: `token:${row.id}/${row.name}`, role: row.role, tokenId: row.id };
    const needed = req.routeOptions.config?.role ?? (READ.has(req.method) ? 'viewer' : 'admin');
    if (!hasRole(row.role, needed)) {
      return fail(reply, 403, 'HUB_ERR_FORBIDDEN', `role '${row.role}' may not ${req.method} ${url}; needs '${needed}'`);
    }
  });

  app.addHook('onSend', async (req, reply, payload) => {
    if (READ.has(req.method) || req.routeOptions.url === undefined || req.audited) return payload;
    const status = reply.statusCode;
    if (status >= 400) {
      let code: unknown;
      try {
        code = (JSON.parse(String(payload)) as { error?: { code?: string } }).error?.code;
      } catch {
        code = undefined;
      }
      await record(req, status === 401 || status === 403 || status === 429 ? 'denied' : 'error', { status, code: code ?? null });
    } else {
      await record(req, 'ok', { status });
    }
    return payload;
  });
}
