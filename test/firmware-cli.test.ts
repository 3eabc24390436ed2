/**
 * `ioc-edge fw keygen|sign|upload|rollout|status|pause|resume|cancel`
 * against a real hub and gateway (issue 7), and the API's roles and audit
 * for firmware on a hub with authentication.
 */
import t from 'tap';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../lib/index.js';
import { startHub } from '../hub/index.js';
import { buildSimImage } from '../scripts/sim/sim-firmware.js';
import { GW, startFwStack } from './support/fw-stack.js';
import { waitFor } from './support/wait.js';
import { runCli as cli } from './support/cli.js';


t.test('sign, upload, roll out and follow from the command line', async (t) => {
  const dir = t.testdir();
  // The XMODEM device runs at 115200 baud in wire time: its flash takes a few seconds, long enough to pause.
  const s = await startFwStack(t, { dir, xm: { baudRate: 115_200 }, trust: false });
  const api = ['--api', `http://127.0.0.1:${s.hub.httpPort}`];
  const keyFile = path.join(dir, 'release.pem');
  let r = await cli(['fw', 'keygen', '--out', keyFile]);
  t.equal(r.code, 0, r.err);
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'private key readable by its owner only');
  const publicKey = /public key:\s+(\S+)/.exec(r.out)![1]!;
  t.equal((await cli(['fw', 'keygen', '--out', keyFile])).code, 1, 'an existing key file is never overwritten');
  // The gateway trusts the new key (remote configuration would do this in the field).
  await s.gw.reconfigure({ ...s.gw.config, firmware: { ...s.gw.config.firmware!, trustedKeys: [publicKey] } });

  const fcFile = path.join(dir, 'fc21-2.2.0.bin');
  writeFileSync(fcFile, buildSimImage('2.2.0', 30_000));
  r = await cli(['fw', 'sign', '--key', keyFile, '--image', fcFile, '--model', 'sim-fc21-device', '--version', '2.2.0', '--version-code', String(0x0202)]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /sim-fc21-device 2.2.0, 30000 bytes, sha256 [0-9a-f]{64}, signed by key [0-9a-f]{16}/);
  t.equal(JSON.parse(readFileSync(`${fcFile}.manifest.json`, 'utf8')).manifest.versionCode, 0x0202);
  t.equal((await cli(['fw', 'sign', '--key', keyFile, '--image', fcFile])).code, 2, 'usage error without model and version');

  r = await cli(['fw', 'upload', '--image', fcFile, ...api]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /upload \[#+\] 100% 30000\/30000 bytes/, 'progress (plain lines when not a terminal)');
  const manifestId = /manifest (m-[0-9a-f]+)/.exec(r.out)![1]!;
  r = await cli(['fw', 'rollout', '--manifest', manifestId, '--wait', '--interval', '100', ...api]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /rollout r-\S+: sim-fc21-device 2.2.0 to 1 device\(s\) in 1 stage\(s\)/);
  t.match(r.out, /completed stage 1\/1 \[#{20}\] 100% 1 updated, 0 in progress, 0 failed, 0 pending of 1/);
  t.equal(s.fc21.version, '2.2.0');

  // A slow XMODEM flash: pause, resume and cancel while it runs.
  const xmFile = path.join(dir, 'xm-3.0.0.bin');
  writeFileSync(xmFile, buildSimImage('3.0.0', 120_000));
  t.equal((await cli(['fw', 'sign', '--key', keyFile, '--image', xmFile, '--model', 'sim-xmodem-sensor', '--version', '3.0.0'])).code, 0);
  r = await cli(['fw', 'upload', '--image', xmFile, ...api]);
  const xmManifest = /manifest (m-[0-9a-f]+)/.exec(r.out)![1]!;
  r = await cli(['fw', 'rollout', '--manifest', xmManifest, '--device', `${GW}/xm-1`, '--canary-device', `${GW}/xm-1`, '--seed', 'cli-seed', ...api]);
  t.match(r.out, /in 1 stage\(s\), order seed cli-seed/, 'the operator chose the canary and the order seed');
  const rollout = /rollout (r-\S+):/.exec(r.out)![1]!;
  await waitFor(async () => /updating/.test((await cli(['fw', 'status', rollout, ...api])).out), 'flashing');
  r = await cli(['fw', 'pause', rollout, ...api]);
  t.match(r.out, new RegExp(`${rollout} sim-xmodem-sensor 3.0.0 paused`));
  t.equal((await cli(['fw', 'pause', rollout, ...api])).code, 1, 'pausing twice is refused');
  t.match((await cli(['fw', 'resume', rollout, ...api])).out, / running /);
  r = await cli(['fw', 'status', rollout, ...api]);
  t.match(r.out, new RegExp(`stage 1 ${GW}/xm-1: active \\(updating, result 0\\)`));
  r = await cli(['fw', 'cancel', rollout, ...api]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, / cancelled /);
  r = await cli(['fw', 'status', ...api]);
  t.match(r.out, /completed stage 1\/1/);
  t.match(r.out, new RegExp(`${rollout} sim-xmodem-sensor 3.0.0 cancelled`));
  t.match((await cli(['fw', 'resume', 'r-none', ...api])), { code: 1, err: /HTTP 404/ });
  t.match((await cli(['fw', 'status', '--help'])), { code: 0, out: /Usage: ioc-edge fw status/ });
});

t.test('firmware API roles: viewers read, operators change, every change audited', async (t) => {
  const dir = t.testdir();
  const hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'required', scrypt: { N: 1024, r: 8, p: 1 } } });
  t.teardown(() => hub.stop());
  const by = { actor: 'test' };
  const viewer = await hub.identity.createApiToken({ name: 'console', role: 'viewer' }, by);
  const operator = await hub.identity.createApiToken({ name: 'release', role: 'operator' }, by);
  const keyFile = path.join(dir, 'k.pem');
  await cli(['fw', 'keygen', '--out', keyFile]);
  const file = path.join(dir, 'img.bin');
  writeFileSync(file, buildSimImage('1.1.0', 5000));
  await cli(['fw', 'sign', '--key', keyFile, '--image', file, '--model', 'sim-fc21-device', '--version', '1.1.0']);
  const api = ['--api', `http://127.0.0.1:${hub.httpPort}`];
  t.match(await cli(['fw', 'status', ...api]), { code: 1, err: /HTTP 401/ }, 'no token');
  t.match(await cli(['fw', 'status', '--token', viewer.token, ...api]), { code: 0, out: /no rollouts/ });
  t.match(await cli(['fw', 'upload', '--image', file, '--token', viewer.token, ...api]), { code: 1, err: /HTTP 403.*needs 'operator'/ });
  const r = await cli(['fw', 'upload', '--image', file, '--token', operator.token, ...api]);
  t.equal(r.code, 0, r.err);
  t.match(await cli(['fw', 'rollout', '--manifest', /manifest (m-[0-9a-f]+)/.exec(r.out)![1]!, '--token', operator.token, ...api]), { code: 1, err: /FW_ERR_NO_TARGETS/ });
  const audit = await hub.audit.list({ action: 'firmware.' });
  t.ok(audit.some((a) => a.action === 'firmware.image.upload' && a.outcome === 'ok' && a.actor.includes('release')), 'upload audited with the operator');
  t.ok(audit.some((a) => a.action === 'firmware.manifest.add' && a.outcome === 'ok'));
  t.ok(audit.some((a) => a.action === 'firmware.image.upload' && a.outcome === 'denied' && a.actor === 'token:' + viewer.id + '/console'), 'the refused upload is audited too');
  t.ok(audit.some((a) => a.action === 'firmware.rollout.create' && a.outcome === 'error'));
});
