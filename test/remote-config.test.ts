/**
 * Remote configuration end to end (issue 6): a real hub, a Modbus TCP
 * simulator and a real gateway on loopback. Pushes go through the hub API;
 * the gateway applies, confirms or rolls back by itself and reports.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { configHash, CONFIG_MAX_BYTES, topics, type ConfigDesired } from '../contract/index.js';
import { startGateway } from '../gateway/index.js';
import { startHub } from '../hub/index.js';
import { silentLogger } from '../lib/index.js';
import { freePort } from '../scripts/sim/free-port.js';
import { gatewayConfig, startSim } from './support/stack.js';
import { hubApi, longestGap, push, pushable, recordReadings, reportOf, startRemoteStack } from './support/remote-config.js';
import { waitFor } from './support/wait.js';
import { failIfLingering } from './support/lingering.js';

const GW = 'gw-test-01';

failIfLingering(t);

t.test('a push is applied: only the changed device restarts, the unchanged one never stops polling', async (t) => {
  const dir = t.testdir();
  const { hub, gw, cfg } = await startRemoteStack(t, dir);
  const rec = recordReadings(gw);
  t.teardown(() => rec.stop());
  await waitFor(() => (rec.times.get('flood-1')?.length ?? 0) > 10, 'flood readings flowing');
  const before = gw.pollStats();

  const next = pushable(cfg);
  (next.devices as Array<Record<string, unknown>>)[1]!.pollIntervalMs = 200; // tsc-1 changes, flood-1 does not
  const t0 = Date.now();
  const res = await push(hub, GW, { config: next, note: 'slower traffic controller polling' });
  t.equal(res.status, 201, 'accepted');
  t.equal(res.body.version, 1);
  t.match(res.body.hash, /^sha256:[0-9a-f]{64}$/);
  const report = await reportOf(gw, 1, 'applied');
  const t1 = Date.now();
  t.equal(report.running.version, 1, 'runs version 1');
  t.same(report.restarted, { buses: [], devices: ['tsc-1'], uplink: false }, 'only tsc-1 restarted');
  const after = gw.pollStats();
  t.ok(after['flood-1']!.polls >= before['flood-1']!.polls, 'flood-1 driver kept its counters (not restarted)');
  t.ok(after['tsc-1']!.polls < before['tsc-1']!.polls, 'tsc-1 driver is a new one');
  t.equal((gw.config.devices[1] as { pollIntervalMs?: number }).pollIntervalMs, 200, 'running config updated');

  // Polling of the unchanged device never paused: its readings kept coming through the apply.
  await waitFor(() => (rec.times.get('flood-1') ?? []).some((x) => x > t1 + 300), 'flood readings after the apply');
  const gap = longestGap(rec.times.get('flood-1')!, t0 - 200, t1 + 300);
  // A liveness check, not a timing one (the counters above prove the driver was not restarted): a paused poller
  // would leave a gap of the whole apply; 5 s is far above what scheduling on a loaded CI machine adds to 100 ms polls.
  t.ok(gap < 5000, `longest gap in flood-1 readings during the apply: ${gap} ms (poll interval 100 ms)`);

  // Persisted atomically in the data folder.
  const dataDir = path.join(dir, 'gw');
  const lastGood = JSON.parse(readFileSync(path.join(dataDir, 'last-good.json'), 'utf8'));
  t.equal(lastGood.doc.version, 1, 'last-good.json holds version 1');
  t.equal(JSON.parse(readFileSync(path.join(dataDir, 'desired.json'), 'utf8')).state, 'applied');

  // The hub sees it: desired against reported.
  const view = await waitFor(async () => {
    const r = await hubApi(hub, 'GET', `/api/v1/gateways/${GW}/config`);
    return r.body.state === 'in-sync' ? r.body : null;
  }, 'hub view in sync');
  t.equal(view.desired.version, 1);
  t.equal(view.desired.pushedBy, 'anonymous', 'who pushed');
  t.equal(view.document.note, 'slower traffic controller polling');
  const audit = (await hub.audit.list({ action: 'config.push' }))[0];
  t.match(audit, { actor: 'anonymous', target: `gateway:${GW}`, outcome: 'ok', detail: { version: 1 } }, 'push audited');

  // Second version: diff and history.
  const v2 = structuredClone(next);
  (v2.devices as Array<Record<string, unknown>>)[0]!.pollIntervalMs = 150;
  t.equal((await push(hub, GW, { config: v2, baseVersion: 1 })).status, 201);
  await reportOf(gw, 2, 'applied');
  const diff = await hubApi(hub, 'GET', `/api/v1/gateways/${GW}/config/diff?from=1&to=2`);
  t.same(diff.body.changes, [{ op: 'replace', path: '/config/devices/0/pollIntervalMs', label: 'config.devices[flood-1].pollIntervalMs', from: 100, to: 150 }], 'diff names the one change');
  const conflict = await push(hub, GW, { config: v2, baseVersion: 1 });
  t.equal(conflict.status, 409, 'a push based on an old version is refused');
  t.equal(conflict.body.error.code, 'CONFIG_ERR_VERSION_CONFLICT');
  const history = await hubApi(hub, 'GET', `/api/v1/gateways/${GW}/config/history`);
  t.ok(history.body.items.some((e: { version: number; status: string }) => e.version === 2 && e.status === 'applied'), 'history has the applied version');
});

t.test('a configuration that fails at the gateway (serial port missing) is rolled back and reported', async (t) => {
  const dir = t.testdir();
  const { hub, gw, cfg } = await startRemoteStack(t, dir);
  const rec = recordReadings(gw);
  t.teardown(() => rec.stop());
  const next = pushable(cfg);
  (next.buses as unknown[]).push({ id: 'rs485', type: 'modbus-rtu', path: '/dev/ttyIOC-DOES-NOT-EXIST' });
  (next.devices as unknown[]).push({ id: 'meter-1', bus: 'rs485', unitId: 5, profile: 'eastron-sdm120' });
  t.equal((await push(hub, GW, { config: next })).status, 201, 'the hub cannot know the gateway has no such port');
  const report = await reportOf(gw, 1, 'rolled-back');
  t.equal(report.running.version, 0, 'still runs its file configuration');
  t.equal(report.error?.code, 'GW_ERR_SERIAL_OPEN');
  t.equal(report.error?.phase, 'apply');
  t.match(report.error?.message, /\/dev\/ttyIOC-DOES-NOT-EXIST/, 'names the port');
  t.match(report.error?.message, /went back to its configuration file/, 'says what the gateway did');
  t.notOk(gw.devices()['meter-1'], 'the new device is not running');
  const since = Date.now();
  await waitFor(() => (rec.times.get('flood-1') ?? []).some((x) => x > since + 200), 'flood-1 still polled');
  const fleet = await waitFor(async () => {
    const r = await hubApi(hub, 'GET', '/api/v1/config/fleet?state=failed');
    return r.body.items.length === 1 ? r.body : null;
  }, 'fleet view shows the failure');
  t.equal(fleet.summary.failed, 1);
  t.match(fleet.items[0].why, /ttyIOC-DOES-NOT-EXIST/, 'the fleet view says why');
  t.notOk(existsSync(path.join(dir, 'gw', 'last-good.json')), 'no last good version was written');
});

t.test('a configuration that cuts the uplink is rolled back within the confirm window and reported once back', async (t) => {
  const dir = t.testdir();
  const { hub, gw, cfg } = await startRemoteStack(t, dir);
  const deadPort = await freePort();
  const next = pushable(cfg);
  (next.hub as Record<string, unknown>).url = `mqtt://127.0.0.1:${deadPort}`;
  const t0 = Date.now();
  t.equal((await push(hub, GW, { config: next, confirmWindowS: 2 })).status, 201);
  await reportOf(gw, 1, 'confirming');
  t.equal(gw.config.hub.url, `mqtt://127.0.0.1:${deadPort}`, 'the new hub address was applied');
  const report = await reportOf(gw, 1, 'rolled-back');
  t.ok(Date.now() - t0 >= 2000, 'waited for the confirm window');
  t.equal(report.error?.code, 'CONFIG_ERR_UNCONFIRMED');
  t.match(report.error?.message, new RegExp(`127\\.0\\.0\\.1:${deadPort}`), 'names the address it could not reach');
  t.match(report.error?.message, /ECONNREFUSED/, 'and why');
  t.equal(gw.config.hub.url, `mqtt://127.0.0.1:${hub.mqttPort}`, 'back on the old hub address');
  const view = await waitFor(async () => {
    const r = await hubApi(hub, 'GET', `/api/v1/gateways/${GW}/config`);
    return r.body.state === 'failed' ? r.body : null;
  }, 'the hub learns why once the gateway is back');
  t.match(view.why, /could not reach the hub/);
  t.equal(view.reported.running.version, 0);
  // The retained version 1 comes again on reconnect: not tried again.
  t.equal(gw.configAgent.runningVersion, 0);
  // A corrected push goes through.
  t.equal((await push(hub, GW, { config: pushable(cfg) })).status, 201);
  const ok = await reportOf(gw, 2, 'applied');
  t.equal(ok.running.version, 2);
});

t.test('an older version is ignored; hostile and oversized documents are rejected', async (t) => {
  const dir = t.testdir();
  const { hub, gw, cfg } = await startRemoteStack(t, dir);
  t.equal((await push(hub, GW, { config: pushable(cfg) })).status, 201);
  t.equal((await push(hub, GW, { config: pushable(cfg) })).status, 201);
  await reportOf(gw, 2, 'applied');
  const publish = (payload: Buffer | string): Promise<void> =>
    new Promise((resolve, reject) => hub.broker.instance.publish({ cmd: 'publish', topic: topics.configDesired(GW), payload: Buffer.from(payload), qos: 1, retain: false, dup: false }, (e) => (e ? reject(e) : resolve())));

  const old: ConfigDesired = { v: 1, gateway: GW, version: 1, hash: configHash(pushable(cfg), []), pushedAt: Date.now(), pushedBy: 'test', config: pushable(cfg) };
  await publish(JSON.stringify(old));
  const ignored = await waitFor(() => gw.configAgent.reported.ignored, 'older version reported as ignored');
  t.equal(ignored.version, 1);
  t.match(ignored.reason, /older than version 2/);
  t.equal(gw.configAgent.runningVersion, 2, 'still runs version 2');

  await publish(Buffer.alloc(CONFIG_MAX_BYTES + 1, 0x20));
  let r = await waitFor(() => (gw.configAgent.reported.status === 'rejected' ? gw.configAgent.reported : null), 'oversized document rejected');
  t.equal(r.error?.code, 'CONFIG_ERR_TOO_LARGE');
  t.equal(r.running.version, 2);

  await publish('{"v":1,"version":9,');
  r = await waitFor(() => (gw.configAgent.reported.error?.code === 'CONTRACT_ERR_BAD_JSON' ? gw.configAgent.reported : null), 'broken JSON rejected');
  t.equal(r.status, 'rejected');

  // 40 000 levels fit under the size cap; JSON.stringify or structuredClone of it would overflow the stack.
  const deep = `{"v":1,"gateway":"${GW}","version":6,"hash":"x","pushedAt":1,"pushedBy":"x","config":${'{"a":'.repeat(40_000)}1${'}'.repeat(40_000)}}`;
  t.ok(deep.length < CONFIG_MAX_BYTES);
  await publish(deep);
  r = await waitFor(() => (gw.configAgent.reported.version === 6 ? gw.configAgent.reported : null), 'deeply nested document rejected');
  t.equal(r.status, 'rejected');
  t.equal(r.error?.code, 'CONTRACT_ERR_INVALID_PAYLOAD');
  t.match(r.error?.message, /nests deeper than 32 levels/);

  const tampered = { ...old, version: 7, hash: `sha256:${'0'.repeat(64)}` };
  await publish(JSON.stringify(tampered));
  r = await waitFor(() => (gw.configAgent.reported.version === 7 ? gw.configAgent.reported : null), 'tampered document rejected');
  t.equal(r.status, 'rejected');
  t.match(r.error?.message, /does not match its hash/);

  const proto = { ...old, version: 8, config: JSON.parse(`{"__proto__": {"polluted": true}, ${JSON.stringify(pushable(cfg)).slice(1)}`) as Record<string, unknown> };
  proto.hash = configHash(proto.config, []);
  await publish(JSON.stringify(proto));
  r = await waitFor(() => (gw.configAgent.reported.version === 8 ? gw.configAgent.reported : null), 'prototype key rejected');
  t.equal(r.status, 'rejected');
  t.same(r.error?.problems?.[0], { pointer: '/config', message: "must NOT have additional properties '__proto__'" });
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
  t.equal(gw.configAgent.runningVersion, 2, 'still runs version 2 after all of them');
  t.equal(gw.devices()['flood-1'], 'up');
});

t.test('a gateway offline at push time takes the version when it is back, even across a hub restart', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  const mqttPort = await freePort();
  const hubOpts = { dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort, httpPort: 0 };
  const first = await startHub(hubOpts);
  const cfg = gatewayConfig(dir, mqttPort, sim.port);
  const next = pushable(cfg);
  (next.devices as Array<Record<string, unknown>>)[1]!.pollIntervalMs = 250;
  t.equal((await push(first, GW, { config: next })).status, 201, 'pushed while the gateway is away');
  t.equal((await hubApi(first, 'GET', `/api/v1/gateways/${GW}/config`)).body.state, 'unreported');
  await first.stop();
  const hub = await startHub(hubOpts);
  t.teardown(() => hub.stop());
  const gw = await startGateway({ config: cfg, source: '<test>', logger: silentLogger() });
  t.teardown(() => gw.stop());
  const report = await reportOf(gw, 1, 'applied');
  t.equal(report.running.version, 1, 'the retained document was published again by the restarted hub');
  t.equal(gw.config.devices[1]!.pollIntervalMs, 250);
  await waitFor(async () => (await hubApi(hub, 'GET', `/api/v1/gateways/${GW}/config`)).body.state === 'in-sync', 'in sync');
  await gw.stop();
  const again = await startGateway({ config: cfg, source: '<test>', logger: silentLogger() });
  t.teardown(() => again.stop());
  t.equal(again.config.devices[1]!.pollIntervalMs, 250, 'after a gateway restart it runs the last good version over its file');
  t.equal(again.configAgent.runningVersion, 1);
});
