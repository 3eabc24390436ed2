/**
 * Generic MQTT clients at the hub (issue 14 item 9): `hub run --auth open`
 * on loopback (refused elsewhere) lets a generic mqtt.js client in with any
 * client id, and an integration account lets one in with the client ids and
 * topics an admin set, through the CLI and the API. Real `ioc-edge` process,
 * real hub, real mqtt.js clients on loopback.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { runCli } from '../../test/support/cli.js';
import { waitFor } from '../../test/support/wait.js';
import { api, connectOk, mqttUrl, startSecureHub, tempDir, tryConnect } from './support.js';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bin/ioc-edge.js');

/** Resolves with the first message on `topic` (subscribed first). */
function firstMessage(client: mqtt.MqttClient, topic: string): Promise<{ payload: string; retain: boolean }> {
  return new Promise((resolve, reject) => {
    client.on('message', (tp, payload, packet) => {
      if (tp === topic) resolve({ payload: payload.toString(), retain: packet.retain });
    });
    client.subscribe(topic, { qos: 1 }, (err) => err && reject(err));
  });
}

t.test('hub run --auth open: loopback only; a generic client connects with any client id', async (t) => {
  const refused = await runCli(['hub', 'run', '--auth', 'open', '--data-dir', tempDir(t), '--mqtt-host', '0.0.0.0', '--allow-plain', '--mqtt-port', '0', '--http-port', '0']);
  t.equal(refused.code, 1, 'refused on a non-loopback address');
  t.match(refused.err, /loopback only/);
  t.equal((await runCli(['hub', 'run', '--auth', 'sometimes', '--data-dir', tempDir(t)])).code, 2, 'a bad --auth value is a usage error');

  const proc = spawn(process.execPath, [BIN, 'hub', 'run', '--auth', 'open', '--data-dir', tempDir(t), '--mqtt-port', '0', '--http-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  proc.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const l of parts) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  const listening = await waitFor(() => lines.find((l) => l.msg === 'mqtt listening'), 'the hub to listen', 30_000);
  // 'hub running' comes once startHub returned, in the same tick as the SIGTERM handler.
  await waitFor(() => lines.find((l) => l.msg === 'hub running'), 'the hub to run', 30_000);
  t.ok(lines.some((l) => l.code === 'HUB_ERR_INSECURE_CONFIG' && String(l.msg).includes('authentication is OFF')), 'warned that authentication is off');
  const url = `mqtt://127.0.0.1:${String(listening.port)}`;
  const a = await connectOk(t, url, { clientId: 'paho-interop-client-a' });
  const b = await connectOk(t, url, { clientId: 'another arbitrary id' });
  const got = firstMessage(b, 'TopicA/B');
  await new Promise((r) => setTimeout(r, 0));
  await a.publishAsync('TopicA/B', 'qos2 hello', { qos: 2 });
  t.match(await got, { payload: 'qos2 hello' }, 'QoS 2 publish delivered between two generic clients');
  await a.publishAsync('TopicA/retained', 'kept', { qos: 1, retain: true });
  const c = await connectOk(t, url, { clientId: 'late-joiner' });
  t.match(await firstMessage(c, 'TopicA/retained'), { payload: 'kept', retain: true }, 'a retained message outside the contract is kept for a late subscriber');
  proc.kill('SIGTERM');
  const [code] = await new Promise<[number | null]>((resolve) => proc.once('exit', (c) => resolve([c])));
  t.equal(code, 0, 'stops cleanly on SIGTERM');
});

t.test('integration account: admin-set client ids and topic patterns, within the ACL', async (t) => {
  const hub = await startSecureHub(t);
  const url = mqttUrl(hub);
  const admin = await hub.identity.createApiToken({ name: 'admin', role: 'admin' }, { actor: 'test' });
  const base = `http://127.0.0.1:${hub.httpPort}`;
  // CLI → API → registry.
  const cli = await runCli(['account', 'create', '--type', 'integration', '--username', 'scada', '--client-ids', 'scada-*,paho', '--publish', 'scada/#,ioc/v1/gw/+/cmd/+', '--subscribe', 'scada/#,ioc/v1/gw/+/telemetry', '--api', base, '--token', admin.token]);
  t.equal(cli.code, 0, cli.err);
  const password = /password \(shown once\): (\S+)/.exec(cli.out)?.[1];
  t.ok(password, 'password printed once');
  t.match(cli.out, /client ids: scada-\*, paho/);

  t.match(await api(hub, 'POST', '/api/v1/accounts', { token: admin.token, body: { username: 'greedy', kind: 'integration', rules: { clientIds: ['g'], subscribe: ['ioc/v1/provision/#'] } } }), { status: 400, body: { error: { code: 'HUB_ERR_BAD_REQUEST', message: /goes beyond/ } } }, 'provisioning topics cannot be granted');
  t.match(await api(hub, 'POST', '/api/v1/accounts', { token: admin.token, body: { username: 'greedy', kind: 'integration', rules: { clientIds: ['g'], publish: ['ioc/v1/gw/+/telemetry'] } } }), { status: 400 }, 'publishing as a gateway cannot be granted');
  t.match(await api(hub, 'POST', '/api/v1/accounts', { token: admin.token, body: { username: 'greedy', kind: 'integration', rules: { clientIds: ['g'], subscribe: ['#'] } } }), { status: 400 }, 'a leading wildcard cannot be granted');
  t.match(await api(hub, 'POST', '/api/v1/accounts', { token: admin.token, body: { username: 'plain', kind: 'consumer', rules: { clientIds: ['x'] } } }), { status: 400 }, 'patterns are for integration accounts only');
  const listed = await api(hub, 'GET', '/api/v1/accounts', { token: admin.token });
  t.match(listed.body.items.find((i: { username: string }) => i.username === 'scada'), { kind: 'integration', rules: { clientIds: ['scada-*', 'paho'] } });

  t.match(await tryConnect(t, url, { clientId: 'other-tool', username: 'scada', password: password! }), { ok: false, code: 2 }, 'a client id outside the globs is refused');
  const s = await connectOk(t, url, { clientId: 'scada-7', username: 'scada', password: password! });
  const p = await connectOk(t, url, { clientId: 'paho', username: 'scada', password: password! });
  const got = firstMessage(p, 'scada/x/y');
  await new Promise((r) => setTimeout(r, 50));
  await s.publishAsync('scada/x/y', 'hi', { qos: 1 });
  t.match(await got, { payload: 'hi' }, 'publish and subscribe inside its patterns');
  const gw = await hub.identity.issueGatewayCredential('gw-1');
  const g = await connectOk(t, url, { clientId: 'gw-1', username: 'gw-1', password: gw.password });
  const tel = firstMessage(p, 'ioc/v1/gw/gw-1/telemetry');
  await new Promise((r) => setTimeout(r, 50));
  await g.publishAsync('ioc/v1/gw/gw-1/telemetry', JSON.stringify({ v: 1, epoch: 'e', seq: 1, readings: [{ device: 'd', point: 'p', ts: Date.now(), value: 1, quality: 'good' }] }), { qos: 1 });
  t.match(await tel, { payload: /"seq":1/ }, 'reads telemetry it was granted');
  const denied = hub.mqttAuth.counters.subscribeDenied;
  p.subscribe('ioc/v1/gw/+/events', { qos: 1 }, () => undefined);
  await waitFor(() => hub.mqttAuth.counters.subscribeDenied > denied || null, 'the ungranted filter to be refused');
  t.pass('a filter outside its subscribe patterns is refused (0x80)');
  const closedP = new Promise<void>((resolve) => s.once('close', () => resolve()));
  s.publish('other/topic', 'x', { qos: 1 });
  await closedP;
  t.pass('a publish outside its patterns closes its connection (like any refused publish)');
  await api(hub, 'POST', '/api/v1/accounts/scada/revoke', { token: admin.token });
  await waitFor(() => (!p.connected ? true : null), 'the revoked account to be disconnected');
  t.match(await tryConnect(t, url, { clientId: 'paho', username: 'scada', password: password!, reconnectPeriod: 0 }), { ok: false, code: 5 }, 'revoked: refused');
});

t.test('hub run --broker-limit: known names and whole numbers only', async (t) => {
  const { parseBrokerLimits } = await import('../broker/broker-limits.js');
  t.same(parseBrokerLimits(['maxQueuedPerSession=5000', 'maxSubscriptions.other=64']), { maxQueuedPerSession: 5000, maxSubscriptions: { other: 64 } });
  const unknown = await runCli(['hub', 'run', '--data-dir', tempDir(t), '--broker-limit', 'maxEverything=3']);
  t.equal(unknown.code, 2);
  t.match(unknown.err, /unknown limit 'maxEverything'; one of maxRetainedBytes/);
  const nan = await runCli(['hub', 'run', '--data-dir', tempDir(t), '--broker-limit', 'maxQueuedPerSession=lots']);
  t.equal(nan.code, 2);
  t.match(nan.err, /maxQueuedPerSession: 'lots' is not a whole number/);
});
