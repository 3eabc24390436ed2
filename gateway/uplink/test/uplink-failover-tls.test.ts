/**
 * TLS with several hub addresses (issue 16.4): the uplink resolves a name
 * itself (each record in turn) but checks the hub's certificate against the
 * name, and sends it as SNI — never the IP it resolved to. A real Aedes over
 * TLS on loopback with a test CA (hub/test/tls-certs.ts: SAN 127.0.0.1 and
 * localhost); the resolver is injected so a name outside the certificate can
 * point at 127.0.0.1 too.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { Aedes } from 'aedes';
import { silentLogger } from '../../../lib/index.js';
import { makeTestPki, opensslMissing } from '../../../hub/test/tls-certs.js';
import { waitFor } from '../../../test/support/wait.js';
import { SqliteOutbox } from '../../outbox/sqlite-outbox.js';
import type { LookupAll } from '../hub-ring.js';
import { Uplink } from '../uplink.js';

const skip = opensslMissing();

async function tlsBroker(t: Test): Promise<{ port: number; ca: Buffer; sni: Array<string | false | null> }> {
  const pki = makeTestPki(t.testdir());
  const aedes = await Aedes.createBroker();
  const sni: Array<string | false | null> = [];
  const server = tls.createServer({ cert: readFileSync(pki.certFile), key: readFileSync(pki.keyFile) }, (s) => {
    sni.push(s.servername);
    aedes.handle(s);
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
  });
  return { port: (server.address() as { port: number }).port, ca: readFileSync(pki.caFile), sni };
}

t.test('the certificate is checked against the configured name, sent as SNI', { skip }, async (t) => {
  const hub = await tlsBroker(t);
  const asked: string[] = [];
  const lookup: LookupAll = async (name) => {
    asked.push(name);
    return [{ address: '127.0.0.1', family: 4 }];
  };
  const outbox = new SqliteOutbox({ file: path.join(t.testdir(), 'outbox.sqlite'), logger: silentLogger(), limits: { maxRows: 1_000_000, maxBytes: 1 << 30, maxAgeMs: 86_400_000 } });
  await outbox.start();
  t.teardown(() => outbox.stop());
  const wrong = `mqtts://not-in-the-cert.ioc.test:${hub.port}`;
  const right = `mqtts://localhost:${hub.port}`;
  const uplink = new Uplink({
    gatewayId: 'gw-tls', url: [wrong, right], lookup, mqttOptions: { ca: hub.ca, rejectUnauthorized: true },
    logger: silentLogger(), outbox, version: '1', batchSize: 100, window: 2, statusIntervalMs: 60_000, keepaliveS: 30, reconnect: { minMs: 50, maxMs: 200 },
  });
  const errors: string[] = [];
  uplink.on('connect-error', (err: Error & { code?: string }) => errors.push(err.code ?? err.message));
  t.teardown(() => uplink.stop());
  await uplink.start();
  await waitFor(() => uplink.connected, 'connected over TLS');
  t.match(uplink.stats(), { hub: right, hubAddress: '127.0.0.1' });
  t.ok(errors.includes('ERR_TLS_CERT_ALTNAME_INVALID'), `the name outside the certificate was refused although its IP is in it (${errors.join(', ')})`);
  t.same(asked.slice(0, 2), ['not-in-the-cert.ioc.test', 'localhost'], 'both names resolved by the uplink');
  t.equal(hub.sni.at(-1), 'localhost', 'SNI is the name');
});
