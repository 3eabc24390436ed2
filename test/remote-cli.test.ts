/** `ioc-edge config push|get|diff|status` and `ioc-edge gateway command` against a real hub and gateway (issue 6). */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pushable, startRemoteStack } from './support/remote-config.js';
import { runCli as cli } from './support/cli.js';

const GW = 'gw-test-01';


t.test('operator CLI for remote configuration and commands', async (t) => {
  const dir = t.testdir();
  const { hub, cfg } = await startRemoteStack(t, dir);
  const api = ['--api', `http://127.0.0.1:${hub.httpPort}`];
  const file = path.join(dir, 'next.json');
  const next = pushable(cfg);
  (next.devices as Array<Record<string, unknown>>)[1]!.pollIntervalMs = 300;
  writeFileSync(file, JSON.stringify(next));

  let r = await cli(['config', 'push', GW, '--file', file, '--note', 'tsc slower', '--wait', '20', ...api]);
  t.equal(r.code, 0, `push and wait: ${r.err}`);
  t.match(r.out, /version 1 accepted \(sha256:[0-9a-f]{64}\)/);
  t.match(r.out, /applied \(version 1; running 1\)/, 'followed until applied');

  (next.devices as Array<Record<string, unknown>>)[0]!.pollIntervalMs = 200;
  writeFileSync(file, JSON.stringify(next));
  t.equal((await cli(['config', 'push', GW, '--file', file, '--base-version', '1', '--wait', '20', ...api])).code, 0);
  r = await cli(['config', 'diff', GW, ...api]);
  t.equal(r.code, 0);
  t.match(r.out, /version 1 → 2: 1 change/);
  t.match(r.out, /~ config\.devices\[flood-1\]\.pollIntervalMs: 100 → 200/);

  r = await cli(['config', 'get', GW, '--version', '1', ...api]);
  t.equal(JSON.parse(r.out).note, 'tsc slower', 'get prints the version as JSON');

  r = await cli(['config', 'status', ...api]);
  t.match(r.out, new RegExp(`${GW}\\s+in-sync\\s+2\\s+2\\s+yes`), 'status table');

  const bad = structuredClone(next);
  (bad.devices as Array<Record<string, unknown>>)[0]!.profile = 'no-such-model';
  writeFileSync(file, JSON.stringify(bad));
  r = await cli(['config', 'push', GW, '--file', file, ...api]);
  t.equal(r.code, 1, 'refused push exits 1');
  t.match(r.err, /\/config\/devices\/0\/profile: unknown device profile 'no-such-model'/, 'prints the pointer');

  r = await cli(['config', 'push', GW, '--file', file, '--base-version', 'x', ...api]);
  t.equal(r.code, 2, 'usage error');

  r = await cli(['gateway', 'command', GW, 'ping', ...api]);
  t.equal(r.code, 0);
  t.match(JSON.parse(r.out), { pong: true, config: { version: 2 } });
  r = await cli(['gateway', 'command', GW, 'read', '--args', '{"device":"nope"}', ...api]);
  t.equal(r.code, 1);
  t.match(r.err, /GW_ERR_NO_DEVICE/);
});
