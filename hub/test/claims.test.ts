/**
 * Claims through the real flow (operator API → gateway provisioning over
 * MQTT): one use only, expiry, revocation, binding to a gateway id,
 * re-provisioning an existing gateway, a race for one claim, and a hub
 * without authentication refusing to provision.
 */
import t from 'tap';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { provisionGateway, type ProvisionOptions } from '../../gateway/identity/provision.js';
import { api, closed, connectOk, mqttUrl, startSecureHub, tempDir, tryConnect } from './support.js';
import { freePort } from '../../scripts/sim/free-port.js';

t.test('claims: once, expiry, revocation, binding, replacement, races', async (t) => {
  let now = 1_800_000_000_000;
  const hub = await startSecureHub(t, { clock: () => now });
  const url = mqttUrl(hub);
  const op = await hub.identity.createApiToken({ name: 'op', role: 'operator' }, { actor: 'test' });
  const viewer = await hub.identity.createApiToken({ name: 'v', role: 'viewer' }, { actor: 'test' });
  const dir = tempDir(t);
  const claim = async (body: Record<string, unknown>): Promise<{ token: string; claim: { id: string; state: string; expiresAt: number } }> => {
    const r = await api(hub, 'POST', '/api/v1/claims', { token: op.token, body });
    t.equal(r.status, 201, `claim created ${JSON.stringify(body)}`);
    return r.body;
  };
  const provision = (o: Partial<ProvisionOptions> & { claim: string; gatewayId: string }) =>
    provisionGateway({ hubUrl: url, dataDir: path.join(dir, o.gatewayId), timeoutMs: 5000, ...o });

  t.match(await api(hub, 'POST', '/api/v1/claims', { token: viewer.token, body: { site: 'north' } }), { status: 403, body: { error: { code: 'HUB_ERR_FORBIDDEN' } } }, 'a viewer cannot create claims');

  await t.test('a claim registers one gateway, once', async (t) => {
    const c = await claim({ site: 'north-depot' });
    const steps: string[] = [];
    const res = await provision({ claim: c.token, gatewayId: 'gw-1', location: 'Cabinet 7', onStep: (s) => steps.push(s.step) });
    t.same(steps, ['claim', 'connect', 'subscribe', 'request', 'registered', 'saved', 'verify', 'done'], 'every step reported');
    t.match(res.credential, { gatewayId: 'gw-1', site: 'north-depot', username: 'gw-1' });
    t.equal((await stat(res.file)).mode & 0o777, 0o600, 'credential file mode 0600');
    t.match(await tryConnect(t, url, { clientId: 'gw-1', username: 'gw-1', password: res.credential.password }), { ok: true }, 'the new credential works');
    await t.rejects(provision({ claim: c.token, gatewayId: 'gw-2' }), { code: 'HUB_ERR_CLAIM_USED', message: /already used/ }, 'second use refused');
    const list = await api(hub, 'GET', '/api/v1/claims?all=true', { token: op.token });
    t.match(list.body.items.find((x: { id: string }) => x.id === c.claim.id), { state: 'used', usedBy: 'gw-1' });
    const g = await api(hub, 'GET', '/api/v1/gateways/gw-1', { token: viewer.token });
    t.match(g.body, { id: 'gw-1', site: 'north-depot', location: 'Cabinet 7', version: /\d+\.\d+\.\d+/, registeredBy: `claim:${c.claim.id}`, revoked: false });
    t.type(g.body.firmware, 'string', 'firmware version registered');
  });

  await t.test('an expired claim is refused', async (t) => {
    const c = await claim({ site: 'north', ttlS: 60 });
    now += 61_000;
    // Refused at CONNECT from the claim's row, before any scrypt (claim-gate.ts): CONNACK 5, the reason in the hub's log and audit.
    await t.rejects(provision({ claim: c.token, gatewayId: 'gw-3' }), { code: 'GW_ERR_AUTH', message: /CONNACK 5/ });
    const list = await api(hub, 'GET', '/api/v1/claims', { token: op.token });
    t.notOk(list.body.items.some((x: { id: string }) => x.id === c.claim.id), 'not listed as active');
  });

  await t.test('a revoked claim is refused; a used one cannot be revoked', async (t) => {
    const c = await claim({ site: 'north' });
    t.match(await api(hub, 'POST', `/api/v1/claims/${c.claim.id}/revoke`, { token: op.token }), { status: 200, body: { state: 'revoked' } });
    await t.rejects(provision({ claim: c.token, gatewayId: 'gw-4' }), { code: 'GW_ERR_AUTH', message: /CONNACK 5/ });
    const used = await claim({ site: 'north' });
    await provision({ claim: used.token, gatewayId: 'gw-5' });
    t.match(await api(hub, 'POST', `/api/v1/claims/${used.claim.id}/revoke`, { token: op.token }), { status: 409, body: { error: { code: 'HUB_ERR_CLAIM_USED' } } });
    t.match(await api(hub, 'POST', '/api/v1/claims/nosuchclai/revoke', { token: op.token }), { status: 404 });
  });

  await t.test('revoking a claim ends a connected provisioning session', async (t) => {
    const c = await claim({ site: 'north' });
    const id = c.claim.id;
    const session = await connectOk(t, url, { clientId: `prov-${id}`, username: 'claim', password: c.token });
    const gone = closed(session);
    await api(hub, 'POST', `/api/v1/claims/${id}/revoke`, { token: op.token });
    await gone;
    t.pass('session closed');
  });

  await t.test('a wrong claim secret cannot even connect', async (t) => {
    const c = await claim({ site: 'north' });
    const wrong = `${c.token.slice(0, -4)}aaaa`;
    await t.rejects(provision({ claim: wrong, gatewayId: 'gw-6' }), { code: 'GW_ERR_AUTH', message: /CONNACK 4/ });
    await t.rejects(provision({ claim: 'not-a-token', gatewayId: 'gw-6' }), { code: 'GW_ERR_PROVISION', message: /not a claim token/ });
  });

  await t.test('binding: a bound claim registers only its gateway; replacing a gateway needs one', async (t) => {
    const bound = await claim({ site: 'east', gatewayId: 'gw-7' });
    await t.rejects(provision({ claim: bound.token, gatewayId: 'gw-8' }), { code: 'HUB_ERR_CLAIM_INVALID', message: /is for gateway 'gw-7'/ });
    const takeover = await claim({ site: 'east' });
    await t.rejects(provision({ claim: takeover.token, gatewayId: 'gw-1' }), { code: 'HUB_ERR_GATEWAY_EXISTS' }, 'an unbound claim cannot take over an existing id');
    // Replacement hardware for gw-1: the old credential stops working and its connection is closed.
    const old = (await provisionGateway({ hubUrl: url, dataDir: path.join(dir, 'gw-1-old'), claim: (await claim({ site: 'north-depot', gatewayId: 'gw-1x' })).token, gatewayId: 'gw-1x', verify: false })).credential;
    const oldConn = await connectOk(t, url, { clientId: 'gw-1x', username: old.username, password: old.password });
    const gone = closed(oldConn);
    const replacement = await claim({ site: 'north-depot', gatewayId: 'gw-1x' });
    const fresh = await provision({ claim: replacement.token, gatewayId: 'gw-1x' });
    await gone;
    t.pass('old hardware disconnected');
    t.match(await tryConnect(t, url, { clientId: 'gw-1x', username: old.username, password: old.password }), { ok: false, code: 4 }, 'old secret refused');
    t.match(await tryConnect(t, url, { clientId: 'gw-1x', username: fresh.credential.username, password: fresh.credential.password }), { ok: true }, 'new secret works');
  });

  await t.test('a lost answer: the same request asked again gets a fresh secret; anything else still finds the claim used', async (t) => {
    const c = await claim({ site: 'south' });
    const gwDir = path.join(dir, 'gw-lost');
    // The first run's request reaches the hub and is committed, but its answer never arrives:
    // the gateway side is cut off right after the request was sent (its pending file is what a run leaves behind).
    const transaction = 'a1b2c3d4e5f60718';
    await mkdir(gwDir, { recursive: true });
    await writeFile(path.join(gwDir, 'hub-credential.json.pending.json'), JSON.stringify({ claimId: c.claim.id, gatewayId: 'gw-lost', transaction }));
    const first = await hub.identity.redeemClaim(c.claim.id, { v: 1, transaction, gatewayId: 'gw-lost' }, null);
    const lost = await connectOk(t, url, { clientId: 'gw-lost', username: 'gw-lost', password: first.password });
    const gone = closed(lost);

    const steps: string[] = [];
    const res = await provision({ claim: c.token, gatewayId: 'gw-lost', onStep: (s) => steps.push(s.message) });
    t.match(steps.join('\n'), /asking the hub again to register gw-lost \(same request a1b2c3d4e5f60718/, 'the technician sees the request repeated');
    t.not(res.credential.password, first.password, 'a fresh secret');
    await gone;
    t.pass('a session on the lost secret is closed');
    t.match(await tryConnect(t, url, { clientId: 'gw-lost', username: 'gw-lost', password: first.password }), { ok: false, code: 4 }, 'the lost secret no longer works');
    t.match(await tryConnect(t, url, { clientId: 'gw-lost', username: 'gw-lost', password: res.credential.password }), { ok: true }, 'the fresh one does');
    await t.rejects(stat(path.join(gwDir, 'hub-credential.json.pending.json')), { code: 'ENOENT' }, 'pending request cleared once answered');
    await t.rejects(provision({ claim: c.token, gatewayId: 'gw-lost' }), { code: 'HUB_ERR_CLAIM_USED' }, 'a new request (new transaction) finds the claim used');
    const again = (o: Partial<{ transaction: string; gatewayId: string }>) => hub.identity.redeemClaim(c.claim.id, { v: 1, transaction, gatewayId: 'gw-lost', ...o }, null);
    await t.rejects(again({ gatewayId: 'gw-other' }), { code: 'HUB_ERR_CLAIM_USED' }, 'same transaction, other gateway: used');
    t.ok((await again({})).password, 'the same request still works within the hour');
    now += 61 * 60_000;
    await t.rejects(again({}), { code: 'HUB_ERR_CLAIM_USED' }, 'not after an hour');
    now -= 61 * 60_000;
    await hub.identity.revokeGateway('gw-lost', { actor: 'test' });
    await t.rejects(again({}), { code: 'HUB_ERR_CLAIM_USED' }, 'never for a revoked gateway (it would undo the revocation)');
    const audit = await hub.audit.list({ action: 'gateway.provision' });
    t.ok(audit.some((e) => e.target === 'gateway:gw-lost' && e.outcome === 'ok' && e.detail?.repeated === true), 'the repeat is audited as such');
  });

  await t.test('two redemptions of one claim at the same moment: exactly one wins', async (t) => {
    const c = await claim({ site: 'west' });
    const req = (gatewayId: string) => ({ v: 1 as const, transaction: gatewayId, gatewayId });
    const results = await Promise.allSettled([hub.identity.redeemClaim(c.claim.id, req('gw-r1'), null), hub.identity.redeemClaim(c.claim.id, req('gw-r2'), null)]);
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one registration');
    t.match(results.find((r) => r.status === 'rejected'), { reason: { code: 'HUB_ERR_CLAIM_USED' } });
  });

  await t.test('every claim action is in the audit log', async (t) => {
    const audit = await api(hub, 'GET', '/api/v1/audit?limit=1000', { token: op.token });
    const actions = new Set(audit.body.items.map((e: { action: string; outcome: string }) => `${e.action}:${e.outcome}`));
    for (const a of ['claim.create:ok', 'claim.revoke:ok', 'gateway.provision:ok', 'gateway.provision:denied', 'claim.create:denied', 'claim.revoke:error']) t.ok(actions.has(a), a);
  });
});

t.test('a hub without authentication answers provisioning with HUB_ERR_PROVISIONING_DISABLED', async (t) => {
  const secure = await startSecureHub(t);
  const { token } = await secure.identity.createClaim({ site: 'x' }, { actor: 'test' });
  const open = await startSecureHub(t, { auth: { mode: 'open' } });
  await t.rejects(provisionGateway({ hubUrl: mqttUrl(open), claim: token, gatewayId: 'gw-1', dataDir: tempDir(t), timeoutMs: 5000 }), { code: 'HUB_ERR_PROVISIONING_DISABLED' });
});

t.test('with several hub addresses the claim is redeemed at the first that answers; a refusal by a hub is final', async (t) => {
  const hub = await startSecureHub(t);
  const dead = `mqtt://127.0.0.1:${await freePort()}`;
  const { token } = await hub.identity.createClaim({ site: 'river', gatewayId: 'gw-list' }, { actor: 'test' });
  const steps: string[] = [];
  const res = await provisionGateway({ hubUrl: `${dead},${mqttUrl(hub)}`, claim: token, gatewayId: 'gw-list', dataDir: tempDir(t), timeoutMs: 5000, onStep: (s) => steps.push(s.message) });
  t.equal(res.credential.gatewayId, 'gw-list', 'provisioned through the second address');
  t.equal(res.credential.hub, mqttUrl(hub), 'the credential names the hub that answered (and the verify step logged in there with it)');
  t.ok(steps.some((m) => m.includes(`trying the next hub address, ${mqttUrl(hub)}`) && m.includes('cannot reach the hub')), 'says why it moved on');

  // A claim the hub refuses is refused by every node (one store): no other address is tried.
  const revoked = await hub.identity.createClaim({ site: 'river', gatewayId: 'gw-revoked' }, { actor: 'test' });
  await hub.identity.revokeClaim(revoked.claim.id, { actor: 'test' });
  const refused: string[] = [];
  await t.rejects(provisionGateway({ hubUrl: `${mqttUrl(hub)},${dead}`, claim: revoked.token, gatewayId: 'gw-revoked', dataDir: tempDir(t), timeoutMs: 5000, verify: false, onStep: (s) => refused.push(s.message) }), { code: 'GW_ERR_AUTH' });
  t.equal(refused.filter((m) => m.startsWith('connecting to')).length, 1, 'only the first address was tried');
  // Every address dead: the last one's reason.
  await t.rejects(provisionGateway({ hubUrl: `${dead},mqtt://127.0.0.1:${await freePort()}`, claim: token, gatewayId: 'gw-x', dataDir: tempDir(t), timeoutMs: 2000 }), { code: 'GW_ERR_PROVISION', message: /cannot reach the hub/ });
});
