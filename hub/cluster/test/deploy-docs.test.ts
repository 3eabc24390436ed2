/**
 * The three-node deployment in docs/deploy.md stays true: every flag the
 * cluster unit passes to `hub run` exists, every environment variable it
 * sets is read by the code, every metric the docs and alert rules name is
 * one the hub exports, and the HAProxy configuration passes `haproxy -c`
 * where HAProxy is installed (skipped with one line otherwise).
 */
import { skipUnlessBinary } from '../../../test/support/outside-binary.js';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';

const root = path.resolve(import.meta.dirname, '../../..');
const read = (p: string): Promise<string> => readFile(path.join(root, p), 'utf8');

t.test('the cluster unit uses flags and variables the hub knows', async (t) => {
  const unit = await read('docs/systemd/ioc-edge-hub@.service');
  const env = await read('docs/systemd/hub-cluster.env');
  const run = await read('hub/cli/hub-run.ts');
  // The command line: ExecStart= and its continuation lines.
  const exec = /^ExecStart=((?:.*\\\n)*.*)$/m.exec(unit)?.[1] ?? '';
  const flags = [...exec.matchAll(/--([a-z][a-z-]+)/g)].map((m) => m[1]!);
  t.ok(flags.length >= 8, `flags found in the unit: ${flags.join(', ')}`);
  for (const f of flags) t.ok(run.includes(`'${f}'`) || run.includes(`${f}:`), `hub run knows --${f}`);
  for (const v of [...env.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]!)) {
    if (v === 'PGPASSWORD') continue; // read by the pg driver itself
    t.ok(run.includes(v) || unit.includes(`\${${v}}`), `${v} is read by hub run or used by the unit`);
  }
});

t.test('every metric named in the deployment docs and alert rules is exported', async (t) => {
  const metrics = await read('hub/metrics.ts');
  const text = (await read('docs/deploy.md')) + (await read('docs/deploy/alerts.yml'));
  const named = new Set([...text.matchAll(/\b(ioc_edge_[a-z_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, '')));
  t.ok(named.size >= 10, `${named.size} metric names in the docs`);
  for (const n of named) t.ok(metrics.includes(`'${n}'`), `${n} is a metric of hub/metrics.ts`);
});

t.test('haproxy -c accepts docs/deploy/haproxy.cfg', { skip: skipUnlessBinary('haproxy', 'haproxy') || skipUnlessBinary('openssl', 'openssl') }, async (t) => {
  const dir = t.testdir();
  // The example names the CA of the hub certificates; any self-signed certificate will do for the syntax check.
  const ca = path.join(dir, 'ca.pem');
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'ca.key'), '-out', ca, '-subj', '/CN=test-ca', '-days', '1']);
  const cfg = path.join(dir, 'haproxy.cfg');
  await writeFile(cfg, (await read('docs/deploy/haproxy.cfg')).replaceAll('/etc/haproxy/ioc-ca.pem', ca));
  const r = await promisify(execFile)('haproxy', ['-c', '-f', cfg]).then((o) => ({ ok: true, out: o.stdout + o.stderr }), (e: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }));
  t.ok(r.ok, 'configuration is valid');
  t.notMatch(r.out, /WARNING/, `no warnings: ${r.out.trim().split('\n').slice(-3).join(' | ')}`);
});
