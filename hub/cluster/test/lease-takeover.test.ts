/**
 * Singleton takeover across processes (issue 16 item 2): node 1 is a child
 * process (lease-child.ts) holding the `waves` lease and driving a rollout in
 * stages (lease-model.ts); node 2 is this process, waiting. Killed mid-stage
 * (SIGKILL after the stage's offers, before its advance), node 2 takes over
 * after the ttl, re-drives from the database and every stage advances
 * exactly once. Paused mid-stage (SIGSTOP past the ttl, then SIGCONT), the
 * ex-holder's late advance is refused by the fence (HUB_ERR_LEASE_LOST).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, pgClient, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { migrate } from '../../store/postgres/migrations.js';
import { PgPool } from '../../store/postgres/pg-pool.js';
import { LeaseRunner, PgLeases } from '../lease.js';
import { WAVE_DDL, waveWork } from './lease-model.js';

const skip = await skipUnlessPostgres();
const HERE = path.dirname(fileURLToPath(import.meta.url));
const TTL = 1500;
const STAGES = 5;

/** A migrated schema with the stand-in rollout r1 at stage 0 of 5. */
async function setup(t: Test): Promise<{ schema: string; db: PgPool; sql: Awaited<ReturnType<typeof pgClient>> }> {
  const schema = pgSchema(t, 'takeover');
  const db = new PgPool({ url: PG_URL, schema, max: 3 }, silentLogger());
  t.teardown(() => db.end());
  await migrate(db);
  const sql = await pgClient(t, schema);
  await sql.query(WAVE_DDL);
  await sql.query('INSERT INTO wave_rollout(id, stage, stages) VALUES ($1, 0, $2)', ['r1', STAGES]);
  return { schema, db, sql };
}

/** Starts node 1; resolves lines as they come. */
function child(t: Test, schema: string, mode: 'kill' | 'pause', stopAt: number): { proc: ChildProcess; line: (re: RegExp) => Promise<string> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'lease-child.ts'), PG_URL, schema, 'node-1', String(TTL), mode, String(stopAt)], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
    }
  });
  const seen: string[] = [];
  const waiting: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    seen.push(l);
    for (const w of waiting.splice(0)) {
      if (w.re.test(l)) w.resolve(l);
      else waiting.push(w);
    }
  });
  const line = (re: RegExp): Promise<string> => {
    const hit = seen.find((l) => re.test(l));
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      waiting.push({ re, resolve });
      proc.once('exit', (code, sig) => reject(new Error(`node 1 exited (${code ?? sig}) before printing ${re}; it printed: ${seen.join(' | ')}`)));
    });
  };
  return { proc, line };
}

/** Polls until `fn` is truthy. */
async function until<T>(fn: () => Promise<T>, ms = 30_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The local node (node 2): a runner for `waves` driving r1. */
function node2(t: Test, db: PgPool): LeaseRunner {
  const runner = new LeaseRunner({ leases: new PgLeases(db), holder: 'node-2', logger: silentLogger(), ttlMs: TTL });
  runner.singleton('waves', waveWork(db, 'r1'));
  t.teardown(() => runner.stop());
  return runner;
}

t.test('the holder SIGKILLed mid-stage: the other node takes over after the ttl and every stage advances once', { skip }, async (t) => {
  const { schema, db, sql } = await setup(t);
  const n1 = child(t, schema, 'kill', 2);
  t.equal(await n1.line(/^HOLD/), 'HOLD 1', 'node 1 holds the lease first');
  const runner = node2(t, db);
  await runner.start();
  t.equal(await n1.line(/^MID/), 'MID 2', 'node 1 offered stage 2 and stopped before advancing it');
  t.match(runner.states(), [{ held: false }], 'node 2 waits while node 1 holds');
  const exited = new Promise((r) => n1.proc.once('exit', r));
  n1.proc.kill('SIGKILL');
  await exited;

  await until(async () => (await sql.query('SELECT stage FROM wave_rollout')).rows[0].stage === STAGES);
  const log = (await sql.query('SELECT from_stage, holder, epoch FROM wave_log ORDER BY from_stage')).rows;
  t.same(log.map((r) => r.from_stage), [0, 1, 2, 3, 4], 'each stage advanced exactly once');
  t.same(log.map((r) => `${r.holder}:${r.epoch}`), ['node-1:1', 'node-1:1', 'node-2:2', 'node-2:2', 'node-2:2'], 'node 1 did stages 0-1; node 2 re-drove stage 2 on under epoch 2');
  const offers = (await sql.query('SELECT stage, holder, count(*)::int AS n FROM wave_offers GROUP BY stage, holder ORDER BY stage')).rows;
  t.same(offers.find((o) => o.stage === 2), { stage: 2, holder: 'node-1', n: 3 }, 'stage 2\'s offers made by node 1 before it died were kept (re-offering is idempotent)');
  t.match(runner.states(), [{ name: 'waves', held: true, epoch: 2 }]);
  const lease = (await sql.query("SELECT holder, epoch FROM leases WHERE name = 'waves'")).rows[0];
  t.same(lease, { holder: 'node-2', epoch: 2 });
});

t.test('the holder paused past its ttl: its late advance is fenced, the stage still advances once', { skip }, async (t) => {
  const { schema, db, sql } = await setup(t);
  const n1 = child(t, schema, 'pause', 1);
  t.equal(await n1.line(/^HOLD/), 'HOLD 1');
  const runner = node2(t, db);
  await runner.start();
  t.equal(await n1.line(/^MID/), 'MID 1');
  n1.proc.kill('SIGSTOP'); // a long GC pause or a frozen VM: no renewals
  await until(async () => (await sql.query('SELECT stage FROM wave_rollout')).rows[0].stage === STAGES);
  n1.proc.kill('SIGCONT');
  n1.proc.stdin!.write('go\n'); // node 1 goes on with its advance of stage 1 as if nothing happened
  t.equal(await n1.line(/^HELD/), 'HELD false', 'resumed, the ex-holder does not think it holds');
  t.equal(await n1.line(/^FENCED/), 'FENCED HUB_ERR_LEASE_LOST', 'and a write it makes anyway is refused by the fence');
  const log = (await sql.query('SELECT from_stage, holder FROM wave_log ORDER BY from_stage')).rows;
  t.same(log, [{ from_stage: 0, holder: 'node-1' }, { from_stage: 1, holder: 'node-2' }, { from_stage: 2, holder: 'node-2' }, { from_stage: 3, holder: 'node-2' }, { from_stage: 4, holder: 'node-2' }], 'stage 1 advanced once, by the new holder');
});
