/** The operator commands against a running hub: output, exit codes, usage errors. */
import t from 'tap';
import { Writable } from 'node:stream';
import { hubCommands } from '../cli/index.js';
import { parseDuration } from '../cli/parse.js';
import { startSecureHub } from './support.js';

async function run(name: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const cmd = hubCommands.find((c) => c.name === name)!;
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void): Writable => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
  const code = await cmd.run(args, { out: sink((s) => (out += s)), err: sink((s) => (err += s)) });
  return { code, out, err };
}

t.test('claim, account and gateway commands over the API', async (t) => {
  const hub = await startSecureHub(t);
  const admin = await hub.identity.createApiToken({ name: 'ops', role: 'admin' }, { actor: 'test' });
  const viewer = await hub.identity.createApiToken({ name: 'wall', role: 'viewer' }, { actor: 'test' });
  const api = ['--api', `http://127.0.0.1:${hub.httpPort}`, '--token', admin.token];

  const c = await run('claim create', [...api, '--site', 'north', '--gateway', 'gw-9', '--ttl', '90m', '--note', 'cabinet 3']);
  t.equal(c.code, 0, c.err);
  t.match(c.out, /claim (\w+) for site north, gateway gw-9, expires/);
  const id = /claim (\w+) for site/.exec(c.out)![1]!;
  t.match((await run('claim list', api)).out, new RegExp(`${id}\\s+active\\s+site=north gateway=gw-9`));
  t.match(await run('claim revoke', [...api, id]), { code: 0, out: new RegExp(`claim ${id} is revoked`) });
  t.match((await run('claim list', api)).out, /no claims/);
  t.match((await run('claim list', [...api, '--all'])).out, /revoked/);
  t.match(await run('claim revoke', [...api, 'nosuchclai']), { code: 1, err: /HTTP 404/ });

  t.match(await run('account create', [...api, '--kind', 'consumer', '--username', 'ioc-core']), { code: 0, out: /consumer account ioc-core\npassword \(shown once\): \S{43}/ });
  t.match(await run('token create', [...api, '--name', 'bot', '--role', 'viewer']), { code: 0, out: /token \w+ \(viewer\) for bot/ });
  await hub.identity.issueGatewayCredential('gw-5');
  t.match(await run('gateway revoke', [...api, 'gw-5']), { code: 0, out: /gateway gw-5 revoked and disconnected/ });
  t.match(await run('gateway revoke', ['--api', `http://127.0.0.1:${hub.httpPort}`, '--token', viewer.token, 'gw-5']), { code: 1, err: /HTTP 403.*needs 'admin'/ }, 'a viewer may not revoke');
  t.match(await run('claim create', ['--api', 'http://127.0.0.1:1', '--token', admin.token, '--site', 'x']), { code: 1, err: /cannot reach the hub API/ });
});

t.test('usage errors exit 2 with help; --help exits 0', async (t) => {
  t.match(await run('claim create', []), { code: 2, err: /missing --site/ });
  t.match(await run('claim create', ['--site', 'x', '--ttl', 'soon']), { code: 2, err: /not a duration/ });
  t.match(await run('claim revoke', []), { code: 2, err: /give one claim id/ });
  t.match(await run('gateway revoke', ['a', 'b']), { code: 2 });
  t.match(await run('token create', ['--name', 'x', '--role', 'root']), { code: 2, err: /viewer, operator or admin/ });
  t.match(await run('account create', ['--username', 'x']), { code: 2 });
  t.match(await run('hub run', []), { code: 2, err: /missing --data-dir/ });
  t.match(await run('hub run', ['--data-dir', 'x', '--tls-cert', 'a']), { code: 2, err: /go together/ });
  t.match(await run('claim list', ['--bogus']), { code: 2, err: /Unknown option/ });
  for (const c of hubCommands) t.match(await run(c.name, ['--help']), { code: 0, out: /Usage: ioc-edge/ }, `${c.name} --help`);
  t.equal(parseDuration('90m'), 5400);
  t.equal(parseDuration('2d'), 172800);
  t.equal(parseDuration('45'), 45);
  t.ok(Number.isNaN(parseDuration('1w')));
});

t.test('hub run refuses an unsafe configuration', async (t) => {
  const r = await run('hub run', ['--data-dir', t.testdir(), '--mqtt-host', '0.0.0.0', '--mqtt-port', '0', '--http-port', '0']);
  t.match(r, { code: 1, err: /hub not started: refusing plain TCP.*HUB_ERR_INSECURE_CONFIG/ });
});
