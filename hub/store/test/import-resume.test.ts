/**
 * `hub import` resumes (issue 15 item 5): an import killed part way (SIGKILL
 * of the real CLI process, into SQLite and into PostgreSQL) leaves what it
 * wrote with a checkpoint; the hub refuses to start on that store; another
 * archive is refused there; the same command again resumes after the
 * checkpoint (`hub export` refuses it too), and the store then holds exactly the archive's rows (exported
 * again and compared table by table: nothing missing, nothing twice) with
 * the audit chain verified. On PostgreSQL, a connection cut mid-import ends
 * the command with HUB_ERR_IMPORT_INTERRUPTED, and the next run resumes.
 * PostgreSQL cases are skipped with one line where none answers.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { topics } from '../../../contract/index.js';
import { silentLogger, SqliteDb } from '../../../lib/index.js';
import { runCli } from '../../../test/support/cli.js';
import { PG_URL, pgClient, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { startHub } from '../../hub.js';
import { connectOk, mqttUrl, startSecureHub, tempDir } from '../../test/support.js';
import { provisionGateway } from '../../../gateway/identity/provision.js';
import { contents } from './archive-contents.js';

const skipPg = await skipUnlessPostgres();
const BIN = fileURLToPath(new URL('../../../bin/ioc-edge.js', import.meta.url));
const GW = 'gw-resume';
const BATCHES = 150;
const PER_BATCH = 2000;

// One source archive for every case: a SQLite hub with a provisioned gateway, tokens, an audit chain and 300,000 readings.
const root = tempDir(t, 'ioc-edge-resume-');
const source = path.join(root, 'source.ioc.gz');
const other = path.join(root, 'other.ioc.gz');
let total = 0;
let sourceRows: Map<string, string[]>;

t.before(async () => {
  const dir = path.join(root, 'src');
  const a = await startHub({ dataDir: dir, logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'required' } });
  try {
    const who = { actor: 'test-admin' };
    await a.identity.createApiToken({ name: 'admin', role: 'admin' }, who);
    const claim = await a.identity.createClaim({ site: 'depot' }, who);
    const prov = await provisionGateway({ hubUrl: mqttUrl(a), dataDir: path.join(root, 'gw'), claim: claim.token, gatewayId: GW, timeoutMs: 10_000 });
    for (let i = 0; i < 200; i++) await a.audit.record({ actor: 'test', action: 'test.entry', target: `thing:${i}`, outcome: 'ok', detail: { i } });
    const { default: mqtt } = await import('mqtt');
    const client = await mqtt.connectAsync(mqttUrl(a), { clientId: GW, username: prov.credential.username, password: prov.credential.password, reconnectPeriod: 0 });
    const now = Date.now();
    for (let seq = 1; seq <= BATCHES; seq++) {
      const readings = Array.from({ length: PER_BATCH }, (_, i) => ({ device: `d${i % 20}`, point: `p${i % 9}`, ts: now - 7_200_000 + seq * PER_BATCH + i, value: seq * 10_000 + i, quality: 'good' }));
      await client.publishAsync(topics.telemetry(GW), JSON.stringify({ v: 1, epoch: 'ep1', seq, readings }), { qos: 1 });
    }
    await client.endAsync();
  } finally {
    await a.stop();
  }
  const ex = await runCli(['hub', 'export', '--data-dir', dir, '--out', source, '--quiet']);
  if (ex.code !== 0) throw new Error(`export failed: ${ex.err}`);
  sourceRows = await contents(source);
  total = [...sourceRows.values()].reduce((n, rows) => n + rows.length, 0);
  // A second, different archive (a small hub of its own).
  const b = path.join(root, 'other-src');
  const h = await startHub({ dataDir: b, logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'required' } });
  await h.identity.createApiToken({ name: 'someone', role: 'viewer' }, { actor: 'test' });
  await h.stop();
  if ((await runCli(['hub', 'export', '--data-dir', b, '--out', other, '--quiet'])).code !== 0) throw new Error('export of the other hub failed');
});

/** Starts `ioc-edge hub import` as its own process and SIGKILLs it once `progress()` passes `at` rows. */
async function killPartWay(t: Test, storeArgs: string[], progress: () => Promise<number>, at: number): Promise<number> {
  const proc = spawn(process.execPath, [BIN, 'hub', 'import', ...storeArgs, '--in', source, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let err = '';
  proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = once(proc, 'exit');
  let seen = 0;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the import finished (exit ${proc.exitCode}) before it could be killed at ${at} rows; saw ${seen}: ${err}`);
    seen = await progress().catch(() => 0);
    if (seen >= at) break;
    await sleep(5);
  }
  proc.kill('SIGKILL');
  await exited;
  t.equal(proc.signalCode, 'SIGKILL', `the import process was killed with ${seen.toLocaleString('en')} of ${total.toLocaleString('en')} rows checkpointed`);
  return seen;
}

/** The store exported again holds exactly the source archive's rows, table by table. */
async function sameAsSource(t: Test, storeArgs: string[], name: string): Promise<void> {
  const back = path.join(root, `${name}-back.ioc.gz`);
  const ex = await runCli(['hub', 'export', ...storeArgs, '--out', back, '--quiet']);
  t.equal(ex.code, 0, ex.err);
  const got = await contents(back);
  t.same([...got.keys()].sort(), [...sourceRows.keys()].sort(), 'the same tables');
  for (const [table, rows] of sourceRows) {
    const mine = got.get(table) ?? [];
    t.equal(mine.length, rows.length, `${table}: ${rows.length} rows, none missing, none twice`);
    t.ok(mine.length === rows.length && rows.every((r, i) => r === mine[i]), `${table}: the same contents`);
  }
}

t.test('SQLite: an import killed part way resumes after its checkpoint; the hub refuses the store until then', async (t) => {
  const dir = path.join(tempDir(t, 'ioc-edge-resume-sq-'), 'hub');
  const store = ['--data-dir', dir];
  // The readings are in hub.sqlite, whose checkpoint is the furthest once they are being written.
  const progress = async (): Promise<number> => {
    const db = await SqliteDb.open(path.join(dir, 'hub.sqlite'));
    try {
      return (await db.get<{ rows: number }>('SELECT rows FROM import_progress WHERE id = 1'))?.rows ?? 0;
    } finally {
      await db.close();
    }
  };
  const killedAt = await killPartWay(t, store, progress, Math.floor(total / 2));

  await t.rejects(startHub({ dataDir: dir, logger: silentLogger(), mqttPort: 0, httpPort: 0 }), { code: 'HUB_ERR_IMPORT_UNFINISHED', message: /did not finish: run 'ioc-edge hub import' with the same archive again/ }, 'a hub does not start on part of an archive');
  t.match(await runCli(['hub', 'export', ...store, '--out', path.join(root, 'half.ioc.gz'), '--quiet']), { code: 1, err: /did not finish.*\(HUB_ERR_IMPORT_UNFINISHED\)/ }, 'part of an archive is not exported as if it were a hub');
  t.match(await runCli(['hub', 'import', ...store, '--in', other, '--quiet']), { code: 1, err: /an import of another archive .* did not finish \([\d,]+ rows written\).*\(HUB_ERR_IMPORT_TARGET\)/ }, 'another archive is refused while one is unfinished');

  const r = await runCli(['hub', 'import', ...store, '--in', source, '--quiet']);
  t.equal(r.code, 0, r.err);
  const at = Number(/resumed an interrupted import at row ([\d,]+)/.exec(r.out)?.[1]?.replace(/,/g, ''));
  t.ok(at >= killedAt && at < total, `resumed at row ${at} (at least the ${killedAt} seen before the kill, fewer than all ${total})`);
  t.match(r.out, /audit chain verified: \d+ entries/);
  await sameAsSource(t, store, 'sqlite');
  const hub = await startSecureHub(t, { dataDir: dir });
  t.ok((await hub.audit.verify()).ok, 'a hub starts on the finished store and its chain verifies');
});

t.test('PostgreSQL: killed part way, then a connection cut: each run resumes where the last stopped', { skip: skipPg }, async (t) => {
  const schema = pgSchema(t);
  const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const store = ['--store', url];
  const c = await pgClient(t);
  const progress = async (): Promise<number> => {
    const r = await c.query<{ rows: string }>(`SELECT rows FROM ${schema}.import_progress WHERE id = 1`);
    return Number(r.rows[0]?.rows ?? 0);
  };
  const killedAt = await killPartWay(t, store, progress, Math.floor(total / 3));
  const left = (await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.readings`)).rows[0]!.n;
  t.ok(Number(left) > 0, `what the killed run wrote stays (${left} readings)`);
  await t.rejects(startHub({ dataDir: tempDir(t, 'ioc-edge-resume-pgdir-'), store: url, logger: silentLogger(), mqttPort: 0, httpPort: 0 }), { code: 'HUB_ERR_IMPORT_UNFINISHED' }, 'a hub does not start on part of an archive');
  t.match(await runCli(['hub', 'export', ...store, '--out', path.join(root, 'half-pg.ioc.gz'), '--quiet']), { code: 1, err: /did not finish.*\(HUB_ERR_IMPORT_UNFINISHED\)/ }, 'and it is not exported');

  // Second run: its connection is cut part way (as when the database restarts).
  const cut = (async () => {
    for (let i = 0; i < 6000; i++) {
      if ((await progress()) >= Math.floor((total * 2) / 3)) {
        // This import's sessions only: other test files may be importing into their own schemas at the same time.
        const killed = await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [`ioc-edge-hub-import:${schema}`]);
        if ((killed.rowCount ?? 0) > 0) return true;
      }
      await sleep(5);
    }
    return false;
  })();
  const second = await runCli(['hub', 'import', ...store, '--in', source, '--quiet']);
  t.ok(await cut, 'the connection was cut');
  t.match(second, { code: 1, err: /stopped after [\d,]+ of [\d,]+ rows .*run the same command again to resume there.*\(HUB_ERR_IMPORT_INTERRUPTED\)/ }, 'the cut run says where it stopped and how to go on');
  const stoppedAt = await progress();
  t.ok(stoppedAt > killedAt && stoppedAt < total, `the checkpoint moved on to ${stoppedAt}`);

  const third = await runCli(['hub', 'import', ...store, '--in', source, '--quiet']);
  t.equal(third.code, 0, third.err);
  t.match(third.out, new RegExp(`resumed an interrupted import at row ${stoppedAt.toLocaleString('en')}:`), 'resumed at the checkpoint the cut run left');
  t.equal((await c.query<{ t: string | null }>(`SELECT to_regclass('${schema}.import_progress')::text AS t`)).rows[0]!.t, null, 'the checkpoint is gone once the import is verified');
  await sameAsSource(t, store, 'pg');
});
