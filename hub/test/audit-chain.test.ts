/**
 * The audit log's hash chain: every change or removal of an entry is found
 * and named, an older head detects removal of the newest entries, entries
 * written before the chain existed are sealed at start, and the check is
 * reachable through the API (operators) and `ioc-edge audit verify`.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { Writable } from 'node:stream';
import sqlite3 from 'sqlite3';
import { silentLogger } from '../../lib/index.js';
import { hubCommands } from '../cli/index.js';
import { AuditLog } from '../store/sqlite/audit-log.js';
import { RegistryDb } from '../store/sqlite/registry-db.js';
import { api, startSecureHub } from './support.js';

function raw(file: string, sql: string): Promise<void> {
  const db = new sqlite3.Database(file);
  return new Promise((resolve, reject) => db.exec(sql, (err) => db.close(() => (err ? reject(err) : resolve()))));
}

async function openLog(t: Test, file: string): Promise<{ audit: AuditLog; db: RegistryDb }> {
  const db = new RegistryDb({ file, logger: silentLogger() });
  await db.start();
  t.teardown(() => db.stop());
  return { audit: new AuditLog({ db }), db };
}

async function fill(audit: AuditLog, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) await audit.record({ actor: `op-${i}`, action: 'claim.create', target: `claim:c${i}`, outcome: 'ok', detail: { site: 'north', i } });
}

t.test('an untouched chain holds and names its head', async (t) => {
  const { audit } = await openLog(t, path.join(t.testdir(), 'registry.sqlite'));
  t.same(await audit.verify(), { ok: true, entries: 0, head: null }, 'an empty log holds');
  await fill(audit, 5);
  const v = await audit.verify();
  t.match(v, { ok: true, entries: 5, head: { n: 5, hash: /^[0-9a-f]{64}$/ } });
  t.equal((await audit.list({ limit: 1 }))[0]!.hash, v.head!.hash, 'list shows each entry\'s hash');
  t.same(await audit.verify(v.head!), v, 'the current head is found');
});

t.test('a changed entry, a removed entry and removed newest entries are each found', async (t) => {
  const dir = t.testdir();
  for (const [name, sql, bad] of [
    ['changed detail', `UPDATE audit SET detail = '{"site":"south","i":3}' WHERE n = 3`, { n: 3, reason: /changed/ }],
    ['changed actor', `UPDATE audit SET actor = 'someone-else' WHERE n = 1`, { n: 1, reason: /changed/ }],
    ['changed hash to hide it', `UPDATE audit SET outcome = 'denied', hash = '${'a'.repeat(64)}' WHERE n = 4`, { n: 4, reason: /changed/ }],
    ['removed entry', 'DELETE FROM audit WHERE n = 2', { n: 3, reason: /entries 2…2 are missing/ }],
  ] as const) {
    const file = path.join(dir, `${name.replace(/\W/g, '-')}.sqlite`);
    const { audit, db } = await openLog(t, file);
    await fill(audit, 5);
    await db.stop();
    await raw(file, sql);
    const again = await openLog(t, file);
    t.match(await again.audit.verify(), { ok: false, firstBad: bad }, name);
  }

  const file = path.join(dir, 'truncated.sqlite');
  const { audit, db } = await openLog(t, file);
  await fill(audit, 5);
  const head = (await audit.verify()).head!;
  await db.stop();
  await raw(file, 'DELETE FROM audit WHERE n >= 4');
  const again = await openLog(t, file);
  t.match(await again.audit.verify(), { ok: true, entries: 3 }, 'without a head kept elsewhere a shorter log still holds');
  t.match(await again.audit.verify(head), { ok: false, firstBad: { n: 5, reason: /ends at entry 3/ } }, 'the head kept elsewhere shows the newest entries were removed');
  // A rewritten log that reaches the same length does not match the kept head either.
  await again.audit.record({ actor: 'forger', action: 'claim.create', outcome: 'ok' });
  await again.audit.record({ actor: 'forger', action: 'claim.create', outcome: 'ok' });
  t.match(await again.audit.verify(head), { ok: false, firstBad: { n: 5, reason: /not the expected head/ } });
});

t.test('entries written before the chain existed are sealed at start, then protected', async (t) => {
  const file = path.join(t.testdir(), 'registry.sqlite');
  await raw(file, `CREATE TABLE audit (n INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT, outcome TEXT NOT NULL, source TEXT, detail TEXT);
    INSERT INTO audit(ts, actor, action, outcome) VALUES (1, 'old-1', 'token.create', 'ok'), (2, 'old-2', 'claim.create', 'ok');`);
  const { audit, db } = await openLog(t, file);
  await audit.record({ actor: 'new', action: 'claim.revoke', outcome: 'ok' });
  t.match(await audit.verify(), { ok: true, entries: 3, head: { n: 3 } }, 'old and new entries in one chain');
  await db.stop();
  await raw(file, "UPDATE audit SET actor = 'x' WHERE n = 2");
  t.match(await (await openLog(t, file)).audit.verify(), { ok: false, firstBad: { n: 2 } }, 'a sealed old entry is protected from then on');
});

t.test('API (operators) and CLI', async (t) => {
  const hub = await startSecureHub(t);
  const op = await hub.identity.createApiToken({ name: 'duty', role: 'operator' }, { actor: 'test' });
  const viewer = await hub.identity.createApiToken({ name: 'wall', role: 'viewer' }, { actor: 'test' });
  await hub.identity.createClaim({ site: 'north' }, { actor: 'test' });
  const v = await api(hub, 'GET', '/api/v1/audit/verify', { token: op.token });
  t.equal(v.status, 200);
  t.match(v.body, { ok: true, entries: 3, head: { n: 3, hash: /^[0-9a-f]{64}$/ } }, 'two token creations and a claim');
  t.equal((await api(hub, 'GET', '/api/v1/audit/verify', { token: viewer.token })).status, 403, 'viewers may not');
  t.equal((await api(hub, 'GET', '/api/v1/audit/verify?head=3:nothex', { token: op.token })).status, 400, 'a malformed head is refused');

  const cmd = hubCommands.find((c) => c.name === 'audit verify')!;
  const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const sink = (f: (s: string) => void): Writable => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
    const code = await cmd.run(['--api', `http://127.0.0.1:${hub.httpPort}`, '--token', op.token, ...args], { out: sink((s) => (out += s)), err: sink((s) => (err += s)) });
    return { code, out, err };
  };
  const first = await run([]);
  t.match(first, { code: 0, out: new RegExp(`audit chain holds: 3 entries, head 3:${v.body.head.hash}`) });
  t.match(await run(['--expect-head', `3:${v.body.head.hash}`]), { code: 0, out: /expected head found/ });
  t.match(await run(['--expect-head', `3:${'0'.repeat(64)}`]), { code: 3, out: /BROKEN at entry 3: not the expected head/ });
  t.match(await run(['--expect-head', `99:${v.body.head.hash}`]), { code: 3, out: /BROKEN at entry 99/ });
  t.match(await run(['--expect-head', 'garbage']), { code: 2, err: /N:HASH/ });
});
