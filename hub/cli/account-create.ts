/**
 * `ioc-edge account create --kind consumer|service --username NAME`: an MQTT
 * account for an IOC consumer (read-only: telemetry, status and events) or a
 * hub service (writes configuration and command topics), through the API
 * (admin role). The password is printed once.
 */
import { isIocError } from '../../contract/index.js';
import { API_HELP, API_OPTIONS, apiTarget, callApi } from './api-client.js';
import type { Command } from './command.js';
import { parse } from './parse.js';

const HELP = `Usage: ioc-edge account create --kind consumer|service --username NAME

Creates an MQTT account. consumer: may subscribe to ioc/v1/gw/+/telemetry,
status and events, never publish. service: may publish configuration and
command topics. Client ids must be NAME or NAME:anything.

${API_HELP}`;

export const accountCreate: Command = {
  name: 'account create',
  summary: 'create an MQTT account for an IOC consumer or a hub service',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS, kind: { type: 'string' }, username: { type: 'string' } }, HELP, io);
    if ('exit' in p) return p.exit;
    const v = p.values;
    if (!v.username || (v.kind !== 'consumer' && v.kind !== 'service')) {
      io.err.write(`need --username and --kind consumer|service\n${HELP}\n`);
      return 2;
    }
    try {
      const a = await callApi<{ username: string; password: string }>(apiTarget(v), 'POST', '/api/v1/accounts', { username: v.username, kind: v.kind });
      io.out.write(`${v.kind} account ${a.username}\npassword (shown once): ${a.password}\n`);
      return 0;
    } catch (e) {
      io.err.write(`${isIocError(e) ? e.message : String(e)}\n`);
      return 1;
    }
  },
};
