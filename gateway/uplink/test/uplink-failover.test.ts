/**
 * The uplink fails over between hub addresses (issue 16.4): a list (or a
 * comma string) whose first address is dead connects to the second; a loss
 * moves to the next address round robin, never back to a preferred one and
 * never with two connections open; a name with several records is resolved
 * at every attempt and each record is tried in turn.
 *
 * Real Aedes brokers on loopback (plain, no ingest: what is under test is
 * where the one connection goes). A real name with several records cannot be
 * made on loopback without editing /etc/hosts (here `localhost` has one
 * record), so the multi-record test injects the resolver (`lookup`), with
 * two real brokers on 127.0.0.1 and 127.0.0.2 at the same port; `localhost`
 * itself goes through the system resolver in another test.
 */
import t, { type Test } from 'tap';
import net from 'node:net';
import path from 'node:path';
import { Aedes } from 'aedes';
import { silentLogger } from '../../../lib/index.js';
import { SqliteOutbox } from '../../outbox/sqlite-outbox.js';
import { Uplink, type UplinkDeps } from '../uplink.js';
import { waitFor } from '../../../test/support/wait.js';
import type { LookupAll } from '../hub-ring.js';

/** Open connections across every broker of a test, and the most seen at once. */
const open = { now: 0, max: 0 };

interface TestBroker {
  port: number;
  url: string;
  /** Clients connected (MQTT CONNECT accepted) so far. */
  connects: number;
  /** Drops every connection (the broker stays up). */
  kick(): void;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

async function startBroker(t: Test, host = '127.0.0.1', port = 0): Promise<TestBroker> {
  const aedes = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    open.now++;
    open.max = Math.max(open.max, open.now);
    s.on('close', () => {
      sockets.delete(s);
      open.now--;
    });
    aedes.handle(s);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  const b: TestBroker = {
    port: (server.address() as net.AddressInfo).port,
    url: '',
    connects: 0,
    kick: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      b.kick();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  b.url = `mqtt://${host}:${b.port}`;
  aedes.on('client', () => b.connects++);
  t.teardown(async () => {
    await b.close().catch(() => undefined);
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
  });
  return b;
}

/** A port nothing listens on (taken and released). */
async function deadPort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, host, resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function startUplink(t: Test, url: UplinkDeps['url'], extra: Partial<UplinkDeps> = {}): Promise<Uplink> {
  const dir = t.testdir();
  const outbox = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits: { maxRows: 1_000_000, maxBytes: 1 << 30, maxAgeMs: 86_400_000 } });
  await outbox.start();
  t.teardown(() => outbox.stop());
  const uplink = new Uplink({ gatewayId: 'gw-failover', url, logger: silentLogger(), outbox, version: '1', batchSize: 100, window: 2, statusIntervalMs: 60_000, keepaliveS: 30, reconnect: { minMs: 50, maxMs: 200 }, ...extra });
  t.teardown(() => uplink.stop());
  await uplink.start();
  return uplink;
}

t.test('a list whose first address is dead connects to the second', async (t) => {
  const b = await startBroker(t);
  const dead = `mqtt://127.0.0.1:${await deadPort()}`;
  const uplink = await startUplink(t, [dead, b.url]);
  await waitFor(() => uplink.connected, 'connected to the second address');
  t.match(uplink.stats(), { hub: b.url, hubAddress: '127.0.0.1', hubs: [dead, b.url] }, 'stats say which hub is in use');
  t.equal(b.connects, 1);
});

t.test('a comma string works the same, with the system resolver for a name (localhost)', async (t) => {
  const b = await startBroker(t);
  const url = ` mqtt://127.0.0.1:${await deadPort()} , mqtt://localhost:${b.port}`;
  const uplink = await startUplink(t, url);
  await waitFor(() => uplink.connected, 'connected to localhost');
  t.match(uplink.stats(), { hub: `mqtt://localhost:${b.port}`, hubAddress: '127.0.0.1' }, 'the name, and the address it resolved to');
});

t.test('a loss moves to the next address round robin, one connection at a time', async (t) => {
  const [a, b, c] = [await startBroker(t), await startBroker(t), await startBroker(t)];
  open.max = open.now;
  const uplink = await startUplink(t, [a.url, b.url, c.url]);
  await waitFor(() => uplink.connected, 'connected');
  t.equal(uplink.stats().hub, a.url, 'the first address first');
  const seen: string[] = [];
  for (const from of [a, b, c]) {
    const connects = uplink.stats().connects;
    from.kick(); // the hub stays up: the uplink still moves on (it prefers none)
    await waitFor(() => uplink.connected && uplink.stats().connects > connects, 'reconnected');
    seen.push(uplink.stats().hub!);
  }
  t.same(seen, [b.url, c.url, a.url], 'A -> B -> C -> A: the next one after the one that failed');
  t.equal(uplink.stats().failovers, 3, 'three failovers counted');
  t.same([a.connects, b.connects, c.connects], [2, 1, 1], 'no attempt went anywhere else');
  t.ok(open.max <= 1, `never two connections open at once (most: ${open.max})`);
});

t.test('a dead hub is skipped; the uplink keeps turning until one answers', async (t) => {
  const a = await startBroker(t);
  const b = await startBroker(t);
  const uplink = await startUplink(t, `${a.url},${b.url}`);
  await waitFor(() => uplink.stats().hub === a.url, 'on A');
  await b.close();
  await a.close(); // both gone: attempts go round A, B, A, B …
  await waitFor(() => !uplink.connected, 'offline');
  const back = await startBroker(t, '127.0.0.1', b.port);
  await waitFor(() => uplink.connected, 'connected again once B is back', 15_000);
  t.equal(uplink.stats().hub, back.url, 'on B');
  t.match(uplink.stats().lastError, null, 'the last error is cleared on connect');
});

t.test('a name with several records: resolved at each attempt, each record in turn', async (t) => {
  const b1 = await startBroker(t, '127.0.0.1');
  let b2: TestBroker;
  try {
    b2 = await startBroker(t, '127.0.0.2', b1.port);
  } catch (err) {
    t.comment(`SKIPPED: cannot listen on 127.0.0.2:${b1.port} (${(err as Error).message})`);
    return;
  }
  const asked: string[] = [];
  let records = [{ address: '127.0.0.2', family: 4 }, { address: '127.0.0.1', family: 4 }];
  const lookup: LookupAll = async (name) => {
    asked.push(name);
    return records;
  };
  const url = `mqtt://hubs.ioc.test:${b1.port}`;
  const uplink = await startUplink(t, url, { lookup });
  await waitFor(() => uplink.connected, 'connected');
  t.match(uplink.stats(), { hub: url, hubAddress: '127.0.0.2' }, 'the first record first');
  t.same(asked, ['hubs.ioc.test'], 'resolved once for one attempt');
  b2.kick();
  await waitFor(() => uplink.connected && uplink.stats().hubAddress === '127.0.0.1', 'on the second record');
  t.equal(asked.length, 2, 'resolved again for the next attempt');
  // The record set changes (the dead node removed from DNS): the next attempt sees it at once.
  records = [{ address: '127.0.0.1', family: 4 }];
  await b2.close();
  b1.kick();
  await waitFor(() => uplink.connected && uplink.stats().connects === 3, 'reconnected');
  t.equal(uplink.stats().hubAddress, '127.0.0.1', 'the one record left');
  t.equal(b2.connects, 1, 'the removed record was not tried again');
});

t.test('a name that does not resolve is a failed attempt like any other', async (t) => {
  const b = await startBroker(t);
  const lookup: LookupAll = async (name) => {
    if (name === 'gone.ioc.test') throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return [{ address: '127.0.0.1', family: 4 }];
  };
  const uplink = await startUplink(t, [`mqtt://gone.ioc.test:${b.port}`, `mqtt://hub-b.ioc.test:${b.port}`], { lookup });
  await waitFor(() => uplink.connected, 'connected to the second name');
  t.equal(uplink.stats().hub, `mqtt://hub-b.ioc.test:${b.port}`);
});

t.test('bad addresses are refused with a clear error', async (t) => {
  const outbox = {} as UplinkDeps['outbox'];
  const make = (url: UplinkDeps['url']): Uplink => new Uplink({ gatewayId: 'gw', url, logger: silentLogger(), outbox, version: '1', batchSize: 1, window: 1, statusIntervalMs: 1000, keepaliveS: 30, reconnect: { minMs: 100, maxMs: 200 } });
  t.throws(() => make('mqtt://a:1883,http://b'), { code: 'CONFIG_ERR_INVALID', message: /address 2 'http:\/\/b' uses http:\/\/; a hub address is mqtt:\/\//i });
  t.throws(() => make([]), { code: 'CONFIG_ERR_INVALID', message: /none given/ });
});

t.test('reconfigure to a new list takes effect; the old ring is forgotten', async (t) => {
  const a = await startBroker(t);
  const b = await startBroker(t);
  const uplink = await startUplink(t, a.url);
  await waitFor(() => uplink.connected, 'on A');
  t.equal(await uplink.reconfigure({ url: [`mqtt://127.0.0.1:${await deadPort()}`, b.url] }), true, 'reconnected');
  await waitFor(() => uplink.connected && uplink.stats().hub === b.url, 'on B, past the dead first address');
  t.equal(uplink.stats().failovers, 0, 'a new list starts a new count of failovers');
});
