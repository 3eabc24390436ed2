/** Hub configuration helpers: the structural diff and secret redaction. */
import t from 'tap';
import { jsonDiff } from '../config/json-diff.js';
import { redactSecrets, SecretBox } from '../config/secret-box.js';

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

t.test('passwords never leave the hub in clear; a change still shows; no digit of them does', async (t) => {
  const box = new SecretBox(Buffer.alloc(32, 7));
  const doc = { gateway: 'gw-1', version: 1, config: { hub: { url: 'u', password: 'one' }, buses: [{ id: 'opc', password: 'two' }] } };
  const v1 = box.sealDocument(doc, { gateway: 'gw-1', version: 1 });
  t.match(v1.config.hub.password, /^sealed:v1:1:/, 'sealed at rest');
  t.notOk(JSON.stringify(v1).includes('one') || JSON.stringify(v1).includes('"two"'));
  t.same(box.openDocument(v1, { gateway: 'gw-1', version: 1 }), doc, 'opens to the plaintext');
  t.throws(() => box.openDocument(v1, { gateway: 'gw-2', version: 1 }), { code: 'HUB_ERR_SECRET_KEY' }, 'bound to its gateway');
  t.throws(() => new SecretBox(Buffer.alloc(32, 8)).openDocument(v1, { gateway: 'gw-1', version: 1 }), { code: 'HUB_ERR_SECRET_KEY' }, 'and to the key');
  const r = redactSecrets(v1);
  t.same([r.config.hub.password, r.config.buses[0]!.password], ['redacted:v1', 'redacted:v1'], 'readers see only the version it was set in');
  // Version 2 changes the OPC UA password only.
  const doc2 = { ...doc, version: 2, config: { hub: { url: 'u', password: 'one' }, buses: [{ id: 'x', password: 'n' }, { id: 'opc', password: 'three' }] } };
  const v2 = box.sealDocument(doc2, { gateway: 'gw-1', version: 2, previous: box.secretsOf(v1, { gateway: 'gw-1', version: 1 }) });
  const r2 = redactSecrets(v2);
  t.same([r2.config.hub.password, r2.config.buses[0]!.password, r2.config.buses[1]!.password], ['redacted:v1', 'redacted:v2', 'redacted:v2'], 'an unchanged secret keeps its mark, a changed one shows the new version (buses matched by id)');
  t.equal(doc.config.hub.password, 'one', 'the input document is not changed');
});
