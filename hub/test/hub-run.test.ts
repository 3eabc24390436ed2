/**
 * `ioc-edge hub run` as a real process (issue 13 items 5 and 10): with
 * trusted firmware keys (flag, repeatable, and IOC_EDGE_FW_TRUSTED_KEYS) a
 * manifest signed by an unknown key or with a bad signature is refused at
 * upload with its code; the process runs with umask 0077, so what it creates
 * in its data directory is private; a key file that is not a key stops it
 * before it starts.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { buildManifest, generateSigningKey, signManifest } from '../../firmware-bridge/index.js';
import { runCli } from '../../test/support/cli.js';
import { pgSchema, PG_URL, skipUnlessPostgres } from '../../test/support/postgres.js';
import { tempDir } from './support.js';

const BIN = fileURLToPath(new URL('../../bin/ioc-edge.js', import.meta.url));

t.test('hub run --fw-trusted-key refuses manifests of unknown keys and bad signatures at upload', async (t) => {
  const dir = tempDir(t, 'ioc-edge-hubrun-');
  const dataDir = path.join(dir, 'hub');
  const [k1, k2, stranger] = [generateSigningKey(), generateSigningKey(), generateSigningKey()];
  writeFileSync(path.join(dir, 'k1.pub'), `${k1.publicKey}\n`);
  writeFileSync(path.join(dir, 'k2.pub'), `${k2.publicKey}\n`);
  const tok = await runCli(['token', 'create', '--data-dir', dataDir, '--name', 'release', '--role', 'operator']);
  t.equal(tok.code, 0, tok.err);
  const token = /iet_\S+/.exec(tok.out)![0];

  const proc = spawn(process.execPath, [BIN, 'hub', 'run', '--data-dir', dataDir, '--mqtt-port', '0', '--http-port', '0', '--fw-trusted-key', path.join(dir, 'k1.pub')], {
    env: { ...process.env, IOC_EDGE_FW_TRUSTED_KEYS: path.join(dir, 'k2.pub') }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(proc, 'exit');
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  let out = '';
  const running = await new Promise<{ httpPort: number; fwTrustedKeys: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub run did not start: ${out}`)), 30_000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"hub running"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { httpPort: number; fwTrustedKeys: number });
      }
    });
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('exit', () => reject(new Error(`hub run exited: ${out}`)));
  });
  t.equal(running.fwTrustedKeys, 2, 'one key from the flag, one from the environment');
  const base = `http://127.0.0.1:${running.httpPort}/api/v1/firmware`;
  const headers = { authorization: `Bearer ${token}` };

  const image = Buffer.alloc(4096, 0x5a);
  const put = await fetch(`${base}/images`, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: image });
  t.equal(put.status, 201);
  const manifest = buildManifest(image, { model: 'flood-level-sensor', version: '2.1.0' });
  const sign = (k: typeof k1) => signManifest(manifest, createPrivateKey(k.privateKeyPem), k.keyId);
  const upload = async (doc: unknown) => {
    const r = await fetch(`${base}/manifests`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(doc) });
    return { status: r.status, body: (await r.json()) as { error?: { code: string; message: string } } };
  };
  t.match(await upload(sign(stranger)), { status: 400, body: { error: { code: 'FW_ERR_UNTRUSTED_KEY', message: new RegExp(`key ${stranger.keyId}, which is not trusted here`) } } }, 'unknown key refused');
  const tampered = sign(k1);
  t.match(await upload({ ...tampered, manifest: { ...tampered.manifest, version: '9.9.9' } }), { status: 400, body: { error: { code: 'FW_ERR_SIGNATURE' } } }, 'altered manifest refused');
  t.match(await upload({ ...tampered, signature: { ...tampered.signature, keyId: k2.keyId } }), { status: 400, body: { error: { code: 'FW_ERR_SIGNATURE' } } }, 'signature of another trusted key refused');
  t.equal((await upload(sign(k1))).status, 201, 'signed by the key of the flag: stored');
  t.equal((await upload(sign(k2))).status, 201, 'signed by the key of the environment: stored');

  // umask 0077: what the process made in its data directory is private.
  const loose: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const st = statSync(p);
      if ((st.mode & 0o077) !== 0) loose.push(`${path.relative(dataDir, p)} ${(st.mode & 0o777).toString(8)}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dataDir);
  t.same(loose, [], 'nothing in the data directory is readable by others');

  proc.kill('SIGTERM');
  const [code] = await exited;
  t.equal(code, 0, 'SIGTERM stops it cleanly');
});

t.test('a trusted key file that is missing or not a key stops hub run before it starts', async (t) => {
  const dir = tempDir(t, 'ioc-edge-hubrun-');
  writeFileSync(path.join(dir, 'junk.pub'), 'not a key\n');
  const missing = await runCli(['hub', 'run', '--data-dir', dir, '--fw-trusted-key', path.join(dir, 'nope.pub')]);
  t.match(missing, { code: 2, err: /--fw-trusted-key .*nope\.pub: cannot be read \(ENOENT\)/ });
  const junk = await runCli(['hub', 'run', '--data-dir', dir, '--fw-trusted-key', path.join(dir, 'junk.pub')]);
  t.match(junk, { code: 2, err: /--fw-trusted-key .*junk\.pub: cannot read firmware signing key/ });
  t.notOk(junk.err.includes('undefined'));
});

t.test('the systemd unit keeps the data directory private', async (t) => {
  const unit = readFileSync(fileURLToPath(new URL('../../docs/systemd/ioc-edge-hub.service', import.meta.url)), 'utf8');
  t.match(unit, /^UMask=0077$/m);
  t.match(unit, /^StateDirectoryMode=0700$/m);
});

t.test('a stop asked while the hub starts is carried out once it has started: the store closes cleanly, exit 0', { skip: await skipUnlessPostgres() }, async (t) => {
  // PostgreSQL behind a proxy that holds every new connection 1.5 s: the start takes that long at least, so the
  // SIGTERM sent at the first log line lands in the middle of it. Before, it killed the process there.
  const upstream = new URL(PG_URL);
  const proxy = net.createServer((c) => {
    c.on('error', () => undefined);
    c.pause();
    setTimeout(() => {
      const u = net.connect(Number(upstream.port || 5432), upstream.hostname);
      u.on('error', () => c.destroy());
      c.on('close', () => u.destroy());
      u.on('close', () => c.destroy());
      c.pipe(u).pipe(c);
      c.resume();
    }, 1500);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => proxy.close(() => r())));
  const port = (proxy.address() as net.AddressInfo).port;
  const store = `postgres://${upstream.username || 'postgres'}@127.0.0.1:${port}${upstream.pathname}?schema=${pgSchema(t)}`;
  const proc = spawn(process.execPath, [BIN, 'hub', 'run', '--data-dir', tempDir(t, 'ioc-edge-hubrun-'), '--mqtt-port', '0', '--http-port', '0', '--store', store], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const exited = once(proc, 'exit');
  let out = '';
  let signalled = false;
  proc.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
    if (!signalled && out.includes('hub store chosen')) {
      signalled = true;
      proc.kill('SIGTERM');
    }
  });
  let err = '';
  proc.stderr!.on('data', (b: Buffer) => void (err += b.toString()));
  const [code, signal] = await exited;
  t.ok(signalled, 'SIGTERM sent while the hub was starting');
  t.equal(signal, null, 'not killed by the signal');
  t.equal(code, 0, `exit 0 ${err}`);
  const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string });
  const order = lines.map((l) => l.msg).filter((m) => /stop asked|hub running|hub stopped/.test(m));
  t.same(order, ['stop asked while the hub starts: it stops once started', 'hub running', 'hub stopped'], 'asked, started, then stopped');
});
