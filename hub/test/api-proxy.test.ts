/**
 * The API behind a TCP load balancer speaking the PROXY protocol (issue 13
 * item 7), over real sockets, plain and TLS: the client the header names is
 * what the failed-login limiter and the audit log see; a connection from the
 * trusted balancer without a header is closed.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import t from 'tap';
import { api, startSecureHub } from './support.js';
import { makeTestPki, opensslMissing } from './tls-certs.js';

/** One HTTP/1.1 exchange on a connection that starts with a PROXY v1 header naming `client`; `wrap` may start TLS first. */
async function viaBalancer(port: number, client: string, method: string, path: string, opts: { token?: string; body?: unknown; wrap?: (raw: net.Socket) => net.Socket } = {}): Promise<{ status: number; body: any }> {
  const raw = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => raw.once('connect', resolve).once('error', reject));
  raw.write(`PROXY TCP4 ${client} 127.0.0.1 40000 ${port}\r\n`);
  const socket = opts.wrap ? opts.wrap(raw) : raw;
  const body = opts.body === undefined ? '' : JSON.stringify(opts.body);
  socket.write([
    `${method} ${path} HTTP/1.1`, 'Host: hub', 'Connection: close',
    ...(opts.token ? [`Authorization: Bearer ${opts.token}`] : []), ...(body ? ['Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`] : []), '', body,
  ].join('\r\n'));
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const [head, ...rest] = text.split('\r\n\r\n');
  const chunked = /transfer-encoding: chunked/i.test(head ?? '');
  let payload = rest.join('\r\n\r\n');
  if (chunked) payload = payload.split('\r\n').filter((_, i) => i % 2 === 1).join('');
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head ?? '')?.[1] ?? 0), body: payload ? JSON.parse(payload) : null };
}

t.test('plain HTTP behind a PROXY protocol balancer', async (t) => {
  const hub = await startSecureHub(t, { apiProxyProtocol: { trusted: ['127.0.0.1'] }, auth: { rateLimit: { maxFailures: 3, windowMs: 60_000, lockoutMs: 60_000 } } });
  const op = await hub.identity.createApiToken({ name: 'duty', role: 'operator' }, { actor: 'test' });
  const forged = `iet_${op.id}.wrong`;
  for (let i = 0; i < 3; i++) t.equal((await viaBalancer(hub.httpPort, '203.0.113.5', 'GET', '/api/v1/gateways', { token: forged })).status, 401);
  t.equal((await viaBalancer(hub.httpPort, '203.0.113.5', 'GET', '/api/v1/gateways', { token: forged })).status, 429, 'the guessing client is locked out');
  t.equal((await viaBalancer(hub.httpPort, '203.0.113.6', 'GET', '/api/v1/gateways', { token: forged })).status, 401, 'another client behind the same balancer is not');
  t.equal((await viaBalancer(hub.httpPort, '198.51.100.7', 'POST', '/api/v1/claims', { token: op.token, body: { site: 'north' } })).status, 201);
  const audit = await viaBalancer(hub.httpPort, '198.51.100.7', 'GET', '/api/v1/audit?action=claim.create', { token: op.token });
  t.equal(audit.body.items[0]?.source, '198.51.100.7', 'the audit log names the client');
  await t.rejects(api(hub, 'GET', '/healthz'), 'a connection from the balancer without a header is closed');
});

t.test('HTTPS behind a PROXY protocol balancer', { skip: opensslMissing() }, async (t) => {
  const pki = makeTestPki(t.testdir());
  const ca = readFileSync(pki.caFile);
  const hub = await startSecureHub(t, { tls: { certFile: pki.certFile, keyFile: pki.keyFile }, apiProxyProtocol: { trusted: ['127.0.0.1'] } });
  const op = await hub.identity.createApiToken({ name: 'duty', role: 'operator' }, { actor: 'test' });
  const wrap = (raw: net.Socket): net.Socket => tls.connect({ socket: raw, ca, servername: 'localhost', checkServerIdentity: () => undefined });
  t.equal((await viaBalancer(hub.httpPort, '198.51.100.8', 'POST', '/api/v1/claims', { token: op.token, body: { site: 'south' }, wrap })).status, 201);
  const audit = await viaBalancer(hub.httpPort, '198.51.100.8', 'GET', '/api/v1/audit?action=claim.create', { token: op.token, wrap });
  t.equal(audit.status, 200);
  t.equal(audit.body.items[0]?.source, '198.51.100.8', 'the client the header names, after the TLS handshake');
});
