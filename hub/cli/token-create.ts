/**
 * `ioc-edge token create --name NAME --role ROLE`: an API token for a person
 * or a system. Through the API (admin role), or with `--data-dir` directly
 * in the hub's registry on the hub machine — how the first admin token is
 * made. Either way the creation is audited and the token shown once.
 */
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isIocError } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import { AuditLog } from '../identity/audit-log.js';
import { IdentityService } from '../identity/identity-service.js';
import { IdentityStore, type ApiRole } from '../identity/identity-store.js';
import { RegistryDb } from '../registry/registry-db.js';
import { RegistryStore } from '../registry/registry-store.js';
import { API_HELP, API_OPTIONS, apiTarget, callApi } from './api-client.js';
import type { Command } from './command.js';
import { parse } from './parse.js';

const HELP = `Usage: ioc-edge token create --name NAME --role viewer|operator|admin [--data-dir DIR | API options]

Creates an API token. Roles: viewer (read), operator (viewer + claims,
gateway site/location, audit log), admin (operator + revoke gateways,
tokens, MQTT accounts). The token is printed once.

  --data-dir DIR  write straight into the hub's registry in DIR (on the hub
                  machine; how the first admin token is made)
${API_HELP}`;

/** Creates a token in a hub data folder without the API (bootstrap). */
export async function createTokenLocally(dataDir: string, name: string, role: ApiRole): Promise<{ id: string; token: string }> {
  await mkdir(dataDir, { recursive: true });
  const db = new RegistryDb({ file: path.join(dataDir, 'registry.sqlite'), logger: silentLogger() });
  await db.start();
  try {
    const store = new IdentityStore({ db });
    const identity = new IdentityService({ logger: silentLogger(), clock: db.clock, store, registry: new RegistryStore({ db }), audit: new AuditLog({ db }), disconnect: () => undefined });
    return await identity.createApiToken({ name, role }, { actor: `local:${os.userInfo().username}`, source: os.hostname() });
  } finally {
    await db.stop();
  }
}

export const tokenCreate: Command = {
  name: 'token create',
  summary: 'create an API token with a role (viewer, operator, admin)',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS, name: { type: 'string' }, role: { type: 'string' }, 'data-dir': { type: 'string' } }, HELP, io);
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
        ? await createTokenLocally(v['data-dir'], v.name, v.role as ApiRole)
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
