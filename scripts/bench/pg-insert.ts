/**
 * bench:pg-insert — how the PostgreSQL store should bulk-insert readings:
 * one INSERT … SELECT FROM unnest(arrays) (what hub/store/postgres/pg-commit.ts
 * does) against multi-row INSERT … VALUES with 5 parameters per row, into the
 * store's partitioned `readings` table, 50,000-row groups, in a scratch schema
 * that is dropped after. COPY is measured too when `psql` is on PATH (as
 * `\copy` from a file: the server side of COPY without a client library; the
 * store cannot use COPY for its commit anyway, since COPY cannot skip replayed
 * batches in the same statement).
 *
 *   npm run bench:pg-insert -- [--rows 50000] [--rounds 5]
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { silentLogger } from '../../lib/index.js';
import { migrate } from '../../hub/store/postgres/migrations.js';
import { PgPool } from '../../hub/store/postgres/pg-pool.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '50000' }, rounds: { type: 'string', default: '5' } } });
const ROWS = Number(values.rows);
const ROUNDS = Number(values.rounds);
const URL_ = process.env.IOC_EDGE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const schema = `bench_${process.pid}`;
const db = new PgPool({ url: URL_, schema }, silentLogger());
await migrate(db);
const day = Math.floor(Date.now() / 86_400_000) * 86_400_000;
await db.query(`CREATE TABLE readings_bench PARTITION OF readings FOR VALUES FROM (${day}) TO (${day + 86_400_000})`);
let base = day;
const group = (): { s: number[]; ts: number[]; v: string[]; f: number[] } => {
  const g = { s: [] as number[], ts: [] as number[], v: [] as string[], f: [] as number[] };
  for (let i = 0; i < ROWS; i++) {
    g.s.push(i % 500);
    g.ts.push(base + i);
    g.v.push(String(Math.sin(i) * 1000));
    g.f.push(0);
  }
  base += ROWS;
  return g;
};
const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rate = async (name: string, fn: (g: ReturnType<typeof group>) => Promise<void>): Promise<number> => {
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const g = group();
    const t0 = performance.now();
    await fn(g);
    rates.push(ROWS / ((performance.now() - t0) / 1000));
  }
  const m = median(rates);
  console.log(`${name.padEnd(28)} ${Math.round(m).toLocaleString('en')} rows/s (median of ${ROUNDS})`);
  return m;
};

const unnest = await rate('INSERT … SELECT unnest', async (g) => {
  await db.query('INSERT INTO readings(series, ts, value, svalue, flags) SELECT * FROM unnest($1::int[], $2::bigint[], $3::float8[], $4::text[], $5::int2[])', [g.s, g.ts, g.v, g.v.map(() => null), g.f]);
});
const values_ = await rate('INSERT … VALUES (5 params/row)', async (g) => {
  const per = Math.floor(65_535 / 5);
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    for (let i = 0; i < ROWS; i += per) {
      const n = Math.min(per, ROWS - i);
      const params: unknown[] = [];
      const tuples: string[] = [];
      for (let k = 0; k < n; k++) {
        const j = i + k;
        const b = params.length;
        tuples.push(`($${b + 1},$${b + 2},$${b + 3},$${b + 4},$${b + 5})`);
        params.push(g.s[j], g.ts[j], g.v[j], null, g.f[j]);
      }
      await c.query(`INSERT INTO readings(series, ts, value, svalue, flags) VALUES ${tuples.join(',')}`, params);
    }
    await c.query('COMMIT');
  } finally {
    c.release();
  }
});
let copy = 0;
try {
  execFileSync('psql', ['--version'], { stdio: 'ignore' });
  const file = path.join(tmpdir(), `bench-copy-${process.pid}.tsv`);
  copy = await rate('COPY (psql \\copy, server side)', async (g) => {
    writeFileSync(file, g.s.map((s, i) => `${s}\t${g.ts[i]}\t${g.v[i]}\t\\N\t0`).join('\n'));
    execFileSync('psql', [URL_, '-q', '-c', `\\copy ${schema}.readings(series, ts, value, svalue, flags) FROM '${file}'`], { stdio: ['ignore', 'ignore', 'inherit'] });
  });
  rmSync(file, { force: true });
} catch {
  console.log('COPY: psql not found, not measured');
}
const c = new pg.Client({ connectionString: URL_ });
await c.connect();
await c.query(`DROP SCHEMA ${schema} CASCADE`);
await c.end();
await db.end();
console.log(`unnest/VALUES ${(unnest / values_).toFixed(2)}${copy ? `, unnest/COPY ${(unnest / copy).toFixed(2)}` : ''} (loaded shared machine)`);
console.log(`BENCH pg-insert-unnest ${Math.round(unnest)} rows/s`);
