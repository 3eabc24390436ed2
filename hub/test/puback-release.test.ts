/**
 * A committed group's PUBACKs are released a slice per turn of the event loop
 * (hub/store/release-in-slices.ts), on the SQLite store as on PostgreSQL:
 * up to 1,024 answers in one turn overflowed the stack in Aedes' queue
 * (mqemitter released → _do recursion) at 64 publishers × 64 in flight.
 */
import t from 'tap';
import path from 'node:path';
import { topics } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import { HubStore } from '../store/sqlite/hub-store.js';
import { RELEASE_SLICE, releaseInSlices } from '../store/release-in-slices.js';
import { consumerAccount, gateway } from './abuse-support.js';
import { connectOk, mqttUrl, startSecureHub } from './support.js';

/** Counts turns of the event loop (a setImmediate chain) until stopped. */
function turnCounter(): { now(): number; stop(): void } {
  let turn = 0;
  let on = true;
  const next = (): void => {
    turn++;
    if (on) setImmediate(next);
  };
  setImmediate(next);
  return { now: () => turn, stop: () => void (on = false) };
}

t.test('releaseInSlices: every item once, in order, at most a slice per turn', async (t) => {
  const turns = turnCounter();
  const seen: Array<[number, number]> = [];
  await releaseInSlices(Array.from({ length: 200 }, (_, i) => i * 10), (item, i) => seen.push([item / 10, i]), 64);
  turns.stop();
  t.same(seen.map(([a]) => a), Array.from({ length: 200 }, (_, i) => i), 'in order, each once');
  t.ok(seen.every(([a, i]) => a === i), 'the index is passed');
  const empty: number[] = [];
  await releaseInSlices(empty, () => t.fail('nothing to release'));
  let n = 0;
  await releaseInSlices([1, 2, 3], () => n++, 0);
  t.equal(n, 3, 'a slice below 1 is taken as 1');
});

t.test('SQLite store: a group of 1,024 batches is answered at most RELEASE_SLICE per turn of the event loop', async (t) => {
  const store = new HubStore({ file: path.join(t.testdir(), 'hub.sqlite'), logger: silentLogger() });
  await store.start();
  t.teardown(() => store.stop());
  const turns = turnCounter();
  const perTurn = new Map<number, number>();
  const all = Array.from({ length: 1024 }, (_, i) => store.commitBatch({ gateway: `g${i % 64}`, epoch: 'e', seq: i, historical: false, readings: [{ device: 'd', point: 'p', ts: 1000 + i, value: i, quality: 'good' }] })
    .then((r) => {
      perTurn.set(turns.now(), (perTurn.get(turns.now()) ?? 0) + 1);
      return r;
    }));
  const results = await Promise.all(all);
  turns.stop();
  t.equal(store.counters.commits, 1, 'one group commit (queued in one turn)');
  t.ok(results.every((r) => r === 'stored'), 'all stored');
  const most = Math.max(...perTurn.values());
  t.ok(most <= RELEASE_SLICE, `at most ${RELEASE_SLICE} answers in one turn (most: ${most}, over ${perTurn.size} turns)`);
});

t.test('64 gateways x 64 QoS 1 batches in flight, with a subscriber: every batch acknowledged and committed, no stack overflow', async (t) => {
  const hub = await startSecureHub(t);
  const acct = await consumerAccount(hub);
  const consumer = await connectOk(t, mqttUrl(hub), { clientId: acct.username, username: acct.username, password: acct.password });
  let forwarded = 0;
  consumer.on('message', () => forwarded++);
  await consumer.subscribeAsync(topics.telemetry('+'), { qos: 1 });
  const gws = [];
  for (let g = 0; g < 64; g++) gws.push(await gateway(t, hub, `gw-${String(g).padStart(2, '0')}`));
  let committed = 0;
  hub.events.on('batch', (b) => {
    if (!b.duplicate) committed++;
  });
  let closes = 0;
  for (const c of gws) c.on('close', () => closes++);
  // All 4,096 PUBLISHes at once: mqtt.js does not wait for PUBACKs, so 64 per client are in flight.
  await Promise.all(gws.flatMap((c, g) => Array.from({ length: 64 }, (_, seq) => c.publishAsync(topics.telemetry(`gw-${String(g).padStart(2, '0')}`),
    JSON.stringify({ v: 1, epoch: 'fan', seq: seq + 1, readings: [{ device: 'd', point: 'p', ts: Date.now(), value: seq, quality: 'good' }] }), { qos: 1 }))));
  t.equal(committed, 4096, 'every batch committed before its PUBACK');
  t.equal(closes, 0, 'no publisher was disconnected');
  t.ok(hub.store.counters.commits < 4096, `group commits (${hub.store.counters.commits} for 4,096 batches)`);
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}/healthz`);
  t.equal(res.status, 200, 'the hub still answers');
  t.ok(forwarded > 0, `the subscriber got messages (${forwarded})`);
});
