/**
 * `ioc-edge token create --name NAME --role ROLE`: an API token for a person
 * or a system. Through the API (admin role), or with `--data-dir` directly
 * in the hub's state on the hub machine — how the first admin token is made:
 * in the data directory's registry.sqlite, or with `--store postgres://…`
 * (or IOC_EDGE_HUB_STORE, as `hub run` reads it) in PostgreSQL, where the
 * hub looks for it. Either way the creation is audited and the token shown
 * once.
 */
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import { isIocError } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import { IdentityService } from '../identity/identity-service.js';
import type { ApiRole } from '../store/model/identity.js';
import { openStateStores } from '../store/state.js';
import { API_HELP, API_OPTIONS, apiTarget, callApi } from './api-client.js';
import type { Command } from './command.js';
import { parse } from './parse.js';

const HELP = `Usage: ioc-edge token create --name NAME --role viewer|operator|admin [--data-dir DIR [--store URL] | API options]

Creates an API token. Roles: viewer (read), operator (viewer + claims,
gateway site/location, audit log), admin (operator + revoke gateways,
tokens, MQTT accounts). The token is printed once.

  --data-dir DIR  write straight into the hub's registry in DIR (on the hub
                  machine; how the first admin token is made)
  --store URL     with --data-dir: the hub's store, as for 'hub run'
                  (postgres://…: the token goes into PostgreSQL; default
                  IOC_EDGE_HUB_STORE, else SQLite in DIR)
${API_HELP}`;

/** Creates a token in the hub's state without the API (bootstrap): SQLite in `dataDir`, or the PostgreSQL `store`. */
export async function createTokenLocally(dataDir: string, name: string, role: ApiRole, store?: string): Promise<{ id: string; token: string }> {
  await mkdir(dataDir, { recursive: true });
  const state = openStateStores({ dataDir, logger: silentLogger(), ...(store ? { store } : {}) });
  await state.start();
  try {
    const identity = new IdentityService({ logger: silentLogger(), store: state.identity, registry: state.registry, audit: state.audit, disconnect: () => undefined });
    return await identity.createApiToken({ name, role }, { actor: `local:${os.userInfo().username}`, source: os.hostname() });
  } finally {
    await state.stop();
  }
}

export const tokenCreate: Command = {
  name: 'token create',
  summary: 'create an API token with a role (viewer, operator, admin)',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS, name: { type: 'string' }, role: { type: 'string' }, 'data-dir': { type: 'string' }, store: { type: 'string' } }, HELP, io);
    if ('exit' in p) return p.exit;
    const v = p.values;
    if (!v.name || !v.role) {
      io.err.write(`missing ${[!v.name && '--name', !v.role && '--role'].filter(Boolean).join(', ')}\n${HELP}\n`);
      return 2;
    }
    if (!['viewer', 'operator', 'admin'].includes(v.role)) {
      io.err.write(`--role must be viewer, operator or admin\n`);
      return 2;
    }
    try {
      const t = v['data-dir']
        ? await createTokenLocally(v['data-dir'], v.name, v.role as ApiRole, v.store ?? (process.env.IOC_EDGE_HUB_STORE || undefined))
        : await callApi<{ id: string; token: string }>(apiTarget(v), 'POST', '/api/v1/tokens', { name: v.name, role: v.role });
      io.out.write(`token ${t.id} (${v.role}) for ${v.name}\n`);
      io.out.write(`token (shown once): ${t.token}\n`);
      return 0;
    } catch (e) {
      io.err.write(`${isIocError(e) ? e.message : String(e)}\n`);
      return 1;
    }
  },
};
