/** Hub configuration helpers: the structural diff and secret redaction. */
import t from 'tap';
import { redactSecrets } from '../config/config-service.js';
import { jsonDiff } from '../config/json-diff.js';

t.test('diff matches buses and devices by id, profiles by model', async (t) => {
  const a = { config: { devices: [{ id: 'a', unitId: 1 }, { id: 'b', unitId: 2 }], trustList: ['x', 'y'] }, profiles: [{ model: 'm1', pollIntervalMs: 1000 }] };
  const b = { config: { devices: [{ id: 'new', unitId: 3 }, { id: 'a', unitId: 1 }], trustList: ['x'] }, profiles: [{ model: 'm1', pollIntervalMs: 500 }] };
  t.same(jsonDiff(a, b), [
    { op: 'remove', path: '/config/devices/1', label: 'config.devices[b]', from: { id: 'b', unitId: 2 } },
    { op: 'add', path: '/config/devices/0', label: 'config.devices[new]', to: { id: 'new', unitId: 3 } },
    { op: 'remove', path: '/config/trustList/1', label: 'config.trustList[1]', from: 'y' },
    { op: 'replace', path: '/profiles/0/pollIntervalMs', label: 'profiles[m1].pollIntervalMs', from: 1000, to: 500 },
  ], 'inserting a device is one addition, not a shift of every later one');
  t.same(jsonDiff({ x: { 'a/b': 1 } }, { x: { 'a/b': 2 } }), [{ op: 'replace', path: '/x/a~1b', label: 'x.a/b', from: 1, to: 2 }], 'RFC 6901 escaping');
  t.same(jsonDiff({ a: 1 }, { a: 1 }), [], 'no change');
  t.same(jsonDiff({ a: { b: 1 } }, { a: [1] }), [{ op: 'replace', path: '/a', label: 'a', from: { b: 1 }, to: [1] }], 'type change');
});

t.test('passwords never leave the hub in clear; a change still shows', async (t) => {
  const doc = { config: { hub: { url: 'u', password: 'one' }, buses: [{ id: 'opc', password: 'two' }] } };
  const r = redactSecrets(doc);
  t.match(r.config.hub.password, /^redacted:[0-9a-f]{8}$/);
  t.notOk(JSON.stringify(r).includes('one') || JSON.stringify(r).includes('"two"'));
  t.not(redactSecrets({ password: 'a' }).password, redactSecrets({ password: 'b' }).password);
  t.equal(doc.config.hub.password, 'one', 'the stored document is not changed');
});
