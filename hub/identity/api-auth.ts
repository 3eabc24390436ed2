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
 *
 * Failed logins (docs/security.md): a request without any token is answered
 * 401 but not counted (the console's signed-out page asks without one).
 * Wrong tokens count per (source address, token id) — the id is the public
 * part of `iet_<id>.<secret>` — and, ten times looser, per source address,
 * so guessing stays bounded while one client behind a shared address cannot
 * lock a correct token out. A token this process has verified before (its
 * SHA-256 is remembered, never stored) is checked even while its pair or
 * source is locked out: a correct token costs no scrypt to recognise.
 * The source address is `req.ip`, which honours the API's trusted proxies.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../lib/index.js';
import type { AuditPort } from '../store/state-ports.js';
import type { IdentityService } from './identity-service.js';
import type { ApiRole } from '../store/model/identity.js';
import type { LoginLimiter } from './rate-limiter.js';
import { RefusedCallAudit, truncateTarget, type RefusedAuditOptions } from './refused-audit.js';

/** The caller of an API request. */
export interface ApiPrincipal {
  actor: string;
  role: ApiRole;
  tokenId: string | null;
  /** The token's revocation epoch when it was checked (IdentityService.epoch), to notice a revocation later. */
  epoch?: number;
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
  audit: AuditPort;
  /** In memory on one node, in Redis on a cluster (redis-limiter.ts). */
  limiter: LoginLimiter;
  /** `open`: every caller is an anonymous admin (loopback tests and demos). */
  mode: 'required' | 'open';
  /** Aggregation of audit rows of refused calls (refused-audit.ts; defaults: 60 s window, 1,000 keys, 256-char targets). */
  refusedAudit?: RefusedAuditOptions;
}

/** The per-source bucket allows this many times the failures of a (source, token id) pair. */
export const SOURCE_FAILURE_FACTOR = 10;
/** Most token fingerprints remembered as verified. */
const GOOD_MAX = 10_000;
const TOKEN_ID = /^iet_([a-z2-7]{1,32})\./;

/** The public id of an API token (`iet_<id>.<secret>`), or `?` for anything else. */
export function tokenIdOf(token: string): string {
  return TOKEN_ID.exec(token)?.[1] ?? '?';
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
  /** Token id → SHA-256 of the whole token last verified correct (memory only). */
  const good = new Map<string, Buffer>();
  const actionOf = (req: FastifyRequest): string => req.routeOptions.config?.action ?? `${req.method} ${req.routeOptions.url ?? req.url}`;
  // Refused and failed calls: one row per (source, reason) per window plus a count, URL cut (issue 13 item 4).
  const refused = new RefusedCallAudit({ audit, logger, ...deps.refusedAudit });
  refused.start();
  app.addHook('onClose', async () => refused.stop());
  const record = async (req: FastifyRequest, outcome: 'ok' | 'denied' | 'error', detail: Record<string, unknown>): Promise<void> => {
    const entry = { actor: req.principal?.actor ?? 'unauthenticated', source: req.ip, action: actionOf(req), target: req.url, outcome, detail };
    if (outcome !== 'ok') return refused.refused(entry); // cuts the target itself
    await audit.record({ ...entry, target: truncateTarget(req.url, deps.refusedAudit?.maxTargetChars) }).catch((err: unknown) => logger.error({ err }, 'audit write failed'));
  };

  app.addHook('onRequest', async (req, reply) => {
    const url = req.routeOptions.url;
    if (url === undefined || PUBLIC.has(url)) return; // 404s and health checks
    if (req.routeOptions.config?.public === true && READ.has(req.method)) return;
    if (deps.mode === 'open') {
      req.principal = { actor: 'anonymous', role: 'admin', tokenId: null };
      return;
    }
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : '';
    // No token at all is not a guess (the console's signed-out page): refused, not counted.
    if (!token) return fail(reply, 401, 'HUB_ERR_UNAUTHORIZED', 'send an API token: Authorization: Bearer <token>');
    const id = tokenIdOf(token);
    const pairKey = `api:${req.ip}|${id}`;
    const sourceKey = `api:${req.ip}`;
    const fp = createHash('sha256').update(token).digest();
    const seen = good.get(id);
    const known = seen !== undefined && timingSafeEqual(seen, fp);
    if (!known) {
      const [pairWait, sourceWait] = await Promise.all([limiter.blockedFor(pairKey), limiter.blockedFor(sourceKey)]);
      const wait = Math.max(pairWait, sourceWait);
      if (wait > 0) {
        reply.header('retry-after', String(Math.ceil(wait / 1000)));
        return fail(reply, 429, 'HUB_ERR_RATE_LIMITED', `too many failed logins from ${req.ip}${pairWait > 0 && id !== '?' ? ` with token id ${id}` : ''}; retry in ${Math.ceil(wait / 1000)} s`);
      }
    }
    const row = await identity.verifyApiToken(token);
    if (!row) {
      if (known) good.delete(id);
      await Promise.all([limiter.fail(pairKey), limiter.fail(sourceKey, limiter.maxFailures * SOURCE_FAILURE_FACTOR)]);
      return fail(reply, 401, 'HUB_ERR_UNAUTHORIZED', 'API token is unknown or revoked');
    }
    if (!known) {
      if (good.size >= GOOD_MAX) good.delete(good.keys().next().value!);
      good.set(id, fp);
    }
    req.principal = { actor: `token:${row.id}/${row.name}`, role: row.role, tokenId: row.id, epoch: identity.epoch(`token:${row.id}`) };
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
