/**
 * Abuse suite, login side (issue 13 items 4 and 7, MQTT): dead claims are
 * refused before any hashing with an aggregated audit; the failed-login
 * limiter counts per (source, identity); the PROXY protocol v1/v2 on the MQTT
 * listener gives the limiter and the logs the real client address, and
 * garbage or an untrusted header closes the connection. Real hub, real
 * mqtt.js clients and raw sockets on loopback.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import { CLAIM_USERNAME, claimClientId } from '../../contract/index.js';
import { createLogger } from '../../lib/index.js';
import { waitFor } from '../../test/support/wait.js';
import { DEFAULT_BROKER_LIMITS } from '../broker/broker-limits.js';
import { parseProxyHeader, PROXY_V2_SIGNATURE } from '../broker/proxy-protocol.js';
import { connectPacket, mqttUrl, startSecureHub, tempDir, tryConnect } from './support.js';
import { makeTestPki, opensslMissing } from './tls-certs.js';

function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const dest = new Writable({ write(chunk, _enc, cb) { out.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
  return { logger: createLogger({ level: 'debug', destination: dest }), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

t.test('revoked, expired and long-used claims are refused before any hashing, with one audit entry per claim and hour', async (t) => {
  let now = 1_800_000_000_000;
  const hub = await startSecureHub(t, { clock: () => now });
  const url = mqttUrl(hub);
  const revoked = await hub.identity.createClaim({ site: 's' }, { actor: 'test' });
  await hub.identity.revokeClaim(revoked.claim.id, { actor: 'test' });
  const expiring = await hub.identity.createClaim({ site: 's', ttlS: 60 }, { actor: 'test' });
  now += 61_000;
  const auditBefore = (await hub.audit.list({ action: 'claim.login' })).length;
  const hashedBefore = hub.identity.counters.hashChecks;
  for (const c of [revoked, expiring]) {
    for (let i = 0; i < 25; i++) {
      const r = await tryConnect(t, url, { clientId: claimClientId(c.claim.id), username: CLAIM_USERNAME, password: c.token });
      t.match(r, { ok: false, code: 5 }, `attempt ${i + 1} with the right token refused (CONNACK 5)`);
    }
  }
  t.equal(hub.identity.counters.hashChecks, hashedBefore, 'no secret was hashed for 50 attempts');
  t.equal(hub.identity.claimGate.counters.refusedBeforeHash, 50);
  const entries = await hub.audit.list({ action: 'claim.login' });
  t.equal(entries.length - auditBefore, 2, 'one audit entry per claim, not one per attempt');
  t.match(entries.find((e) => e.target === `claim:${revoked.claim.id}`), { outcome: 'denied', detail: { code: 'HUB_ERR_CLAIM_REVOKED' } });
  t.match(entries.find((e) => e.target === `claim:${expiring.claim.id}`), { outcome: 'denied', detail: { code: 'HUB_ERR_CLAIM_EXPIRED' } });
  now += 61 * 60_000;
  await tryConnect(t, url, { clientId: claimClientId(revoked.claim.id), username: CLAIM_USERNAME, password: revoked.token });
  const later = (await hub.audit.list({ action: 'claim.login' })).filter((e) => e.target === `claim:${revoked.claim.id}`);
  t.equal(later.length, 2, 'an hour later: one more entry');
  t.match(later.find((e) => (e.detail as { attemptsSinceLastEntry?: number } | null)?.attemptsSinceLastEntry !== undefined), { detail: { attemptsSinceLastEntry: 24 } }, 'it carries the count of the attempts it stood for');
  t.equal(hub.mqttAuth.counters.lockedOut, 0, 'refusals of a dead claim are not guesses: nobody is locked out');
});

t.test('failed logins count per (source, identity): another identity from the same address still gets in', async (t) => {
  const hub = await startSecureHub(t, { auth: { rateLimit: { maxFailures: 5, windowMs: 60_000, lockoutMs: 60_000 } } });
  const url = mqttUrl(hub);
  const a = await hub.identity.issueGatewayCredential('gw-a');
  const b = await hub.identity.issueGatewayCredential('gw-b');
  for (let i = 0; i < 5; i++) t.match(await tryConnect(t, url, { clientId: 'gw-a', username: 'gw-a', password: `guess-${i}` }), { ok: false, code: 4 });
  t.match(await tryConnect(t, url, { clientId: 'gw-a', username: 'gw-a', password: a.password }), { ok: false, code: 5 }, 'the guessed identity is locked out from this address');
  t.match(await tryConnect(t, url, { clientId: 'gw-b', username: 'gw-b', password: b.password }), { ok: true }, 'another identity from the same address is let in');
  // The looser per-source bucket (10 × maxFailures) still bounds guessing across identities.
  for (let i = 0; i < 45; i++) await tryConnect(t, url, { clientId: `gw-x${i}`, username: `gw-x${i}`, password: 'nope' });
  const c = await hub.identity.issueGatewayCredential('gw-c');
  t.match(await tryConnect(t, url, { clientId: 'gw-c', username: 'gw-c', password: c.password }), { ok: false, code: 5 }, 'after 50 failures the address as a whole is locked out for a secret the hub has not verified');
  t.match(await tryConnect(t, url, { clientId: 'gw-b', username: 'gw-b', password: b.password }), { ok: true }, '…while a secret it verified before (not a guess) still gets in');
  t.match(await tryConnect(t, url, { clientId: 'gw-b', username: 'gw-b', password: 'guess-again' }), { ok: false, code: 5 }, 'a wrong secret for that identity is still refused by the lockout');
});

t.test('a gateway that tried a wrong secret (rolled-back credential push) is not locked out of its known-good one', async (t) => {
  const hub = await startSecureHub(t, { auth: { rateLimit: { maxFailures: 3, windowMs: 60_000, lockoutMs: 60_000 } } });
  const url = mqttUrl(hub);
  const a = await hub.identity.issueGatewayCredential('gw-a');
  t.match(await tryConnect(t, url, { clientId: 'gw-a', username: 'gw-a', password: a.password }), { ok: true }, 'the gateway logs in with its secret');
  for (let i = 0; i < 3; i++) t.match(await tryConnect(t, url, { clientId: 'gw-a', username: 'gw-a', password: 'pushed-but-wrong' }), { ok: false, code: 4 }, 'the pushed secret is wrong');
  t.match(await tryConnect(t, url, { clientId: 'gw-a', username: 'gw-a', password: 'pushed-but-wrong' }), { ok: false, code: 5 }, 'the pair is now locked out for further guesses');
  t.match(await tryConnect(t, url, { clientId: 'gw-a', username: 'gw-a', password: a.password }), { ok: true }, 'after the rollback the known-good secret gets in at once');
  await hub.identity.issueGatewayCredential('gw-a');
  t.match(await tryConnect(t, url, { clientId: 'gw-a', username: 'gw-a', password: a.password }), { ok: false, code: 5 }, 're-keying forgets the old secret: it is locked out like any guess');
});

t.test('a login storm is checked at most maxConcurrentLogins at a time (default 8; the rest wait, leaving libuv threads for the commits); every CONNECT is answered', async (t) => {
  t.equal(DEFAULT_BROKER_LIMITS.maxConcurrentLogins, 8);
  for (const bound of [2, 8]) {
    const hub = await startSecureHub(t, bound === 8 ? {} : { brokerLimits: { maxConcurrentLogins: bound } });
    const url = mqttUrl(hub);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => tryConnect(t, url, { clientId: `gw-s${i}`, username: `gw-s${i}`, password: 'wrong' })));
    t.equal(results.filter((r) => !r.ok && r.code === 4).length, 40, `bound ${bound}: all 40 answered CONNACK 4`);
    t.ok(hub.mqttAuth.counters.peakConcurrentLogins <= bound, `bound ${bound}: never more than ${bound} checks at once (peak ${hub.mqttAuth.counters.peakConcurrentLogins})`);
    t.equal(hub.mqttAuth.timing.checks, 40, 'every check is timed (bench:reconnect-storm reports where login time goes)');
    if (bound === 2) {
      t.equal(hub.mqttAuth.counters.peakConcurrentLogins, 2, '40 at once fill both slots');
      t.ok(hub.mqttAuth.timing.slotWaitMs > 0 && hub.mqttAuth.timing.checkMs > 0, 'queued logins waited for a slot; checks took time');
    }
  }
});

/** Opens a raw connection, sends `header` then a CONNECT; resolves with the first answer or 'closed'. */
async function viaProxy(port: number, header: Buffer, connect: Buffer): Promise<Buffer | 'closed'> {
  const s = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  s.on('error', () => undefined);
  return new Promise((resolve) => {
    s.once('data', (d: Buffer) => {
      resolve(d);
      s.destroy();
    });
    s.once('close', () => resolve('closed'));
    s.write(Buffer.concat([header, connect]));
  });
}

function v2(cmd: 0 | 1, family: 0 | 1 | 2, addr: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(addr.length);
  return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x20 | cmd, (family << 4) | (family ? 1 : 0)]), len, addr]);
}

t.test('PROXY protocol parser (proxy-protocol.txt §2.1, §2.2)', async (t) => {
  t.match(parseProxyHeader(Buffer.from('PROXY TCP4 192.0.2.7 10.0.0.1 51000 1883\r\nrest')), { version: 1, source: { address: '192.0.2.7', port: 51000 }, length: 42 });
  t.match(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 51000 1883\r\n')), { version: 1, source: { address: '2001:db8::7' } });
  t.match(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { version: 1, source: null });
  t.equal(parseProxyHeader(Buffer.from('PROXY TCP4 192.0.2.7')), null, 'incomplete: wait for more');
  const a4 = Buffer.from([198, 51, 100, 9, 10, 0, 0, 1, 0xc3, 0x50, 0x07, 0x5b]);
  t.match(parseProxyHeader(v2(1, 1, a4)), { version: 2, source: { address: '198.51.100.9', port: 50000 }, length: 28 });
  const a6 = Buffer.alloc(36);
  Buffer.from('20010db8000000000000000000000009', 'hex').copy(a6, 0);
  a6.writeUInt16BE(40000, 32);
  t.match(parseProxyHeader(v2(1, 2, a6)), { version: 2, source: { address: '2001:db8::9', port: 40000 } });
  t.match(parseProxyHeader(v2(0, 0, Buffer.alloc(0))), { version: 2, source: null }, 'LOCAL keeps the connection address');
  t.throws(() => parseProxyHeader(Buffer.from('PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\n')), /not an IPv4 address/);
  t.throws(() => parseProxyHeader(Buffer.from('PROXY TCP4 192.0.2.7 10.0.0.1 051000 1883\r\n')), /not a port/);
  t.throws(() => parseProxyHeader(Buffer.from(`PROXY ${'x'.repeat(120)}`)), /107 bytes/);
  t.throws(() => parseProxyHeader(Buffer.from([0x10, 0x20])), /no PROXY protocol header/);
  const badVersion = v2(1, 1, a4);
  badVersion[12] = 0x31;
  t.throws(() => parseProxyHeader(badVersion), /version 3/);
});

t.test('PROXY protocol on the MQTT listener: v1, v2 TCP4/TCP6/LOCAL feed the limiter; garbage and untrusted headers are closed', async (t) => {
  const cap = captureLogger();
  const hub = await startSecureHub(t, { logger: cap.logger, mqttProxyProtocol: { trusted: ['127.0.0.1'], timeoutMs: 2000 }, auth: { rateLimit: { maxFailures: 3, windowMs: 60_000, lockoutMs: 60_000 } } });
  const cred = await hub.identity.issueGatewayCredential('gw-1');
  const good = connectPacket({ clientId: 'gw-1', clean: true, username: 'gw-1', password: cred.password });
  const cred2 = await hub.identity.issueGatewayCredential('gw-2');
  const good2 = connectPacket({ clientId: 'gw-2', clean: true, username: 'gw-2', password: cred2.password });
  const bad = connectPacket({ clientId: 'gw-2', clean: true, username: 'gw-2', password: 'wrong' });
  const CONNACK = (rc: number): Buffer => Buffer.from([0x20, 0x02, 0x00, rc]);
  const h1 = (ip: string): Buffer => Buffer.from(`PROXY TCP4 ${ip} 127.0.0.1 40000 1883\r\n`);

  t.same(await viaProxy(hub.mqttPort, h1('192.0.2.10'), good), CONNACK(0), 'v1 TCP4 header, then a CONNECT: accepted');
  for (let i = 0; i < 3; i++) t.same(await viaProxy(hub.mqttPort, h1('192.0.2.66'), bad), CONNACK(4), 'wrong password via the proxy');
  t.same(await viaProxy(hub.mqttPort, h1('192.0.2.66'), good2), CONNACK(5), 'the guessing client (192.0.2.66) is locked out…');
  t.same(await viaProxy(hub.mqttPort, h1('192.0.2.10'), good), CONNACK(0), '…but another client behind the same proxy is not');
  t.ok(cap.lines().some((l) => l.msg === 'login refused' && l.addr === '192.0.2.66'), 'the log names the real client address');

  const a4 = Buffer.from([198, 51, 100, 9, 10, 0, 0, 1, 0xc3, 0x50, 0x07, 0x5b]);
  t.same(await viaProxy(hub.mqttPort, v2(1, 1, a4), good), CONNACK(0), 'v2 TCP4');
  const a6 = Buffer.alloc(36);
  Buffer.from('20010db8000000000000000000000009', 'hex').copy(a6, 0);
  t.same(await viaProxy(hub.mqttPort, v2(1, 2, a6), good), CONNACK(0), 'v2 TCP6');
  t.same(await viaProxy(hub.mqttPort, v2(0, 0, Buffer.alloc(0)), good), CONNACK(0), 'v2 LOCAL (health check): the connection address is used');

  const before = hub.broker.counters.proxyRefused;
  t.equal(await viaProxy(hub.mqttPort, Buffer.from('HELLO WORLD\r\n'), good), 'closed', 'garbage instead of a header: closed');
  t.equal(await viaProxy(hub.mqttPort, Buffer.alloc(0), good), 'closed', 'a trusted proxy must send a header: a bare CONNECT is closed');
  t.equal(hub.broker.counters.proxyRefused, before + 2);
  t.ok(cap.lines().some((l) => l.code === 'HUB_ERR_PROXY_HEADER' && String(l.err).includes('no PROXY protocol header')), 'a clear log line');
});

t.test('PROXY protocol: a header from an address that is not a trusted proxy is refused; direct clients connect', async (t) => {
  const hub = await startSecureHub(t, { mqttProxyProtocol: { trusted: ['192.0.2.1'] } });
  const cred = await hub.identity.issueGatewayCredential('gw-1');
  const good = connectPacket({ clientId: 'gw-1', clean: true, username: 'gw-1', password: cred.password });
  t.equal(await viaProxy(hub.mqttPort, Buffer.from('PROXY TCP4 192.0.2.10 127.0.0.1 40000 1883\r\n'), good), 'closed', 'a client may not choose its own address');
  t.equal(hub.broker.counters.proxyRefused, 1);
  t.match(await tryConnect(t, mqttUrl(hub), { clientId: 'gw-1', username: 'gw-1', password: cred.password }), { ok: true }, 'a direct client without a header connects');
  await waitFor(() => hub.broker.instance.connectedClients === 1 || null, 'the direct client to be registered');
});

t.test('PROXY protocol with TLS: the header precedes the handshake', { skip: opensslMissing() }, async (t) => {
  const pki = makeTestPki(tempDir(t));
  const cap = captureLogger();
  const hub = await startSecureHub(t, { logger: cap.logger, tls: { certFile: pki.certFile, keyFile: pki.keyFile }, mqttProxyProtocol: { trusted: ['127.0.0.1'] } });
  const cred = await hub.identity.issueGatewayCredential('gw-1');
  const viaTls = async (password: string): Promise<Buffer | 'closed'> => {
    const raw = net.connect(hub.mqttPort, '127.0.0.1');
    await new Promise((r) => raw.once('connect', r));
    raw.write('PROXY TCP4 192.0.2.77 127.0.0.1 40000 8883\r\n');
    const secure = tls.connect({ socket: raw, ca: readFileSync(pki.caFile), servername: 'localhost' });
    secure.on('error', () => undefined);
    await new Promise((r) => secure.once('secureConnect', r));
    return new Promise((resolve) => {
      secure.once('data', (d: Buffer) => {
        resolve(d);
        secure.destroy();
      });
      secure.once('close', () => resolve('closed'));
      secure.write(connectPacket({ clientId: 'gw-1', clean: true, username: 'gw-1', password }));
    });
  };
  t.same(await viaTls(cred.password), Buffer.from([0x20, 0x02, 0x00, 0x00]), 'CONNACK 0 over TLS after a PROXY header');
  t.same(await viaTls('wrong'), Buffer.from([0x20, 0x02, 0x00, 0x04]), 'wrong secret: CONNACK 4');
  t.ok(cap.lines().some((l) => l.msg === 'login refused' && l.addr === '192.0.2.77'), 'the refusal names the client address from the header');
});
