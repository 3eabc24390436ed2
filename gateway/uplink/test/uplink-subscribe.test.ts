/**
 * The uplink's API for other gateway services (issue 6): subscriptions that
 * survive reconnects and name a refused topic, publish with acknowledgement,
 * and reconfigure to another hub address.
 */
import t from 'tap';
import path from 'node:path';
import { isIocError, topics } from '../../../contract/index.js';
import { startHub } from '../../../hub/index.js';
import { silentLogger } from '../../../lib/index.js';
import { startSecureHub, tempDir } from '../../../hub/test/support.js';
import { waitFor } from '../../../test/support/wait.js';
import { SqliteOutbox } from '../../outbox/sqlite-outbox.js';
import { topicMatches, Uplink } from '../uplink.js';

const limits = { maxRows: 1_000_000, maxBytes: 1 << 30, maxAgeMs: 86_400_000 };

t.test('topic filters', async (t) => {
  t.ok(topicMatches('ioc/v1/gw/a/cmd/+', 'ioc/v1/gw/a/cmd/ping'));
  t.notOk(topicMatches('ioc/v1/gw/a/cmd/+', 'ioc/v1/gw/a/cmd/ping/result'));
  t.ok(topicMatches('ioc/v1/gw/a/#', 'ioc/v1/gw/a/cmd/ping/result'));
  t.notOk(topicMatches('ioc/v1/gw/a/status', 'ioc/v1/gw/a'));
});

t.test('subscribe, refusal named per topic, resubscribe after reconnect, publish, reconfigure', async (t) => {
  const hub = await startSecureHub(t);
  const cred = await hub.identity.issueGatewayCredential('gw-a');
  const dir = tempDir(t);
  const outbox = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits });
  await outbox.start();
  t.teardown(() => outbox.stop());
  const uplink = new Uplink({
    gatewayId: 'gw-a', url: `mqtt://127.0.0.1:${hub.mqttPort}`, username: cred.username, password: cred.password, logger: silentLogger(), outbox, version: '1',
    batchSize: 100, window: 2, statusIntervalMs: 60_000, keepaliveS: 30, reconnect: { minMs: 50, maxMs: 200 },
  });
  t.teardown(() => uplink.stop());
  await t.rejects(uplink.publish(topics.configReported('gw-a'), '{}'), { code: 'GW_ERR_UPLINK_OFFLINE' }, 'publish while not connected says so');
  const got: string[] = [];
  await uplink.subscribe(topics.cmd('gw-a', '+'), (payload) => got.push(payload.toString()));
  await uplink.start();
  await waitFor(() => uplink.connected, 'connected');
  const send = (topic: string, text: string): Promise<void> =>
    new Promise((resolve, reject) => hub.broker.instance.publish({ cmd: 'publish', topic, payload: Buffer.from(text), qos: 1, retain: false, dup: false }, (e) => (e ? reject(e) : resolve())));
  await waitFor(async () => {
    await send(topics.cmd('gw-a', 'ping'), 'one');
    return got.includes('one');
  }, 'subscribed on connect');

  const err = await uplink.subscribe(topics.configDesired('gw-b'), () => undefined).catch((e: unknown) => e);
  t.ok(isIocError(err, 'GW_ERR_SUBSCRIBE_REFUSED'), 'another gateway\'s topic is refused');
  t.match((err as Error).message, /ioc\/v1\/gw\/gw-b\/config\/desired/, 'the error names the topic');

  const connects = uplink.stats().connects;
  hub.broker.closeClient('gw-a');
  await waitFor(() => uplink.stats().connects > connects && uplink.connected, 'reconnected');
  await waitFor(async () => {
    await send(topics.cmd('gw-a', 'ping'), 'two');
    return got.includes('two');
  }, 'subscription renewed after the reconnect');
  await uplink.publish(topics.configReported('gw-a'), JSON.stringify({ x: 1 }));
  t.pass('publish resolves on the hub\'s acknowledgement');

  // Another hub: the uplink moves there; a wrong address leaves its reason in lastError.
  const other = await startHub({ dataDir: path.join(dir, 'other'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  t.teardown(() => other.stop());
  t.equal(await uplink.reconfigure({ batchSize: 50 }), false, 'tuning alone does not reconnect');
  t.equal(await uplink.reconfigure({ url: 'mqtt://127.0.0.1:1' }), true, 'a new address reconnects');
  await waitFor(() => /ECONNREFUSED/.test(uplink.stats().lastError ?? ''), 'the reason is kept');
  t.equal(await uplink.reconfigure({ url: `mqtt://127.0.0.1:${other.mqttPort}`, username: undefined, password: undefined }), true);
  await waitFor(() => uplink.connected, 'connected to the other hub');
  t.equal(uplink.stats().lastError, null, 'cleared on connect');
});
