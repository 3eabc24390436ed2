/**
 * The abstract conformance suite of the registry, identity and audit ports
 * (hub/store/state-ports.ts), in the manner of store-conformance.ts: each
 * backend runs it through `identityStateConformance(t, name, fixture)`.
 * Stores are opened the way the hub opens them (hub/store/state.ts), so the
 * suite also covers that wiring.
 *
 * `fixture.location(t)` gives a fresh place (a folder, a PostgreSQL schema)
 * cleaned up with `t`; `fixture.open(loc, clock)` unstarted state stores over
 * it (opening the same place again gives the same state); `fixture.exec(loc,
 * sql)` runs a parameterless statement on the backend's database behind the
 * hub's back (the suite uses it to tamper with the audit chain).
 */
import type { Test } from 'tap';
import type { GatewayStatus, InventoryDevice } from '../../../contract/index.js';
import type { AuditRecord } from '../model/audit.js';
import type { Redemption } from '../model/identity.js';
import type { RedeemRequest } from '../state-ports.js';
import type { StateStores } from '../state.js';

/** How a backend is built for the suite. */
export interface IdentityStateFixture {
  location(t: Test): Promise<string>;
  open(loc: string, clock: () => number): StateStores;
  exec(loc: string, sql: string): Promise<void>;
}

const T0 = 1_800_000_000_000;
const HOUR = 3_600_000;

/** A redemption request as IdentityService builds it (audit entry included). */
export function redeemRequest(claimId: string, gatewayId: string, more: Partial<RedeemRequest> = {}): RedeemRequest {
  return {
    claimId, gatewayId, transaction: `tx-${gatewayId}`, secretHash: `hash-${gatewayId}`, registry: { location: 'Cabinet 7', version: '1.2.3' },
    audit: (r: Redemption): AuditRecord => ({ actor: `claim:${claimId}`, action: 'gateway.provision', target: `gateway:${gatewayId}`, outcome: 'ok', detail: { site: r.claim.site, replaced: r.replaced, repeated: r.repeated } }),
    ...more,
  };
}

const status = (inventory: InventoryDevice[] | undefined, version = '1.0.0'): GatewayStatus => ({ v: 1, state: 'online', ts: T0, version, ...(inventory ? { inventory } : {}) });

/** Runs the suite against one backend. */
export function identityStateConformance(t: Test, name: string, fx: IdentityStateFixture): void {
  t.test(`${name}: registry, identity and audit port conformance`, async (t) => {
    let now = T0;
    const clock = (): number => now;
    const open = async (t: Test, loc?: string): Promise<{ s: StateStores; loc: string }> => {
      const where = loc ?? (await fx.location(t));
      const s = fx.open(where, clock);
      await s.start();
      t.teardown(() => s.stop().catch(() => undefined));
      return { s, loc: where };
    };
    const newClaim = (s: StateStores, id: string, more: { gatewayId?: string | null; expiresAt?: number; site?: string } = {}) =>
      s.identity.insertClaim({ id, secretHash: `h-${id}`, site: more.site ?? 'north', gatewayId: more.gatewayId ?? null, note: null, actor: 'op', expiresAt: more.expiresAt ?? now + HOUR });

    t.test('principals: create, refuse taken names, replace of the same kind lifts a revocation, revoke once', async (t) => {
      now = T0;
      const { s } = await open(t);
      const id = s.identity;
      t.same(await id.putPrincipal({ username: 'gw-1', kind: 'gateway', secretHash: 'h1', actor: 'op' }), { replaced: false });
      await id.putPrincipal({ username: 'ioc', kind: 'consumer', secretHash: 'h2', actor: 'op' });
      await id.putPrincipal({ username: 'int', kind: 'integration', secretHash: 'h3', actor: 'op', rules: '{"clientIds":["x"]}' });
      t.match(await id.getPrincipal('gw-1'), { username: 'gw-1', kind: 'gateway', secretHash: 'h1', createdAt: T0, createdBy: 'op', revokedAt: null, revokedBy: null, rules: null });
      t.equal((await id.getPrincipal('int'))?.rules, '{"clientIds":["x"]}', 'rules kept as given');
      t.equal(await id.getPrincipal('nobody'), null);
      t.same((await id.listPrincipals()).map((p) => p.username), ['gw-1', 'int', 'ioc'], 'listed by name');
      t.same((await id.listPrincipals('consumer')).map((p) => p.username), ['ioc'], 'filtered by kind');
      await t.rejects(id.putPrincipal({ username: 'gw-1', kind: 'gateway', secretHash: 'x', actor: 'op' }), { code: 'HUB_ERR_GATEWAY_EXISTS' }, 'a taken gateway name without replace');
      await t.rejects(id.putPrincipal({ username: 'ioc', kind: 'consumer', secretHash: 'x', actor: 'op' }), { code: 'HUB_ERR_BAD_REQUEST', message: /already exists \(consumer\)/ });
      await t.rejects(id.putPrincipal({ username: 'ioc', kind: 'service', secretHash: 'x', actor: 'op', replace: true }), { code: 'HUB_ERR_BAD_REQUEST' }, 'replace never changes the kind');
      t.equal((await id.getPrincipal('ioc'))?.secretHash, 'h2', 'a refused put changed nothing');
      now = T0 + 10;
      t.equal(await id.revokePrincipal('gw-1', 'admin'), true);
      t.equal(await id.revokePrincipal('gw-1', 'admin'), false, 'already revoked');
      t.equal(await id.revokePrincipal('nobody', 'admin'), false, 'unknown');
      t.match(await id.getPrincipal('gw-1'), { revokedAt: T0 + 10, revokedBy: 'admin' });
      now = T0 + 20;
      t.same(await id.putPrincipal({ username: 'gw-1', kind: 'gateway', secretHash: 'h9', actor: 'admin', replace: true }), { replaced: true });
      t.match(await id.getPrincipal('gw-1'), { secretHash: 'h9', createdAt: T0 + 20, createdBy: 'admin', revokedAt: null, revokedBy: null });
    });

    t.test('principals: a hash upgrade replaces the hash only while it is the old one, and changes nothing else', async (t) => {
      now = T0;
      const { s } = await open(t);
      const id = s.identity;
      await id.putPrincipal({ username: 'gw-u', kind: 'gateway', secretHash: 'scrypt-old', actor: 'op' });
      await id.putPrincipal({ username: 'gw-v', kind: 'gateway', secretHash: 'scrypt-v', actor: 'op' });
      t.equal(await id.rehashPrincipal('gw-u', 'scrypt-old', 'sha-new'), true);
      t.match(await id.getPrincipal('gw-u'), { secretHash: 'sha-new', createdAt: T0, createdBy: 'op', revokedAt: null });
      t.equal((await id.getPrincipal('gw-v'))?.secretHash, 'scrypt-v', 'another account untouched');
      t.equal(await id.rehashPrincipal('gw-u', 'scrypt-old', 'sha-other'), false, 'a second upgrade from the old hash does nothing');
      await id.putPrincipal({ username: 'gw-v', kind: 'gateway', secretHash: 'rekeyed', actor: 'admin', replace: true });
      t.equal(await id.rehashPrincipal('gw-v', 'scrypt-v', 'sha-of-old-secret'), false, 'an upgrade racing a re-key never undoes it');
      t.equal((await id.getPrincipal('gw-v'))?.secretHash, 'rekeyed');
      await id.revokePrincipal('gw-u', 'admin');
      t.equal(await id.rehashPrincipal('gw-u', 'sha-new', 'sha-newer'), true);
      t.match(await id.getPrincipal('gw-u'), { secretHash: 'sha-newer', revokedBy: 'admin' }, 'nor lifts a revocation');
      t.equal(await id.rehashPrincipal('nobody', 'a', 'b'), false, 'unknown account');
    });

    t.test('concurrent creation of one account: exactly one succeeds', async (t) => {
      now = T0;
      const { s } = await open(t);
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => s.identity.putPrincipal({ username: 'gw-race', kind: 'gateway', secretHash: `h${i}`, actor: 'op' })));
      t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one created it');
      t.ok(results.every((r) => r.status === 'fulfilled' || (r.reason as { code?: string }).code === 'HUB_ERR_GATEWAY_EXISTS'), 'the others are told it exists');
    });

    t.test('claims: insert, list active or all with a limit, revoke (idempotent; unknown; used)', async (t) => {
      now = T0;
      const { s } = await open(t);
      const id = s.identity;
      const a = await newClaim(s, 'CLA', { gatewayId: 'gw-a', site: 'south' });
      t.same(a, { id: 'CLA', secretHash: 'h-CLA', site: 'south', gatewayId: 'gw-a', note: null, createdAt: T0, createdBy: 'op', expiresAt: T0 + HOUR, usedAt: null, usedBy: null, revokedAt: null, revokedBy: null });
      now = T0 + 1;
      await newClaim(s, 'CLB', { expiresAt: T0 + 100 });
      now = T0 + 2;
      await newClaim(s, 'CLC');
      t.same(await id.getClaim('CLA'), a, 'read back as inserted');
      t.equal(await id.getClaim('nope'), null);
      t.same((await id.listClaims()).map((c) => c.id), ['CLC', 'CLB', 'CLA'], 'active, newest first');
      t.same((await id.listClaims({ limit: 2 })).map((c) => c.id), ['CLC', 'CLB'], 'limit');
      now = T0 + 100;
      t.same((await id.listClaims()).map((c) => c.id), ['CLC', 'CLA'], 'an expired claim is not active');
      t.same((await id.listClaims({ includeInactive: true })).map((c) => c.id), ['CLC', 'CLB', 'CLA'], 'all on request');
      const r = await id.revokeClaim('CLC', 'op2');
      t.match(r, { id: 'CLC', revokedAt: T0 + 100, revokedBy: 'op2' });
      now = T0 + 200;
      t.match(await id.revokeClaim('CLC', 'op3'), { revokedAt: T0 + 100, revokedBy: 'op2' }, 'revoking again changes nothing');
      await t.rejects(id.revokeClaim('nope', 'op'), { code: 'HUB_ERR_NOT_FOUND' });
      await id.redeemClaim(redeemRequest('CLA', 'gw-a'));
      await t.rejects(id.revokeClaim('CLA', 'op'), { code: 'HUB_ERR_CLAIM_USED', message: /used by gateway 'gw-a'/ });
    });

    t.test('redemption: principal, registry row and audit entry together; each refusal writes nothing', async (t) => {
      now = T0;
      const { s } = await open(t);
      const id = s.identity;
      await newClaim(s, 'C1', { site: 'north-depot' });
      now = T0 + 5;
      const red = await id.redeemClaim(redeemRequest('C1', 'gw-1', { registry: { location: 'Cabinet 7', version: '1.2.3', firmware: 'fw9', hostname: 'cab7' } }));
      t.match(red, { claim: { id: 'C1', site: 'north-depot', usedAt: T0 + 5, usedBy: 'gw-1' }, replaced: false, repeated: false });
      t.match(await id.getClaim('C1'), { usedAt: T0 + 5, usedBy: 'gw-1' });
      t.match(await id.getPrincipal('gw-1'), { kind: 'gateway', secretHash: 'hash-gw-1', createdAt: T0 + 5, createdBy: 'claim:C1', revokedAt: null });
      t.match(await s.registry.getGateway('gw-1'), { id: 'gw-1', site: 'north-depot', location: 'Cabinet 7', version: '1.2.3', firmware: 'fw9', hostname: 'cab7', registeredAt: T0 + 5, registeredBy: 'claim:C1', updatedAt: T0 + 5 });
      const audit = await s.audit.list();
      t.equal(audit.length, 1, 'one audit entry, written with the redemption');
      t.match(audit[0], { n: 1, ts: T0 + 5, actor: 'claim:C1', action: 'gateway.provision', target: 'gateway:gw-1', outcome: 'ok', detail: { site: 'north-depot', replaced: false, repeated: false } });

      const refused = async (req: RedeemRequest, code: string, message: RegExp, what: string): Promise<void> => {
        const before = await s.audit.list({ limit: 1000 });
        const claim = await id.getClaim(req.claimId);
        await t.rejects(id.redeemClaim(req), { code, message }, what);
        t.same(await s.audit.list({ limit: 1000 }), before, `${what}: no audit entry from the store`);
        t.same(await id.getClaim(req.claimId), claim, `${what}: the claim is unchanged`);
      };
      await refused(redeemRequest('C9', 'gw-9'), 'HUB_ERR_CLAIM_INVALID', /no claim 'C9'/, 'unknown claim');
      await refused(redeemRequest('C1', 'gw-2'), 'HUB_ERR_CLAIM_USED', /already used/, 'used claim, another gateway');
      await refused(redeemRequest('C1', 'gw-1', { transaction: 'other' }), 'HUB_ERR_CLAIM_USED', /already used/, 'used claim, same gateway, another transaction');
      await newClaim(s, 'C2');
      await id.revokeClaim('C2', 'op');
      await refused(redeemRequest('C2', 'gw-2'), 'HUB_ERR_CLAIM_REVOKED', /was revoked by op/, 'revoked claim');
      await newClaim(s, 'C3', { expiresAt: now + 10 });
      now += 10;
      await refused(redeemRequest('C3', 'gw-3'), 'HUB_ERR_CLAIM_EXPIRED', /expired at/, 'expired claim');
      await newClaim(s, 'C4', { gatewayId: 'gw-bound' });
      await refused(redeemRequest('C4', 'gw-other'), 'HUB_ERR_CLAIM_INVALID', /is for gateway 'gw-bound'/, 'claim bound to another gateway');
      await newClaim(s, 'C5');
      await refused(redeemRequest('C5', 'gw-1'), 'HUB_ERR_GATEWAY_EXISTS', /already registered/, 'an unbound claim for a registered gateway');
      await id.putPrincipal({ username: 'ioc', kind: 'consumer', secretHash: 'h', actor: 'op' });
      await newClaim(s, 'C6', { gatewayId: 'ioc' });
      await refused(redeemRequest('C6', 'ioc'), 'HUB_ERR_GATEWAY_EXISTS', /already registered/, 'a bound claim for a consumer account');
      t.equal(await id.getPrincipal('gw-2'), null, 'no account from refusals');
      t.equal(await s.registry.getGateway('gw-2'), null, 'no registry row from refusals');
    });

    t.test('redemption: a repeated request within the window re-keys; a bound claim replaces a revoked gateway', async (t) => {
      now = T0;
      const { s } = await open(t);
      const id = s.identity;
      await newClaim(s, 'R1', { expiresAt: T0 + 10 * HOUR });
      await id.redeemClaim(redeemRequest('R1', 'gw-r'));
      now = T0 + HOUR / 2;
      const again = await id.redeemClaim(redeemRequest('R1', 'gw-r', { secretHash: 'second' }));
      t.match(again, { replaced: true, repeated: true });
      t.match(await id.getPrincipal('gw-r'), { secretHash: 'second', createdAt: T0 + HOUR / 2, createdBy: 'claim:R1' });
      t.match((await s.audit.list())[0], { detail: { repeated: true } }, 'the repeat is audited');
      now = T0 + HOUR + 1;
      await t.rejects(id.redeemClaim(redeemRequest('R1', 'gw-r', { secretHash: 'third' })), { code: 'HUB_ERR_CLAIM_USED' }, 'not after the retry window');
      now = T0 + HOUR / 2;
      await id.revokePrincipal('gw-r', 'admin');
      await t.rejects(id.redeemClaim(redeemRequest('R1', 'gw-r', { secretHash: 'fourth' })), { code: 'HUB_ERR_CLAIM_USED' }, 'not once the issued credential is revoked');

      await newClaim(s, 'R2', { gatewayId: 'gw-r', site: 'west' });
      const rep = await id.redeemClaim(redeemRequest('R2', 'gw-r', { registry: {} }));
      t.match(rep, { replaced: true, repeated: false });
      t.match(await id.getPrincipal('gw-r'), { secretHash: 'hash-gw-r', createdBy: 'claim:R2', revokedAt: null, revokedBy: null }, 're-provisioned and no longer revoked');
      t.match(await s.registry.getGateway('gw-r'), { site: 'west', location: 'Cabinet 7', version: '1.2.3', registeredBy: 'claim:R2' }, 'site from the new claim; location and version kept');
      t.ok((await s.audit.verify()).ok, 'the chain holds');
    });

    t.test('concurrent redemption of one claim: exactly one gateway gets it', async (t) => {
      now = T0;
      const { s } = await open(t);
      await newClaim(s, 'RACE');
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => s.identity.redeemClaim(redeemRequest('RACE', `gw-${i}`))));
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [`gw-${i}`] : []));
      t.equal(won.length, 1, 'one winner');
      t.ok(results.every((r) => r.status === 'fulfilled' || (r.reason as { code?: string }).code === 'HUB_ERR_CLAIM_USED'), 'the others: claim used');
      t.same((await s.identity.listPrincipals('gateway')).map((p) => p.username), won, 'one account');
      t.same((await s.registry.listGateways()).map((g) => g.id), won, 'one registry row');
      t.equal((await s.audit.list({ action: 'gateway.provision' })).length, 1, 'one audit entry');
    });

    t.test('API tokens: insert, get, list, revoke once', async (t) => {
      now = T0;
      const { s } = await open(t);
      const id = s.identity;
      const a = await id.insertToken({ id: 'TKA', name: 'ops desk', role: 'operator', secretHash: 'ha', actor: 'local:root' });
      t.same(a, { id: 'TKA', name: 'ops desk', role: 'operator', secretHash: 'ha', createdAt: T0, createdBy: 'local:root', revokedAt: null, revokedBy: null });
      now = T0 + 1;
      await id.insertToken({ id: 'TKB', name: 'scada', role: 'viewer', secretHash: 'hb', actor: 'admin' });
      t.same(await id.getToken('TKA'), a);
      t.equal(await id.getToken('nope'), null);
      t.same((await id.listTokens()).map((x) => x.id), ['TKA', 'TKB'], 'oldest first');
      now = T0 + 2;
      t.equal(await id.revokeToken('TKA', 'admin'), true);
      t.equal(await id.revokeToken('TKA', 'admin'), false, 'already revoked');
      t.equal(await id.revokeToken('nope', 'admin'), false, 'unknown');
      t.match(await id.getToken('TKA'), { revokedAt: T0 + 2, revokedBy: 'admin' });
      t.match(await id.getToken('TKB'), { revokedAt: null }, 'the other token untouched');
      await t.rejects(id.insertToken({ id: 'TKB', name: 'dup', role: 'admin', secretHash: 'x', actor: 'a' }), 'a duplicate id is refused');
    });

    t.test('audit: list filters, newest first; chain verifies; a changed or removed entry is found', async (t) => {
      now = T0;
      const { s, loc } = await open(t);
      const records: AuditRecord[] = [
        { actor: 'alice', action: 'claim.create', target: 'claim:X', outcome: 'ok', detail: { site: 'n', ok: true, n: 1.5, nested: { a: [1, 'ü'] } } },
        { actor: 'bob', action: 'claim_x.odd', outcome: 'denied', source: '10.0.0.1' },
        { actor: 'alice', action: 'token.create', target: 'token:T', outcome: 'ok' },
        { actor: 'carol', action: 'claimXcreate', outcome: 'error', detail: null },
      ];
      for (const r of records) {
        await s.audit.record(r);
        now += 1000;
      }
      const all = await s.audit.list();
      t.same(all.map((e) => e.n), [4, 3, 2, 1], 'newest first');
      t.same(all[3], { n: 1, ts: T0, actor: 'alice', action: 'claim.create', target: 'claim:X', outcome: 'ok', source: null, detail: { site: 'n', ok: true, n: 1.5, nested: { a: [1, 'ü'] } }, hash: all[3]!.hash }, 'an entry as recorded');
      t.match(all[2], { n: 2, target: null, source: '10.0.0.1', detail: null });
      t.match(all[0]!.hash, /^[0-9a-f]{64}$/);
      t.same((await s.audit.list({ actor: 'alice' })).map((e) => e.n), [3, 1], 'by actor');
      t.same((await s.audit.list({ action: 'claim' })).map((e) => e.n), [4, 2, 1], 'by action prefix');
      t.same((await s.audit.list({ action: 'claim_' })).map((e) => e.n), [2], '_ in a prefix is a character, not a wildcard');
      t.same((await s.audit.list({ action: 'claim.' })).map((e) => e.n), [1]);
      t.same((await s.audit.list({ since: T0 + 2000 })).map((e) => e.n), [4, 3], 'since');
      t.same((await s.audit.list({ limit: 1 })).map((e) => e.n), [4], 'limit');
      const v = await s.audit.verify();
      t.same(v, { ok: true, entries: 4, head: { n: 4, hash: all[0]!.hash } });
      t.same(await s.audit.verify(v.head!), v, 'verifies against its own head');

      await fx.exec(loc, "UPDATE audit SET actor = 'mallory' WHERE n = 2");
      t.match(await s.audit.verify(), { ok: false, entries: 1, firstBad: { n: 2, reason: /changed/ } }, 'a changed entry is named');
      await fx.exec(loc, "UPDATE audit SET actor = 'bob' WHERE n = 2");
      t.ok((await s.audit.verify()).ok, 'restored');
      await fx.exec(loc, 'DELETE FROM audit WHERE n = 4');
      t.match(await s.audit.verify(), { ok: true, entries: 3 }, 'removing the newest entry leaves a chain that fits…');
      t.match(await s.audit.verify(v.head!), { ok: false, firstBad: { n: 4, reason: /removed/ } }, '…caught against the head kept elsewhere');
      await fx.exec(loc, 'DELETE FROM audit WHERE n = 2');
      t.match(await s.audit.verify(), { ok: false, firstBad: { n: 3, reason: /entries 2…2 are missing/ } }, 'a gap is named');
    });

    t.test('audit: concurrent appends from one process keep one chain', async (t) => {
      now = T0;
      const { s } = await open(t);
      await Promise.all(Array.from({ length: 40 }, (_, i) => s.audit.record({ actor: `a${i % 4}`, action: 'test.append', outcome: 'ok', detail: { i } })));
      const v = await s.audit.verify();
      t.match(v, { ok: true, entries: 40, head: { n: 40 } });
      t.same(new Set((await s.audit.list({ limit: 100 })).map((e) => (e.detail as { i: number }).i)).size, 40, 'every entry once');
    });

    t.test('registry: register, update, status versions and inventory (devices added, changed, removed)', async (t) => {
      now = T0;
      const { s } = await open(t);
      const reg = s.registry;
      await reg.register('gw-b', { site: 'north', actor: 'admin' });
      t.same(await reg.getGateway('gw-b'), { id: 'gw-b', site: 'north', location: null, version: null, firmware: null, hostname: null, registeredAt: T0, registeredBy: 'admin', updatedAt: T0 });
      now = T0 + 1;
      await reg.register('gw-b', { site: null, actor: 'hub' });
      t.match(await reg.getGateway('gw-b'), { site: 'north', registeredBy: 'hub', registeredAt: T0 + 1 }, 'a null site keeps the old one');
      t.equal(await reg.getGateway('nope'), null);
      now = T0 + 2;
      t.match(await reg.updateGateway('gw-b', { location: 'Pole 3' }), { site: 'north', location: 'Pole 3', updatedAt: T0 + 2 });
      t.match(await reg.updateGateway('gw-b', { site: 'south' }), { site: 'south', location: 'Pole 3' });
      await t.rejects(reg.updateGateway('nope', { site: 'x' }), { code: 'HUB_ERR_NOT_FOUND', message: /no gateway 'nope'/ });

      now = T0 + 10;
      await reg.recordStatus('gw-a', status([
        { id: 'flood-1', profile: 'flood', bus: 'rs485', busType: 'rtu', address: '/dev/ttyS0', unitId: 3 },
        { id: 'cam-1', profile: 'cam', bus: 'eth', enabled: false },
      ]));
      t.match(await reg.getGateway('gw-a'), { version: '1.0.0', registeredBy: 'status', registeredAt: T0 + 10 }, 'a gateway first seen by its status');
      t.same(await reg.listDevices({ gateway: 'gw-a' }), [
        { gateway: 'gw-a', id: 'cam-1', profile: 'cam', bus: 'eth', busType: null, address: null, unitId: null, enabled: false, firstSeen: T0 + 10, lastSeen: T0 + 10, removedAt: null },
        { gateway: 'gw-a', id: 'flood-1', profile: 'flood', bus: 'rs485', busType: 'rtu', address: '/dev/ttyS0', unitId: 3, enabled: true, firstSeen: T0 + 10, lastSeen: T0 + 10, removedAt: null },
      ]);
      now = T0 + 20;
      await reg.recordStatus('gw-a', status([{ id: 'flood-1', profile: 'flood2', bus: 'rs485', unitId: 4 }], '1.1.0'));
      t.match(await reg.getGateway('gw-a'), { version: '1.1.0', updatedAt: T0 + 20 });
      t.same((await reg.listDevices({ gateway: 'gw-a' })).map((d) => [d.id, d.profile, d.unitId, d.firstSeen, d.lastSeen]), [['flood-1', 'flood2', 4, T0 + 10, T0 + 20]], 'a device gone from the inventory is not listed');
      t.same((await reg.listDevices({ gateway: 'gw-a', includeRemoved: true })).map((d) => [d.id, d.removedAt]), [['cam-1', T0 + 20], ['flood-1', null]], 'unless asked: removed at');
      now = T0 + 30;
      await reg.recordStatus('gw-a', status(undefined, '1.1.0'));
      t.match(await reg.getGateway('gw-a'), { version: '1.1.0', updatedAt: T0 + 20 }, 'an unchanged version does not touch updatedAt');
      await reg.recordStatus('gw-c', status([]));
      t.same(await reg.listDevices({ gateway: 'gw-c' }), []);
      t.same((await reg.listDevices()).map((d) => `${d.gateway}/${d.id}`), ['gw-a/flood-1'], 'all gateways');
      t.same((await reg.listGateways()).map((g) => g.id), ['gw-a', 'gw-b', 'gw-c'], 'gateways by id');
    });

    t.test('durable: everything is there after the stores are closed and opened again', async (t) => {
      now = T0;
      const first = await open(t);
      await first.s.identity.putPrincipal({ username: 'gw-d', kind: 'gateway', secretHash: 'hd', actor: 'op' });
      await newClaim(first.s, 'D1');
      await first.s.identity.redeemClaim(redeemRequest('D1', 'gw-e'));
      await first.s.identity.insertToken({ id: 'TKD', name: 'd', role: 'admin', secretHash: 'ht', actor: 'op' });
      await first.s.audit.record({ actor: 'op', action: 'x.y', outcome: 'ok' });
      const head = (await first.s.audit.verify()).head!;
      await first.s.stop();
      const { s } = await open(t, first.loc);
      t.same((await s.identity.listPrincipals()).map((p) => p.username), ['gw-d', 'gw-e']);
      t.match(await s.identity.getClaim('D1'), { usedBy: 'gw-e' });
      t.ok(await s.identity.getToken('TKD'));
      t.ok(await s.registry.getGateway('gw-e'));
      t.same(await s.audit.verify(head), { ok: true, entries: 2, head });
      await s.audit.record({ actor: 'op', action: 'x.z', outcome: 'ok' });
      t.match(await s.audit.verify(head), { ok: true, entries: 3, head: { n: 3 } }, 'the chain goes on from its head');
    });
  });
}
