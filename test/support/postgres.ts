/**
 * Tests against a real PostgreSQL (address from IOC_EDGE_TEST_PG, default
 * postgres://postgres@127.0.0.1:5432/postgres). Each test gets its own
 * schema, dropped at teardown. Where no PostgreSQL answers the test is
 * skipped with one line saying what to start; under CI=true (`.ci/run`
 * starts PostgreSQL) a missing server is a failure.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Test } from 'tap';

/** The server tests use. */
export const PG_URL = process.env.IOC_EDGE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let answered: Promise<string | null> | null = null;

/** null when PostgreSQL answers, else why not. Asked once per process. */
export function pgProblem(): Promise<string | null> {
  answered ??= (async () => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return null;
    } catch (err) {
      return (err as Error).message || String((err as { code?: string }).code);
    } finally {
      await c.end().catch(() => undefined);
    }
  })();
  return answered;
}

const warned = { done: false };

/**
 * For tap's `{ skip }`: false when PostgreSQL answers; otherwise the reason
 * (printed once). Under CI=true it throws instead, failing the test file.
 */
export async function skipUnlessPostgres(): Promise<false | string> {
  const problem = await pgProblem();
  if (problem === null) return false;
  const line = `PostgreSQL does not answer at ${PG_URL.replace(/:[^:@/]*@/, ':***@')} (${problem}): start PostgreSQL 15 (systemctl start postgresql), or set IOC_EDGE_TEST_PG`;
  if (process.env.CI === 'true') throw new Error(`CI: ${line}`);
  if (!warned.done) {
    warned.done = true;
    process.stderr.write(`\n#### SKIPPED: ${line} ####\n\n`);
  }
  return `SKIPPED: ${line}`;
}

/** A fresh schema name (`t_<random>`), dropped with everything in it at teardown of `t`. */
export function pgSchema(t: Test, prefix = 't'): string {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    } finally {
      await c.end();
    }
  });
  return schema;
}

/** One connection for the test itself (closed at teardown), with `schema` on its search path. */
export async function pgClient(t: Test, schema?: string, applicationName = 'ioc-edge-test'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: PG_URL, application_name: applicationName, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  await c.connect();
  t.teardown(() => c.end().catch(() => undefined));
  return c;
}
