/** Contract additions of issue 5: provisioning topics, claim tokens, provisioning payloads, status inventory. */
import t from 'tap';
import {
  claimClientId, formatClaimToken, parseClaimToken, parseProvisionTopic, parseTopic, topics, validateProvisionRequest, validateProvisionResponse, validateStatus,
} from '../index.js';

const ID = 'abcdefgh23';
const SECRET = 'abcdefghijklmnopqrstuvwxyz';

t.test('provisioning topics round-trip and stay outside the gateway namespace', async (t) => {
  t.equal(topics.provisionRequest(ID), `ioc/v1/provision/${ID}/request`);
  t.same(parseProvisionTopic(topics.provisionRequest(ID)), { claimId: ID, kind: 'request' });
  t.same(parseProvisionTopic(topics.provisionResponse(ID)), { claimId: ID, kind: 'response' });
  t.equal(parseTopic(topics.provisionRequest(ID)), null, 'not a gateway topic');
  for (const bad of ['ioc/v1/provision/+/request', 'ioc/v1/provision/#', 'ioc/v1/provision/a/other', 'ioc/v1/provision/a/request/x', 'ioc/v2/provision/a/request', 'ioc/v1/gw/a/status']) {
    t.equal(parseProvisionTopic(bad), null, `rejects ${bad}`);
  }
});

t.test('claim tokens: format, forgiving parse, rejects', async (t) => {
  const token = formatClaimToken(ID, SECRET);
  t.same(parseClaimToken(token), { claimId: ID, secret: SECRET });
  t.same(parseClaimToken(`  ${token.toUpperCase()} `), { claimId: ID, secret: SECRET }, 'upper case and blanks');
  t.same(parseClaimToken(`${ID}.abcdef-ghijkl-mnopqr-stuvwx-yz`), { claimId: ID, secret: SECRET }, 'dashes between groups');
  for (const bad of ['', 'nodot', `${ID}.short`, `abc.${SECRET}`, `${ID}.${SECRET.slice(0, -1)}1`, `${ID}.${SECRET}x`]) t.equal(parseClaimToken(bad), null, `rejects '${bad}'`);
  t.equal(claimClientId(ID), `prov-${ID}`);
});

t.test('provisioning payloads', async (t) => {
  t.ok(validateProvisionRequest({ v: 1, transaction: 't1', gatewayId: 'gw-1', version: '0.1.0', firmware: 'Debian 12', location: 'Cabinet 7' }));
  t.throws(() => validateProvisionRequest({ v: 1, transaction: 't1', gatewayId: 'gw/1' }), { code: 'CONTRACT_ERR_INVALID_PAYLOAD', message: /\/gatewayId/ });
  t.throws(() => validateProvisionRequest({ v: 1, gatewayId: 'gw-1' }), { message: /transaction/ });
  const data = { gatewayId: 'gw-1', site: 'north', username: 'gw-1', password: 'x'.repeat(43), issuedAt: 1 };
  t.ok(validateProvisionResponse({ v: 1, transaction: 't1', status: 'ok', data }));
  t.ok(validateProvisionResponse({ v: 1, transaction: 't1', status: 'error', error: { code: 'HUB_ERR_CLAIM_USED', message: 'used' } }));
  t.throws(() => validateProvisionResponse({ v: 1, transaction: 't1', status: 'ok' }), { message: /required property 'data'/ });
  t.throws(() => validateProvisionResponse({ v: 1, transaction: 't1', status: 'error', data, error: { code: 'HUB_ERR_X', message: 'm' } }), { message: /\/data: boolean schema is false/ });
});

t.test('status carries firmware and the device inventory', async (t) => {
  t.ok(validateStatus({ v: 1, state: 'online', ts: 1, firmware: 'Debian 12', inventory: [{ id: 'flood-1', profile: 'flood-level-sensor', bus: 'lan', busType: 'modbus-tcp', unitId: 1, address: 'unit 1 @ 10.0.0.5:502', enabled: true }] }));
  t.throws(() => validateStatus({ v: 1, state: 'online', ts: 1, inventory: [{ id: 'x', bus: 'lan' }] }), { message: /profile/ });
});
