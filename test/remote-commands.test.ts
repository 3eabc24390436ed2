/**
 * Remote commands end to end (issue 6): the hub API sends a request over
 * `ioc/v1/gw/{gw}/cmd/{name}` and awaits the gateway's `{status, data |
 * error, transaction}` on `…/result`. Every command works; every failure
 * answers with a catalogue code, from the hub (offline, timeout, arguments)
 * or from the gateway (unknown command, device, point, value, expiry).
 */
import t from 'tap';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { topics, validateCommandResult, type CommandResult } from '../contract/index.js';
import { createLogger, LogRing } from '../lib/index.js';
import { hubApi, startRemoteStack } from './support/remote-config.js';
import { waitFor } from './support/wait.js';

const GW = 'gw-test-01';

t.test('commands through the hub API', async (t) => {
  const dir = t.testdir();
  const logRing = new LogRing({ capacity: 500 });
  const logger = createLogger({ level: 'info', destination: new Writable({ write: (_c, _e, cb) => cb() }), ring: logRing });
  const { hub, gw, sim } = await startRemoteStack(t, dir, { logger, logRing });
  const cmd = async (name: string, args: Record<string, unknown> = {}, timeoutMs?: number) =>
    hubApi(hub, 'POST', `/api/v1/gateways/${GW}/commands/${name}`, { args, ...(timeoutMs ? { timeoutMs } : {}) });
  const ok = async (name: string, args: Record<string, unknown> = {}): Promise<any> => {
    const r = await cmd(name, args);
    t.equal(r.status, 200, `${name}: HTTP 200`);
    t.equal(r.body.status, 'ok', `${name}: ok${r.body.error ? ` (${r.body.error.message})` : ''}`);
    t.match(r.body.transaction, /^[A-Za-z0-9_-]+$/, `${name}: transaction echoed`);
    return r.body.data;
  };
  const failsWith = async (name: string, args: Record<string, unknown>, code: string, what: string): Promise<void> => {
    const r = await cmd(name, args);
    t.equal(r.body.status, 'error', `${what}: status error`);
    t.equal(r.body.error?.code, code, `${what}: ${code}`);
  };

  const pong = await ok('ping');
  t.match(pong, { pong: true, version: String, config: { version: 0, status: 'applied' } }, 'ping answers with version and configuration');

  const read = await ok('read', { device: 'flood-1', points: ['level', 'sample_count'] });
  t.equal(read.cached, false, 'read now (not cached)');
  t.same(read.readings.map((r: { point: string }) => r.point).sort(), ['level', 'sample_count']);
  t.ok(read.readings.every((r: { quality: string; value: unknown }) => r.quality === 'good' && typeof r.value === 'number'), 'good numeric values');
  const served = sim.devices.get(1)!.served.sample_count as number;
  t.ok(Math.abs((read.readings.find((r: { point: string }) => r.point === 'sample_count').value as number) - served) <= 3, 'the value the device serves now');

  t.same(await ok('write', { device: 'tsc-1', point: 'plan', value: 7 }), { device: 'tsc-1', point: 'plan', value: 7, written: true });
  t.equal(sim.devices.get(2)!.bank.word('holding', 1), 7, 'the device holds the written value');
  const plan = await ok('read', { device: 'tsc-1', points: ['plan'] });
  t.equal(plan.readings[0].value, 7, 'read back');

  const before = gw.pollStats()['tsc-1']!.polls;
  t.same(await ok('restart-driver', { device: 'tsc-1' }), { restarted: ['tsc-1'] });
  t.ok(gw.pollStats()['tsc-1']!.polls < before, 'a fresh driver');
  await waitFor(() => gw.devices()['tsc-1'] === 'up', 'tsc-1 polls again');
  t.same((await ok('restart-driver', { bus: 'lan' })).restarted, ['flood-1', 'tsc-1'], 'a bus restarts with its devices');
  await waitFor(() => gw.devices()['flood-1'] === 'up' && gw.devices()['tsc-1'] === 'up', 'both poll again');

  const logs = await ok('logs', { lines: 20, level: 'info' });
  t.ok(logs.lines.length > 0 && logs.lines.length <= 20, 'log lines returned');
  t.ok(logs.lines.some((l: { msg?: string }) => l.msg === 'point written'), 'including the write just made');
  t.ok(logs.lines.every((l: { level: number }) => l.level >= 30), 'at or above info');
  t.ok(logs.total >= logs.lines.length);

  await failsWith('read', { device: 'nope' }, 'GW_ERR_NO_DEVICE', 'unknown device');
  await failsWith('read', { device: 'flood-1', points: ['nope'] }, 'GW_ERR_NO_DEVICE', 'unknown point');
  await failsWith('write', { device: 'tsc-1', point: 'phase', value: 1 }, 'GW_ERR_WRITE_REFUSED', 'point not writable');
  await failsWith('write', { device: 'tsc-1', point: 'plan', value: 99 }, 'GW_ERR_WRITE_VALUE', 'value out of range');
  await failsWith('restart-driver', { device: 'nope' }, 'GW_ERR_NO_DEVICE', 'restart unknown device');

  const badArgs = await cmd('write', { device: 'tsc-1', point: 'plan' });
  t.equal(badArgs.status, 400, 'missing argument refused at the hub');
  t.equal(badArgs.body.error.code, 'HUB_ERR_BAD_REQUEST');
  t.match(badArgs.body.error.message, /\/args: must have required property 'value'/);
  const unknown = await cmd('reboot');
  t.equal(unknown.status, 400, 'unknown command refused at the hub');

  const audit = await hub.audit.list({ action: 'gateway.command.write' });
  t.ok(audit.some((e) => e.outcome === 'ok' && (e.detail as { args?: { value?: number } }).args?.value === 7), 'writes are audited with their arguments');

  // A gateway that never answers: the hub gives up with a code.
  const silent = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: 'gw-silent', reconnectPeriod: 0 });
  t.teardown(() => silent.endAsync(true));
  const timeout = await hubApi(hub, 'POST', '/api/v1/gateways/gw-silent/commands/ping', { timeoutMs: 300 });
  t.equal(timeout.status, 504);
  t.equal(timeout.body.error.code, 'HUB_ERR_CMD_TIMEOUT');
  const offline = await hubApi(hub, 'POST', '/api/v1/gateways/gw-nowhere/commands/ping', {});
  t.equal(offline.body.error.code, 'HUB_ERR_GATEWAY_OFFLINE');
});

t.test('the gateway answers bad requests with codes (raw MQTT, as a misbehaving service would send them)', async (t) => {
  const dir = t.testdir();
  const { hub } = await startRemoteStack(t, dir);
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: 'svc-test', reconnectPeriod: 0 });
  t.teardown(() => client.endAsync(true));
  const results: CommandResult[] = [];
  client.on('message', (_topic, payload) => results.push(validateCommandResult(JSON.parse(payload.toString()))));
  await client.subscribeAsync(`ioc/v1/gw/${GW}/cmd/+/result`, { qos: 1 });
  const ask = async (name: string, payload: string, transaction: string): Promise<CommandResult> => {
    await client.publishAsync(topics.cmd(GW, name), payload, { qos: 1 });
    return waitFor(() => results.find((r) => r.transaction === transaction), `answer to ${transaction}`);
  };
  const codeOf = (r: CommandResult): string | undefined => (r.status === 'error' ? r.error.code : undefined);
  t.equal(codeOf(await ask('reboot', JSON.stringify({ transaction: 't1' }), 't1')), 'GW_ERR_CMD_UNKNOWN', 'unknown command');
  t.equal(codeOf(await ask('read', JSON.stringify({ transaction: 't2', args: { device: 'flood-1', extra: 1 } }), 't2')), 'GW_ERR_CMD_ARGS', 'invalid arguments');
  t.equal(codeOf(await ask('ping', JSON.stringify({ transaction: 't3', expiresAt: Date.now() - 1000 }), 't3')), 'GW_ERR_CMD_EXPIRED', 'expired request not carried out');
  t.equal(codeOf(await ask('ping', '{"transaction":"t4",', 'unknown')), 'CONTRACT_ERR_BAD_JSON', 'broken JSON');
  t.equal((await ask('ping', JSON.stringify({ transaction: 't5' }), 't5')).status, 'ok', 'and it still answers good requests');
});
