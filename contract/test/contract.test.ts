/** The contract: topic grammar, payload validators, error catalogue. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  ERRORS, IocError, isIocError, isRetryable, parseJson, parseTopic, topics, validateEvent, validateStatus, validateTelemetryBatch, isValidId,
} from '../index.js';

t.test('topics round-trip through parseTopic', async (t) => {
  t.same(parseTopic(topics.telemetry('gw-1')), { gateway: 'gw-1', kind: 'telemetry', rest: [] });
  t.same(parseTopic(topics.status('gw-1')), { gateway: 'gw-1', kind: 'status', rest: [] });
  t.same(parseTopic(topics.events('gw-1')), { gateway: 'gw-1', kind: 'events', rest: [] });
  t.same(parseTopic(topics.configDesired('gw-1')), { gateway: 'gw-1', kind: 'config/desired', rest: [] });
  t.same(parseTopic(topics.configReported('gw-1')), { gateway: 'gw-1', kind: 'config/reported', rest: [] });
  t.same(parseTopic(topics.cmd('gw-1', 'ping')), { gateway: 'gw-1', kind: 'cmd', rest: ['ping'] });
  t.same(parseTopic(topics.cmdResult('gw-1', 'ping')), { gateway: 'gw-1', kind: 'cmd', rest: ['ping', 'result'] });
  for (const bad of ['ioc/v2/gw/a/status', 'ioc/v1/gw/+/status', 'ioc/v1/gw/a/status/x', 'ioc/v1/gw/a/config', 'ioc/v1/gw/a/unknown', 'ioc/v1/gw', 'other/topic', 'ioc/v1/gw/a#/status']) {
    t.equal(parseTopic(bad), null, `rejects ${bad}`);
  }
  t.equal(isValidId('gw-1.a_b'), true);
  t.equal(isValidId(''), false);
  t.equal(isValidId('a/b'), false, 'no topic separator');
  t.equal(isValidId('x'.repeat(65)), false, 'at most 64 characters');
});

const reading = { device: 'flood-1', point: 'level', ts: 1_700_000_000_000, value: 1.5, quality: 'good' };

t.test('telemetry batch validation', async (t) => {
  const ok = { v: 1, epoch: 'abc', seq: 1, readings: [reading, { ...reading, value: true }, { ...reading, value: 'TSC', quality: 'stale' }, { ...reading, value: null, quality: 'bad' }] };
  t.same(validateTelemetryBatch(ok), ok);
  const cases: Array<[unknown, RegExp]> = [
    [{ ...ok, v: 2 }, /\/v: must be equal to constant/],
    [{ ...ok, seq: 0 }, /\/seq: must be >= 1/],
    [{ ...ok, readings: [] }, /\/readings: must NOT have fewer than 1 items/],
    [{ ...ok, readings: [{ ...reading, quality: 'great' }] }, /\/readings\/0\/quality: must be equal to one of the allowed values/],
    [{ ...ok, readings: [{ ...reading, device: 'a/b' }] }, /\/readings\/0\/device: must match pattern/],
    [{ ...ok, readings: [{ ...reading, value: { x: 1 } }] }, /\/readings\/0\/value: must be number,boolean,string,null/],
    [{ ...ok, extra: 1 }, /additional properties 'extra'/],
    [{ ...ok, readings: Array.from({ length: 10_001 }, () => reading) }, /must NOT have more than 10000 items/],
  ];
  for (const [doc, re] of cases) {
    t.throws(() => validateTelemetryBatch(doc), { code: 'CONTRACT_ERR_INVALID_PAYLOAD', message: re });
  }
});

t.test('status and event validation', async (t) => {
  t.ok(validateStatus({ v: 1, state: 'online', ts: 1, backlog: { rows: 3, oldestTs: null }, devices: { a: 'up' } }));
  t.throws(() => validateStatus({ v: 1, state: 'sleeping', ts: 1 }), { code: 'CONTRACT_ERR_INVALID_PAYLOAD', message: /\/state/ });
  t.ok(validateEvent({ v: 1, id: 'e1', ts: 1, type: 'device.down', severity: 'warning', message: 'm', code: 'GW_ERR_MODBUS_TIMEOUT' }));
  t.throws(() => validateEvent({ v: 1, id: 'e1', ts: 1, type: 'Down', severity: 'warning', message: 'm' }), { message: /\/type: must match pattern/ });
  t.throws(() => validateEvent({ v: 1, id: 'e1', ts: 1, type: 'a.b', severity: 'fatal', message: 'm' }), { message: /\/severity/ });
});

t.test('parseJson names the parser error', async (t) => {
  t.same(parseJson(Buffer.from('{"a":1}')), { a: 1 });
  t.throws(() => parseJson('{oops'), { code: 'CONTRACT_ERR_BAD_JSON', message: /not valid JSON/ });
});

t.test('errors: code in the message, wire form, guards', async (t) => {
  const e = new IocError('GW_ERR_MODBUS_TIMEOUT', 'no answer from unit 3', { context: { device: 'flood-1' }, cause: new Error('x') });
  t.equal(e.message, 'no answer from unit 3 (GW_ERR_MODBUS_TIMEOUT)');
  t.same(e.toJSON(), { code: 'GW_ERR_MODBUS_TIMEOUT', message: e.message, context: { device: 'flood-1' } });
  t.equal(isIocError(e), true);
  t.equal(isIocError(e, 'HUB_ERR_COMMIT'), false);
  t.equal(isRetryable(e), true);
  t.equal(isRetryable(new IocError('CONFIG_ERR_INVALID')), false);
  t.equal(isRetryable(new Error('plain')), false);
  t.equal(new IocError('HUB_ERR_NOT_FOUND').message, `${ERRORS.HUB_ERR_NOT_FOUND.message} (HUB_ERR_NOT_FOUND)`, 'default message from the catalogue');
});

t.test('every code in the catalogue follows the naming rule and is documented', async (t) => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const code of Object.keys(ERRORS)) {
    t.match(code, /^(CONFIG|PROFILE|CONTRACT|GW|HUB|FW)_ERR_[A-Z0-9_]+$/, `${code} naming`);
    t.ok(doc.includes(`\`${code}\``), `${code} is documented in docs/errors.md`);
  }
});
