/**
 * Abuse suite, broker side, part 2: a payload nested too deep is quarantined
 * and acknowledged (issue 13 item 9), and a well-behaved gateway keeps
 * committing telemetry, never disconnected, while another client runs each
 * attack in turn (issue 13 "Tests and measurements"). Part 1:
 * broker-abuse.test.ts.
 */
import t, { type Test } from 'tap';
import { Writable } from 'node:stream';
import type { Aedes } from 'aedes';
import type { MqttClient } from 'mqtt';
import { topics } from '../../contract/index.js';
import { createLogger } from '../../lib/index.js';
import { waitFor } from '../../test/support/wait.js';
import type { Hub } from '../index.js';
import { connectOk, connectPacket, mqttUrl, rawSocket, remainingLength, startSecureHub, tryConnect } from './support.js';

/** A logger whose JSON lines the test can read. */
function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const dest = new Writable({ write(chunk, _enc, cb) { out.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
  return { logger: createLogger({ level: 'info', destination: dest }), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

let seq = 0;
/** A valid telemetry batch (a fresh seq each call), padded with trailing spaces to about `bytes`. */
function batch(bytes = 200): string {
  seq++;
  const json = JSON.stringify({ v: 1, epoch: 'abuse', seq, readings: [{ device: 'd', point: 'p', ts: Date.now(), value: seq, quality: 'good' }] });
  return json + ' '.repeat(Math.max(0, bytes - json.length));
}

async function gateway(t: Test, hub: Hub, id: string, extra: Record<string, unknown> = {}): Promise<MqttClient> {
  const cred = await hub.identity.issueGatewayCredential(id);
  return connectOk(t, mqttUrl(hub), { clientId: id, username: id, password: cred.password, ...extra });
}

async function consumerAccount(hub: Hub, name = 'ioc'): Promise<{ username: string; password: string }> {
  return hub.identity.createAccount({ username: name, kind: 'consumer' }, { actor: 'test' });
}

/** SUBSCRIBE with many filters in ONE packet; resolves with the SUBACK's return codes (mqtt.js hides them behind one error when any is 0x80). */
function subscribeMany(client: MqttClient, filters: string[]): Promise<number[]> {
  return new Promise((resolve) => {
    const onPacket = (packet: unknown): void => {
      const p = packet as { cmd: string; granted?: number[] };
      if (p.cmd !== 'suback') return;
      client.off('packetreceive', onPacket);
      resolve(p.granted ?? []);
    };
    client.on('packetreceive', onPacket);
    client.subscribe(filters, { qos: 1 }, () => undefined);
  });
}

async function retainedTopics(aedes: Aedes): Promise<string[]> {
  const out: string[] = [];
  for await (const p of (aedes as unknown as { persistence: any }).persistence.createRetainedStream('#') as AsyncIterable<{ topic: string }>) out.push(p.topic);
  return out;
}

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
