/**
 * The ACL matrix, end to end: every kind of identity × every topic family ×
 * publish and subscribe, against the real Aedes broker with real mqtt.js
 * clients. A refused publish closes the connection without PUBACK and never
 * reaches a subscriber; a refused subscription gets 0x80 in the SUBACK while
 * the other topics of the same SUBSCRIBE are granted.
 */
import t from 'tap';
import type { MqttClient } from 'mqtt';
import { claimClientId, CLAIM_USERNAME, parseClaimToken, topics } from '../../contract/index.js';
import { subscribeEach } from '../../gateway/uplink/mqtt-subscribe.js';
import { waitFor } from '../../test/support/wait.js';
import { connectOk, mqttUrl, startSecureHub } from './support.js';

type Role = 'gateway' | 'other-gateway' | 'consumer' | 'service' | 'claim';
const ROLES: Role[] = ['gateway', 'other-gateway', 'consumer', 'service', 'claim'];

t.test('ACL matrix: role × topic family × publish/subscribe', async (t) => {
  const hub = await startSecureHub(t);
  const url = mqttUrl(hub);
  const gwA = await hub.identity.issueGatewayCredential('gw-a', { site: 'north' });
  const gwB = await hub.identity.issueGatewayCredential('gw-b', { site: 'north' });
  const consumer = await hub.identity.createAccount({ username: 'ioc-dash', kind: 'consumer' }, { actor: 'test' });
  const service = await hub.identity.createAccount({ username: 'cfg-svc', kind: 'service' }, { actor: 'test' });
  const { token } = await hub.identity.createClaim({ site: 'north' }, { actor: 'test' });
  const claimId = parseClaimToken(token)!.claimId;

  let seq = 0;
  const login = (role: Role): { clientId: string; username: string; password: string } => {
    switch (role) {
      case 'gateway': return { clientId: 'gw-a', ...gwA };
      case 'other-gateway': return { clientId: 'gw-b', ...gwB };
      case 'consumer': return { clientId: `ioc-dash:${++seq}`, username: consumer.username, password: consumer.password };
      case 'service': return { clientId: `cfg-svc:${++seq}`, username: service.username, password: service.password };
      case 'claim': return { clientId: claimClientId(claimId), username: CLAIM_USERNAME, password: token };
    }
  };

  // Topic families, all about gateway gw-a (and the claim's own provisioning session).
  const families: Record<string, string> = {
    status: topics.status('gw-a'),
    telemetry: topics.telemetry('gw-a'),
    events: topics.events('gw-a'),
    'config/desired': topics.configDesired('gw-a'),
    'config/reported': topics.configReported('gw-a'),
    cmd: topics.cmd('gw-a', 'reboot'),
    'cmd/result': topics.cmdResult('gw-a', 'reboot'),
    'fw (hub → gw)': 'ioc/v1/gw/gw-a/fw/offer',
    'fw (gw → hub)': 'ioc/v1/gw/gw-a/fw/state',
    'fw (other)': 'ioc/v1/gw/gw-a/fw/anything',
    'provision/request': topics.provisionRequest(claimId),
    'provision/response': topics.provisionResponse(claimId),
    'outside namespace': 'city/traffic/junction-4',
  };
  const allowedPublish: Record<Role, string[]> = {
    gateway: ['status', 'telemetry', 'events', 'config/reported', 'cmd/result', 'fw (gw → hub)'],
    'other-gateway': [],
    consumer: [],
    service: ['config/desired', 'cmd', 'fw (hub → gw)'],
    claim: ['provision/request'],
  };
  const filters: Record<string, string> = {
    ...families,
    'all telemetry (+)': topics.allTelemetry,
    'all status (+)': topics.allStatus,
    'own namespace (#)': topics.gatewayAll('gw-a'),
    'all gateways (#)': 'ioc/v1/gw/#',
    'all provisioning (+)': 'ioc/v1/provision/+/response',
    'everything (#)': '#',
    $SYS: '$SYS/#',
  };
  const allowedSubscribe: Record<Role, string[]> = {
    gateway: ['status', 'telemetry', 'events', 'config/desired', 'config/reported', 'cmd', 'cmd/result', 'fw (hub → gw)', 'fw (gw → hub)', 'fw (other)', 'own namespace (#)'],
    'other-gateway': [],
    consumer: ['status', 'telemetry', 'events', 'all telemetry (+)', 'all status (+)'],
    service: ['status', 'telemetry', 'events', 'config/desired', 'config/reported', 'cmd', 'cmd/result', 'fw (hub → gw)', 'fw (gw → hub)', 'fw (other)', 'all telemetry (+)', 'all status (+)', 'own namespace (#)', 'all gateways (#)'],
    claim: ['provision/response'],
  };

  // A service account watches every gateway topic: refused publishes must never show up here.
  const watcher = await connectOk(t, url, login('service'));
  const seen = new Set<string>();
  watcher.on('message', (_topic, payload) => seen.add(payload.toString()));
  await watcher.subscribeAsync(['ioc/v1/gw/#'], { qos: 1 });

  const payloadFor = (family: string, marker: string): string => {
    switch (family) {
      case 'status': return JSON.stringify({ v: 1, state: 'online', ts: Date.now(), version: marker });
      case 'telemetry': return JSON.stringify({ v: 1, epoch: marker, seq: 1, readings: [{ device: 'd', point: 'p', ts: Date.now(), value: 1, quality: 'good' }] });
      case 'events': return JSON.stringify({ v: 1, id: marker, ts: Date.now(), type: 'test.acl', severity: 'info', message: 'acl' });
      case 'provision/request': return JSON.stringify({ v: 1, transaction: marker, gatewayId: 'gw-new' });
      default: return JSON.stringify({ marker });
    }
  };

  const publishOutcome = (client: MqttClient, topic: string, payload: string): Promise<'acked' | 'closed'> =>
    new Promise((resolve) => {
      client.once('close', () => resolve('closed'));
      client.publish(topic, payload, { qos: 1 }, (err) => {
        if (!err) resolve('acked');
      });
    });

  await t.test('publish', async (t) => {
    for (const role of ROLES) {
      for (const [family, topic] of Object.entries(families)) {
        const marker = `m${++seq}`;
        const client = await connectOk(t, url, login(role));
        const outcome = await publishOutcome(client, topic, payloadFor(family, marker));
        const allowed = allowedPublish[role].includes(family);
        t.equal(outcome, allowed ? 'acked' : 'closed', `${role} publish ${family}: ${allowed ? 'allowed' : 'refused'}`);
        if (allowed && topic.startsWith('ioc/v1/gw/')) await waitFor(() => [...seen].some((s) => s.includes(marker)), `${family} delivered`);
        if (!allowed) t.notOk([...seen].some((s) => s.includes(marker)), `${role} ${family} never delivered`);
        await client.endAsync(true);
      }
    }
    t.ok(hub.mqttAuth.counters.publishDenied > 0, 'refusals counted');
  });

  await t.test('subscribe', async (t) => {
    for (const role of ROLES) {
      const client = await connectOk(t, url, login(role));
      for (const [family, filter] of Object.entries(filters)) {
        const granted = await new Promise<number>((resolve) => {
          client.subscribe(filter, { qos: 1 }, (_err, subs, packet) => resolve((packet as { granted?: number[] } | undefined)?.granted?.[0] ?? subs?.[0]?.qos ?? -1));
        });
        const allowed = allowedSubscribe[role].includes(family);
        t.equal(granted, allowed ? 1 : 0x80, `${role} subscribe ${family} (${filter}): ${allowed ? 'granted' : '0x80'}`);
      }
      t.equal(client.connected, true, `${role} stays connected after refused subscriptions`);
      await client.endAsync(true);
    }
  });

  await t.test('one SUBSCRIBE: allowed topics granted, refused ones 0x80', async (t) => {
    const client = await connectOk(t, url, login('consumer'));
    const granted = await new Promise<number[]>((resolve) => {
      client.subscribe([topics.allTelemetry, topics.allEvents, topics.configDesired('gw-a'), '#'], { qos: 1 }, (_e, _s, packet) => resolve((packet as { granted: number[] }).granted));
    });
    t.same(granted, [1, 1, 0x80, 0x80]);
    // The granted subscriptions work: gw-a's telemetry reaches the consumer.
    const got = new Promise<string>((resolve) => client.on('message', (topic) => resolve(topic)));
    const gw = await connectOk(t, url, login('gateway'));
    await gw.publishAsync(topics.telemetry('gw-a'), payloadFor('telemetry', 'deliver'), { qos: 1 });
    t.equal(await got, topics.telemetry('gw-a'));
  });

  await t.test('the gateway turns a refusal into an error naming the topic; the granted topic stays', async (t) => {
    const gw = await connectOk(t, url, login('gateway'));
    const err = await subscribeEach(gw, [topics.configDesired('gw-a'), topics.configDesired('gw-b')]).catch((e: unknown) => e);
    t.match(err, { code: 'GW_ERR_SUBSCRIBE_REFUSED', message: /'ioc\/v1\/gw\/gw-b\/config\/desired'/ });
    t.notMatch((err as Error).message, /gw-a/, 'only the refused topic is named');
    const got = new Promise<string>((resolve) => gw.on('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
    const svc = await connectOk(t, url, login('service'));
    await svc.publishAsync(topics.configDesired('gw-a'), '{"version":2}', { qos: 1 });
    t.equal(await got, `${topics.configDesired('gw-a')} {"version":2}`, 'granted subscription delivers');
  });
});
