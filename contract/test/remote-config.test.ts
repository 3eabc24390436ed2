/** Contract additions of issue 6: desired/reported documents, command envelope and arguments, the shared desired-config checks. */
import t from 'tap';
import {
  canonicalJson, checkDesiredConfig, configHash, gatewayConfigSchema, isCommandName, nestedDeeperThan, parseTopic, topics, validateCommandArgs, validateCommandRequest,
  validateCommandResult, validateConfigDesired, validateConfigReported,
} from '../index.js';

const config = {
  gatewayId: 'gw-1', hub: { url: 'mqtt://hub:1883' },
  buses: [{ id: 'lan', type: 'modbus-tcp', host: '10.0.0.5', port: 502 }],
  devices: [{ id: 'flood-1', bus: 'lan', unitId: 1, profile: 'flood-level-sensor' }],
};

t.test('topics of configuration and commands', async (t) => {
  t.same(parseTopic(topics.configDesired('gw-1')), { gateway: 'gw-1', kind: 'config/desired', rest: [] });
  t.same(parseTopic(topics.configReported('gw-1')), { gateway: 'gw-1', kind: 'config/reported', rest: [] });
  t.same(parseTopic(topics.cmd('gw-1', 'ping')), { gateway: 'gw-1', kind: 'cmd', rest: ['ping'] });
  t.same(parseTopic(topics.cmdResult('gw-1', 'ping')), { gateway: 'gw-1', kind: 'cmd', rest: ['ping', 'result'] });
  t.ok(isCommandName('restart-driver'));
  t.notOk(isCommandName('reboot'));
  t.equal(gatewayConfigSchema.title, 'ioc-edge gateway configuration', 'the gateway config schema lives in the contract');
});

t.test('hash: canonical JSON, key order does not matter, content does', async (t) => {
  t.equal(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] }), '{"a":[{"c":2,"d":1}],"b":1}');
  t.equal(configHash({ a: 1, b: 2 }), configHash({ b: 2, a: 1 }));
  t.not(configHash({ a: 1 }), configHash({ a: 2 }));
  t.not(configHash({ a: 1 }), configHash({ a: 1 }, [{ model: 'x' }]), 'profiles are part of it');
  t.match(configHash(config), /^sha256:[0-9a-f]{64}$/);
});

t.test('nesting depth is measured without recursion', async (t) => {
  t.notOk(nestedDeeperThan(config, 32));
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = { a: deep };
  t.ok(nestedDeeperThan(deep, 32), '100 000 levels');
  t.ok(nestedDeeperThan([[[[]]]], 3));
  t.notOk(nestedDeeperThan([[[]]], 3));
});

t.test('desired and reported documents', async (t) => {
  const doc = { v: 1, gateway: 'gw-1', version: 3, hash: configHash(config), pushedAt: 1, pushedBy: 'token:abc/op', config };
  t.ok(validateConfigDesired(doc));
  t.throws(() => validateConfigDesired({ ...doc, version: 0 }), { code: 'CONTRACT_ERR_INVALID_PAYLOAD', message: /\/version/ });
  t.throws(() => validateConfigDesired({ ...doc, hash: 'md5:x' }), { message: /\/hash/ });
  t.throws(() => validateConfigDesired({ ...doc, extra: 1 }), { message: /additional properties 'extra'/ });
  const report = { v: 1, ts: 1, running: { version: 2, since: 1 }, status: 'rolled-back', version: 3, error: { code: 'CONFIG_ERR_UNCONFIRMED', message: 'm', phase: 'confirm' } };
  t.ok(validateConfigReported(report));
  t.throws(() => validateConfigReported({ ...report, status: 'exploded' }), { message: /\/status/ });
  t.throws(() => validateConfigReported({ ...report, error: { code: 'lower', message: 'm' } }), { message: /\/error\/code/ });
});

t.test('command envelope and arguments', async (t) => {
  t.ok(validateCommandRequest({ transaction: 'abc', args: { device: 'x' } }));
  t.throws(() => validateCommandRequest({ transaction: 'a b' }), { message: /\/transaction/ });
  t.ok(validateCommandResult({ v: 1, transaction: 't', status: 'ok', data: { pong: true } }));
  t.ok(validateCommandResult({ v: 1, transaction: 't', status: 'error', error: { code: 'GW_ERR_NO_DEVICE', message: 'no' } }));
  t.throws(() => validateCommandResult({ v: 1, transaction: 't', status: 'ok', error: { code: 'GW_ERR_X', message: 'm' } }), { message: /data/ });
  t.same(validateCommandArgs('write', { device: 'd', point: 'p', value: 1 }), { device: 'd', point: 'p', value: 1 });
  t.throws(() => validateCommandArgs('write', { device: 'd', point: 'p' }), { message: /\/args: must have required property 'value'/ });
  t.throws(() => validateCommandArgs('restart-driver', { device: 'd', bus: 'b' }), { message: /\/args: must NOT have more than 1 properties/ });
  t.throws(() => validateCommandArgs('logs', { lines: 5000 }), { message: /\/args\/lines/ });
  t.same(validateCommandArgs('ping', undefined), {}, 'no arguments is an empty object');
});

t.test('checkDesiredConfig: the checks hub and gateway share', async (t) => {
  const known = new Map<string, unknown>([['flood-level-sensor', { protocol: 'modbus' }]]);
  const validateProfile = (doc: unknown): { model: string; protocol: string } => {
    const p = doc as { model: string; protocol: string; bad?: boolean };
    if (p.bad) throw Object.assign(new Error('bad'), { context: { problems: [{ pointer: '/points/1/address', message: 'overlaps' }] } });
    return p;
  };
  t.same(checkDesiredConfig({ gateway: 'gw-1', config }, { knownProfiles: known, validateProfile }).problems, []);
  const cfg2 = { ...config, devices: [{ id: 'm', bus: 'lan', profile: 'acme' }] };
  t.same(checkDesiredConfig({ gateway: 'gw-1', config: cfg2 }, { knownProfiles: known, validateProfile }).problems, [{ pointer: '/config/devices/0/profile', message: "unknown device profile 'acme'" }]);
  t.same(checkDesiredConfig({ gateway: 'gw-1', config: cfg2 }, { knownProfiles: known, alsoKnown: ['acme'], validateProfile }).problems, [], 'a model the gateway reports is known');
  const pushed = checkDesiredConfig({ gateway: 'gw-1', config: cfg2, profiles: [{ model: 'acme', protocol: 'modbus' }] }, { knownProfiles: known, validateProfile });
  t.same(pushed.problems, [], 'a pushed profile is known');
  t.ok(pushed.profiles.has('acme'));
  t.same(checkDesiredConfig({ gateway: 'gw-1', config: cfg2, profiles: [{ model: 'acme', bad: true }] }, { knownProfiles: known, validateProfile }).problems, [
    { pointer: '/profiles/0/points/1/address', message: 'overlaps' },
    { pointer: '/config/devices/0/profile', message: "unknown device profile 'acme'" },
  ], 'profile problems point into the pushed profile');
  t.same(checkDesiredConfig({ gateway: 'gw-1', config: cfg2, profiles: [{ model: 'acme', protocol: 'opcua' }] }, { knownProfiles: known, validateProfile }).problems, [
    { pointer: '/config/devices/0/profile', message: "profile 'acme' speaks opcua, but bus 'lan' is modbus-tcp" },
  ]);
  const local = checkDesiredConfig({ gateway: 'gw-2', config: { ...config, dataDir: 'x', hub: { url: 'mqtt://h:1', claim: 'c' } } }, { knownProfiles: known, validateProfile }).problems;
  t.same(local.map((p) => p.pointer), ['/config/dataDir', '/config/hub/claim', '/config/gatewayId']);
});
