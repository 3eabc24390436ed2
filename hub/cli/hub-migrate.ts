/**
 * `ioc-edge hub migrate --store postgres://…`: brings a PostgreSQL store's
 * schema to the version this hub writes (hub/store/postgres/migrations.ts).
 * Idempotent; the hub also runs it at every start. Refuses a schema newer
 * than this hub knows (exit 1). SQLite stores migrate themselves at start.
 */
import { isIocError } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import { migrate, PG_SCHEMA_VERSION } from '../store/postgres/migrations.js';
import { parseStoreUrl, PgPool, redact } from '../store/postgres/pg-pool.js';
import type { Command } from './command.js';
import { storeOption } from './hub-run.js';
import { parse } from './parse.js';

const HELP = `Usage: ioc-edge hub migrate --store postgres://user@host:5432/database?schema=name

Creates or upgrades the hub's PostgreSQL schema to version ${PG_SCHEMA_VERSION}. Safe to run
again (and while hubs run: they serialise on a lock). The store may also come from
IOC_EDGE_HUB_STORE. SQLite stores need no command: the hub migrates them at start.`;

export const hubMigrate: Command = {
  name: 'hub migrate',
  summary: "create or upgrade the hub's PostgreSQL schema (idempotent)",
  async run(args, io) {
    const p = parse(args, { store: { type: 'string' } }, HELP, io);
    if ('exit' in p) return p.exit;
    const url = storeOption(p.values.store);
    if (!url) {
      io.err.write(`missing --store\n${HELP}\n`);
      return 2;
    }
    let pool: PgPool | null = null;
    try {
      const where = parseStoreUrl(url);
      if (where.kind !== 'postgres') {
        io.out.write(`${redact(url)}: SQLite stores are migrated by the hub at start; nothing to do\n`);
        return 0;
      }
      pool = new PgPool({ url: where.url, schema: where.schema, max: 1 }, silentLogger());
      const r = await migrate(pool);
      if (r.applied.length === 0) io.out.write(`schema '${pool.schema}' at ${pool.where} is at version ${r.to}: up to date\n`);
      for (const m of r.applied) io.out.write(`schema '${pool.schema}' at ${pool.where}: applied ${m.version} (${m.name})\n`);
      return 0;
    } catch (e) {
      io.err.write(`ioc-edge: hub migrate failed: ${isIocError(e) ? e.message : (e as Error).message}\n`);
      return 1;
    } finally {
      await pool?.end().catch(() => undefined);
    }
  },
};
