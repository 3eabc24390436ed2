/** Units of the identity layer: the failed-login limiter, the packet guard's framing and writes, secret hashing. */
import { createHash } from 'node:crypto';
import t, { type Test } from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { FailureLimiter } from '../identity/rate-limiter.js';
import { PacketGuard, type OversizeInfo } from '../identity/packet-guard.js';
import { fingerprint, generateSecret, hashOutdated, hashSecret, randomBase32, verifySecret } from '../identity/secret-hash.js';
import { isLoopback } from '../identity/tls-files.js';
import { waitFor } from '../../test/support/wait.js';
import { connectPacket, remainingLength } from './support.js';

t.test('FailureLimiter: window, lockout doubling, decay, bounded memory', async (t) => {
  let now = 0;
  const l = new FailureLimiter({ maxFailures: 3, windowMs: 1000, lockoutMs: 100, maxLockoutMs: 350, maxEntries: 4 }, () => now);
  t.equal(l.fail('a'), 0);
  t.equal(l.fail('a'), 0);
  t.equal(l.fail('a'), 100, 'third failure locks out for 100 ms');
  t.equal(l.blockedFor('a'), 100);
  t.equal(l.blockedFor('b'), 0, 'other addresses unaffected');
  now = 150;
  t.equal(l.blockedFor('a'), 0, 'lockout over');
  l.fail('a');
  l.fail('a');
  t.equal(l.fail('a'), 200, 'second lockout doubles');
  now = 500;
  for (let i = 0; i < 2; i++) l.fail('a');
  t.equal(l.fail('a'), 350, 'capped at maxLockoutMs');
  now = 5000;
  l.fail('a');
  t.equal(l.blockedFor('a'), 0, 'old failures left the window');
  now = 10_000;
  for (let i = 0; i < 2; i++) l.fail('a');
  t.equal(l.fail('a'), 100, 'lockout level decays after a quiet period');
  // Slow guessing spread over windows never locks out, and never grows memory without bound.
  for (let i = 0; i < 20; i++) l.fail(`addr-${i}`);
  t.ok(l.size <= 4, `at most maxEntries tracked (${l.size})`);
});

/** A loopback listener closed at teardown; `pair()` connects a client and returns both ends. */
async function loopback(t: Test): Promise<{ pair: () => Promise<{ client: net.Socket; sock: net.Socket }> }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  return {
    pair: async () => {
      const accepted = once(server, 'connection') as Promise<[net.Socket]>;
      const client = net.connect(port, '127.0.0.1');
      const [sock] = await accepted;
      return { client, sock };
    },
  };
}

t.test('PacketGuard follows packet boundaries across arbitrary chunking', async (t) => {
  const server = await loopback(t);
  const run = async (chunks: Buffer[], limits = { maxPacketBytes: 1000, maxConnectBytes: 100 }): Promise<{ received: Buffer; oversize: OversizeInfo | null }> => {
    const { client, sock } = await server.pair();
    let oversize: OversizeInfo | null = null;
    const guard = new PacketGuard(sock, limits, (i) => (oversize = i));
    const parts: Buffer[] = [];
    guard.on('data', (d: Buffer) => parts.push(d));
    const ended = new Promise<void>((resolve) => guard.once('close', () => resolve()));
    for (const c of chunks) {
      client.write(c);
      await new Promise((r) => setImmediate(r));
    }
    client.end();
    await ended;
    client.destroy();
    return { received: Buffer.concat(parts), oversize };
  };
  const publish = (size: number): Buffer => Buffer.concat([Buffer.from([0x30]), remainingLength(size), Buffer.alloc(size, 0x61)]);
  const stream = Buffer.concat([connectPacket({ clientId: 'c', clean: true }), publish(10), publish(300), publish(0), publish(999)]);
  // Byte by byte, and in odd-sized pieces: everything passes through unchanged.
  const bytewise = await run([...stream].map((b) => Buffer.from([b])));
  t.same(bytewise.received, stream, 'byte-by-byte chunks pass through');
  t.equal(bytewise.oversize, null);
  const pieces: Buffer[] = [];
  for (let i = 0; i < stream.length; i += 7) pieces.push(stream.subarray(i, i + 7));
  t.same((await run(pieces)).received, stream, '7-byte chunks pass through');
  // A packet over the limit is cut at its header, even when the header is split.
  const big = Buffer.concat([connectPacket({ clientId: 'c', clean: true }), publish(1001)]);
  const cut = await run([big.subarray(0, big.length - 1000), big.subarray(big.length - 1000)]);
  t.match(cut.oversize, { declared: 1001, limit: 1000, first: false });
  t.ok(cut.received.length < big.length, 'the oversized body is not passed on');
  const bigConnect = await run([Buffer.from([0x10]), remainingLength(101).subarray(0, 1), remainingLength(101).subarray(1)]);
  t.match(bigConnect.oversize, { declared: 101, limit: 100, first: true }, 'the first packet has the CONNECT limit');
});

t.test('PacketGuard writes: one turn of the event loop leaves in one socket write, in order; what was written before destroy still arrives', async (t) => {
  const { client, sock } = await (await loopback(t)).pair();
  t.teardown(() => client.destroy());
  const guard = new PacketGuard(sock, { maxPacketBytes: 1000, maxConnectBytes: 100 });
  // Counts the writes the guard hands to the socket's handle (one each is one system call): Node 20's
  // net.Socket funnels _write and _writev through _writeGeneric.
  const handleWrites: number[] = [];
  const s = sock as unknown as { _writeGeneric: (writev: boolean, data: unknown, enc: string, cb: () => void) => void };
  const original = s._writeGeneric.bind(sock);
  s._writeGeneric = (writev, data, enc, cb) => {
    handleWrites.push(writev ? (data as unknown[]).length : 1);
    original(writev, data, enc, cb);
  };
  const got: Buffer[] = [];
  client.on('data', (d: Buffer) => got.push(d));
  // 40 packets, each from its own callback in one turn (as Aedes answers a group commit).
  const packets = Array.from({ length: 40 }, (_, i) => Buffer.from([0x40, 0x02, 0x00, i]));
  await new Promise<void>((resolve) => {
    setImmediate(() => {
      for (const p of packets) void Promise.resolve().then(() => guard.write(p));
      void Promise.resolve().then(resolve);
    });
  });
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.equal(handleWrites.length, 1, `one socket write for the turn (${handleWrites.join(',')})`);
  const expected = Buffer.concat(packets);
  await waitFor(() => Buffer.concat(got).length >= expected.length || null, 'the packets');
  t.same(Buffer.concat(got), expected, 'every packet, in order');
  // A last packet written and the connection destroyed in the same turn (a CONNACK refusing a login).
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  guard.write(Buffer.from([0x20, 0x02, 0x00, 0x05]));
  guard.destroy();
  await closed;
  t.same(Buffer.concat(got).subarray(expected.length), Buffer.from([0x20, 0x02, 0x00, 0x05]), 'the last packet arrived before the close');
});

t.test('secrets: scrypt hashes verify, fail on a wrong secret or a malformed hash', async (t) => {
  const s = generateSecret();
  t.equal(s.length, 43, '32 bytes base64url');
  const h = await hashSecret(s, { N: 1024, r: 8, p: 1 });
  t.match(h, /^scrypt\$1024\$8\$1\$[\w-]+\$[\w-]+$/);
  t.equal(await verifySecret(s, h), true);
  t.equal(await verifySecret(`${s}x`, h), false);
  t.equal(await verifySecret(s, 'md5$abc'), false);
  t.equal(await verifySecret(s, 'scrypt$x$8$1$a$b'), false);
  t.not(await hashSecret(s, { N: 1024, r: 8, p: 1 }), h, 'salted');
  t.equal(hashOutdated(h, { N: 1024, r: 8, p: 1 }), false, 'scrypt at the chosen cost is current');
  t.equal(hashOutdated(h, { N: 4096, r: 8, p: 1 }), true, 'a raised cost makes it outdated');
  t.equal(hashOutdated(h), true, 'scrypt is outdated where the fast scheme is chosen');
});

t.test('secrets: the fast scheme verifies the generated secret only, and matches no plain SHA-256', async (t) => {
  const s = generateSecret();
  const h = await hashSecret(s);
  t.match(h, /^sha256\$[\w-]{43}$/);
  t.equal(await hashSecret(s), h, 'deterministic: a generated secret needs no salt');
  t.equal(await verifySecret(s, h), true);
  t.equal(await verifySecret(`${s}x`, h), false);
  t.equal(await verifySecret(s.slice(0, -1), h), false);
  t.equal(await verifySecret(s, 'sha256$'), false, 'an empty digest');
  t.equal(await verifySecret(s, `sha256$${createHash('sha256').update(s).digest('base64url')}`), false, 'not the untagged SHA-256');
  t.equal(hashOutdated(h), false);
  t.equal(hashOutdated(h, { N: 1024, r: 8, p: 1 }), true, 'a deployment that chose scrypt upgrades it');
});

t.test('secrets: misc', async (t) => {
  t.match(randomBase32(26), /^[a-z2-7]{26}$/);
  t.equal(fingerprint('a').length, 32);
  t.equal(isLoopback('127.0.0.1'), true);
  t.equal(isLoopback('::1'), true);
  t.equal(isLoopback('localhost'), true);
  t.equal(isLoopback('0.0.0.0'), false);
  t.equal(isLoopback('10.1.2.3'), false);
});
