/**
 * `ioc-edge account create --kind consumer|service|integration --username NAME`: an MQTT
 * account for an IOC consumer (read-only: telemetry, status and events) or a
 * hub service (writes configuration and command topics), through the API
 * (admin role). The password is printed once.
 */
import { isIocError } from '../../contract/index.js';
import { API_HELP, API_OPTIONS, apiTarget, callApi } from './api-client.js';
import type { Command } from './command.js';
import { parse } from './parse.js';

const HELP = `Usage: ioc-edge account create --kind consumer|service --username NAME
       ioc-edge account create --type integration --username NAME --client-ids GLOBS
                               [--publish FILTERS] [--subscribe FILTERS]

Creates an MQTT account. consumer: may subscribe to ioc/v1/gw/+/telemetry,
status and events, never publish. service: may publish configuration and
command topics. Client ids must be NAME or NAME:anything.
integration (for IOC integration and generic MQTT tools): client ids matching
the comma-separated globs ('*' = any run, e.g. 'scada-*'), publishing to topics
matching --publish and subscribing inside --subscribe (comma-separated MQTT
filters). Outside ioc/… any topic; inside ioc/… at most what a hub service may.
--type is a synonym of --kind.

${API_HELP}`;

export const accountCreate: Command = {
  name: 'account create',
  summary: 'create an MQTT account for an IOC consumer or a hub service',
  async run(args, io) {
    const p = parse(args, {
      ...API_OPTIONS, kind: { type: 'string' }, type: { type: 'string' }, username: { type: 'string' },
      'client-ids': { type: 'string' }, publish: { type: 'string' }, subscribe: { type: 'string' },
    }, HELP, io);
    if ('exit' in p) return p.exit;
    const v = p.values;
    const kind = v.kind ?? v.type;
    if (!v.username || (kind !== 'consumer' && kind !== 'service' && kind !== 'integration')) {
      io.err.write(`need --username and --kind consumer|service|integration\n${HELP}\n`);
      return 2;
    }
    const list = (s: string | undefined): string[] => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    if (kind === 'integration' && !v['client-ids']) {
      io.err.write(`an integration account needs --client-ids (comma-separated globs, e.g. 'scada-*')\n${HELP}\n`);
      return 2;
    }
    if (kind !== 'integration' && (v['client-ids'] || v.publish || v.subscribe)) {
      io.err.write(`--client-ids, --publish and --subscribe are for --kind integration only\n${HELP}\n`);
      return 2;
    }
    const rules = kind === 'integration' ? { clientIds: list(v['client-ids']), publish: list(v.publish), subscribe: list(v.subscribe) } : undefined;
    try {
      const a = await callApi<{ username: string; password: string }>(apiTarget(v), 'POST', '/api/v1/accounts', { username: v.username, kind, ...(rules ? { rules } : {}) });
      io.out.write(`${kind} account ${a.username}\npassword (shown once): ${a.password}\n`);
      if (rules) io.out.write(`client ids: ${rules.clientIds.join(', ')}\npublish: ${rules.publish.join(', ') || '(nothing)'}\nsubscribe: ${rules.subscribe.join(', ') || '(nothing)'}\n`);
      return 0;
    } catch (e) {
      io.err.write(`${isIocError(e) ? e.message : String(e)}\n`);
      return 1;
    }
  },
};
