/**
 * `ioc-edge gateway revoke ID`: revokes a gateway's credential through the
 * hub API (admin role). The hub closes its connection at once and refuses
 * it from then on; re-installing it needs a claim bound to its id.
 */
import { isIocError } from '../../contract/index.js';
import { API_HELP, API_OPTIONS, apiTarget, callApi } from './api-client.js';
import type { Command } from './command.js';
import { parse } from './parse.js';

const HELP = `Usage: ioc-edge gateway revoke GATEWAY_ID

Revokes the gateway's credential: the hub disconnects it at once and refuses
it from then on. To put it (or a replacement) back, create a claim bound to
its id: ioc-edge claim create --site SITE --gateway GATEWAY_ID

${API_HELP}`;

export const gatewayRevoke: Command = {
  name: 'gateway revoke',
  summary: 'revoke a gateway: disconnect it now and keep it out',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS }, HELP, io, true);
    if ('exit' in p) return p.exit;
    const id = p.positionals[0];
    if (!id || p.positionals.length > 1) {
      io.err.write(`give one gateway id\n${HELP}\n`);
      return 2;
    }
    try {
      await callApi(apiTarget(p.values), 'POST', `/api/v1/gateways/${encodeURIComponent(id)}/revoke`);
      io.out.write(`gateway ${id} revoked and disconnected\n`);
      return 0;
    } catch (e) {
      io.err.write(`${isIocError(e) ? e.message : String(e)}\n`);
      return 1;
    }
  },
};
