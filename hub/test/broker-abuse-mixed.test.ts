/**
 * Abuse suite, broker side, part 2: a payload nested too deep is quarantined
 * and acknowledged (issue 13 item 9), and a well-behaved gateway keeps
 * committing telemetry, never disconnected, while another client runs each
 * attack in turn (issue 13 "Tests and measurements"). Part 1:
 * broker-abuse.test.ts.
 */
import t from 'tap';
import { topics } from '../../contract/index.js';
import { waitFor } from '../../test/support/wait.js';
import type { Hub } from '../index.js';
import { batch, captureLogger, consumerAccount, gateway, retainedTopics, subscribeMany } from './abuse-support.js';
import { connectOk, connectPacket, mqttUrl, rawSocket, remainingLength, startSecureHub, tryConnect } from './support.js';


t.test('an event nested 150,000 levels deep is quarantined and acknowledged, the connection kept', async (t) => {
  const hub = await startSecureHub(t);
  const gw = await gateway(t, hub, 'gw-1');
  let quarantined = 0;
  hub.events.on('quarantine', () => quarantined++);
  const deep = `{"v":1,"id":"d","ts":${Date.now()},"type":"test.deep","severity":"info","message":"m","data":${'['.repeat(150_000)}${']'.repeat(150_000)}}`;
  await gw.publishAsync(topics.events('gw-1'), deep, { qos: 1 });
  t.equal(quarantined, 1, 'quarantined (PUBACK came after it)');
  t.ok(gw.connected, 'the connection stays: the gateway will not resend it forever');
});

t.test('a well-behaved gateway keeps committing telemetry, unaffected, while another client runs each attack', async (t) => {
  const hub = await startSecureHub(t, { brokerLimits: { maxOutgoingBytes: 256 * 1024 } });
  const good = await gateway(t, hub, 'gw-good');
  let closedGood = 0;
  good.on('close', () => closedGood++);
  let committed = 0;
  hub.events.on('batch', (b) => {
    if (b.gateway === 'gw-good' && !b.duplicate) committed++;
  });
  let sent = 0;
  let stop = false;
  const pump = (async () => {
    while (!stop) {
      await good.publishAsync(topics.telemetry('gw-good'), JSON.stringify({ v: 1, epoch: 'good', seq: ++sent, readings: [{ device: 'd', point: 'p', ts: Date.now(), value: sent, quality: 'good' }] }), { qos: 1 });
    }
  })();
  const progress = async (what: string): Promise<void> => {
    const at = committed;
    await waitFor(() => committed >= at + 20 || null, `20 more good batches committed after ${what}`);
  };
  const bad = await gateway(t, hub, 'gw-bad', { clean: false });
  await subscribeMany(bad, Array.from({ length: 5000 }, (_, i) => `ioc/v1/gw/gw-bad/x/${i}`));
  await progress('the subscribe flood');
  for (let i = 0; i < 20; i++) await bad.publishAsync(topics.telemetry('gw-bad'), batch(60 * 1024), { qos: 1, retain: true });
  await progress('the retained flood');
  await subscribeMany(bad, ['ioc/v1/gw/gw-bad/\u0000']);
  await bad.publishAsync(topics.events('gw-bad'), `{"v":1,"data":${'['.repeat(150_000)}${']'.repeat(150_000)}}`, { qos: 1 });
  await progress('NUL filters and a deep payload');
  const acct = await consumerAccount(hub);
  const q = await connectOk(t, mqttUrl(hub), { clientId: 'ioc:q', username: acct.username, password: acct.password, clean: false });
  await subscribeMany(q, [topics.telemetry('gw-bad')]);
  await q.endAsync();
  for (let i = 0; i < 50; i++) await bad.publishAsync(topics.telemetry('gw-bad'), batch(8 * 1024), { qos: 1 });
  await progress('the offline-queue flood');
  const raw = await rawSocket(t, hub.mqttPort);
  raw.write(connectPacket({ clientId: 'ioc:slow', clean: true, username: acct.username, password: acct.password }));
  const filter = Buffer.from(topics.telemetry('gw-bad'));
  const body = Buffer.concat([Buffer.from([0x00, 0x01, filter.length >> 8, filter.length & 255]), filter, Buffer.from([0x00])]);
  raw.write(Buffer.concat([Buffer.from([0x82]), remainingLength(body.length), body]));
  await waitFor(() => (hub.broker.instance as unknown as { clients: Record<string, any> }).clients['ioc:slow']?.subscriptions?.[topics.telemetry('gw-bad')] || null, 'the slow reader to subscribe');
  raw.pause();
  for (let i = 0; i < 200; i++) await bad.publishAsync(topics.telemetry('gw-bad'), batch(64 * 1024), { qos: 1 });
  await waitFor(() => hub.broker.limitCounters.slowReaders >= 1 || null, 'the slow reader to be disconnected');
  await progress('the slow reader');
  for (let i = 0; i < 40; i++) await tryConnect(t, mqttUrl(hub), { clientId: 'gw-bad', username: 'gw-bad', password: `guess-${i}` });
  await progress('the bad-login storm');
  stop = true;
  await pump;
  await waitFor(() => committed >= sent || null, 'every good batch committed');
  t.equal(committed, sent, `all ${sent} batches of the good gateway committed`);
  t.equal(closedGood, 0, 'the good gateway was never disconnected');
  t.ok(good.connected);
});

t.test('3,000 forbidden filters in one SUBSCRIBE: all 0x80, one log line', async (t) => {
  const cap = captureLogger();
  const hub = await startSecureHub(t, { logger: cap.logger });
  const acct = await consumerAccount(hub);
  const ioc = await connectOk(t, mqttUrl(hub), { clientId: 'ioc:1', username: acct.username, password: acct.password });
  const codes = await subscribeMany(ioc, Array.from({ length: 3000 }, (_, i) => `ioc/v1/gw/g${i}/config/desired`));
  t.equal(codes.filter((c) => c === 128).length, 3000, 'every forbidden filter refused');
  t.equal(cap.lines().filter((l) => String(l.msg).startsWith('subscription refused')).length, 1, 'logged once for the connection');
  t.equal(hub.mqttAuth.counters.subscribeDenied, 3000, 'and counted');
});
