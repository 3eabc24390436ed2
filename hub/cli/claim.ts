/**
 * `ioc-edge claim create|list|revoke`: one-time claim tokens for installing
 * gateways at a site, through the hub API (operator role).
 */
import { isIocError } from '../../contract/index.js';
import type { ClaimView } from '../identity/identity-service.js';
import { API_HELP, API_OPTIONS, apiTarget, callApi } from './api-client.js';
import type { Command, CommandIo } from './command.js';
import { parse, parseDuration } from './parse.js';

function fail(io: CommandIo, e: unknown): number {
  io.err.write(`${isIocError(e) ? e.message : String(e)}\n`);
  return 1;
}

const CREATE_HELP = `Usage: ioc-edge claim create --site SITE [--gateway ID] [--ttl DURATION] [--note TEXT]

Creates a one-time claim token for installing a gateway at SITE. Give the
token to the technician ('ioc-edge provision --claim TOKEN'); it works once,
expires after --ttl (e.g. 90m, 12h, 7d; default 7d) and can be revoked.
--gateway binds it to one gateway id (needed to replace an existing gateway).

${API_HELP}`;

export const claimCreate: Command = {
  name: 'claim create',
  summary: 'create a one-time claim token for installing a gateway at a site',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS, site: { type: 'string' }, gateway: { type: 'string' }, ttl: { type: 'string' }, note: { type: 'string' } }, CREATE_HELP, io);
    if ('exit' in p) return p.exit;
    const v = p.values;
    if (!v.site) {
      io.err.write(`missing --site\n${CREATE_HELP}\n`);
      return 2;
    }
    const ttlS = v.ttl === undefined ? undefined : parseDuration(v.ttl);
    if (ttlS !== undefined && !Number.isFinite(ttlS)) {
      io.err.write(`--ttl: '${v.ttl}' is not a duration (90m, 12h, 7d)\n`);
      return 2;
    }
    try {
      const r = await callApi<{ token: string; claim: ClaimView }>(apiTarget(v), 'POST', '/api/v1/claims', { site: v.site, ...(v.gateway ? { gatewayId: v.gateway } : {}), ...(ttlS !== undefined ? { ttlS } : {}), ...(v.note ? { note: v.note } : {}) });
      io.out.write(`claim ${r.claim.id} for site ${r.claim.site}${r.claim.gatewayId ? `, gateway ${r.claim.gatewayId}` : ''}, expires ${new Date(r.claim.expiresAt).toISOString()}\n`);
      io.out.write(`token (shown once, works once): ${r.token}\n`);
      return 0;
    } catch (e) {
      return fail(io, e);
    }
  },
};

const LIST_HELP = `Usage: ioc-edge claim list [--all]

Lists active claims (--all: also used, expired and revoked ones). Tokens are
never shown again.

${API_HELP}`;

export const claimList: Command = {
  name: 'claim list',
  summary: 'list claim tokens and their state',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS, all: { type: 'boolean' } }, LIST_HELP, io);
    if ('exit' in p) return p.exit;
    try {
      const r = await callApi<{ items: ClaimView[] }>(apiTarget(p.values), 'GET', `/api/v1/claims${p.values.all ? '?all=true' : ''}`);
      if (r.items.length === 0) io.out.write('no claims\n');
      for (const c of r.items) {
        io.out.write(`${c.id}  ${c.state.padEnd(7)}  site=${c.site}${c.gatewayId ? ` gateway=${c.gatewayId}` : ''}  expires=${new Date(c.expiresAt).toISOString()}${c.usedBy ? `  used by ${c.usedBy}` : ''}\n`);
      }
      return 0;
    } catch (e) {
      return fail(io, e);
    }
  },
};

const REVOKE_HELP = `Usage: ioc-edge claim revoke CLAIM_ID

Revokes an unused claim; a gateway holding it can no longer register.

${API_HELP}`;

export const claimRevoke: Command = {
  name: 'claim revoke',
  summary: 'revoke an unused claim token',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS }, REVOKE_HELP, io, true);
    if ('exit' in p) return p.exit;
    const id = p.positionals[0];
    if (!id || p.positionals.length > 1) {
      io.err.write(`give one claim id\n${REVOKE_HELP}\n`);
      return 2;
    }
    try {
      const c = await callApi<ClaimView>(apiTarget(p.values), 'POST', `/api/v1/claims/${encodeURIComponent(id)}/revoke`);
      io.out.write(`claim ${c.id} is ${c.state}\n`);
      return 0;
    } catch (e) {
      return fail(io, e);
    }
  },
};
