/**
 * The PostgreSQL state stores (pg-registry.ts, pg-identity.ts, pg-audit.ts,
 * opened by hub/store/state.ts) against the registry/identity/audit
 * conformance suite, each test in its own schema; then the races between
 * two hubs (two pools on one schema): a claim redeemed once, audit appends
 * that never fork the chain. Skipped with one line where no PostgreSQL
 * answers (a failure under CI=true).
 */
import t, { type Test } from 'tap';
import pg from 'pg';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { openStateStores, type StateStores } from '../state.js';
import { identityStateConformance, redeemRequest } from './state-conformance-identity.js';

const skip = await skipUnlessPostgres();
const url = (schema: string): string => `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;

if (skip) {
  t.pass(skip);
} else {
  identityStateConformance(t, 'PostgreSQL', {
    location: async (t) => pgSchema(t),
    open: (schema, clock) => openStateStores({ store: url(schema), dataDir: t.testdir(), logger: silentLogger(), clock }),
    exec: async (schema, sql) => {
      const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
      await c.connect();
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
    },
  });

  /** Two hubs' state stores on one schema: separate pools, separate processes as far as PostgreSQL can tell. */
  const twoHubs = async (t: Test): Promise<[StateStores, StateStores]> => {
    const schema = pgSchema(t);
    const hubs = [0, 1].map((i) => openStateStores({ store: url(schema), dataDir: t.testdir(), logger: silentLogger(), pg: { applicationName: `ioc-edge-race-${i}` } })) as [StateStores, StateStores];
    for (const h of hubs) {
      await h.start();
      t.teardown(() => h.stop());
    }
    return hubs;
  };

  t.test('two hubs redeem the same claim at the same moment: exactly one wins, every time', async (t) => {
    const [a, b] = await twoHubs(t);
    const rounds = 12;
    for (let i = 0; i < rounds; i++) {
      await a.identity.insertClaim({ id: `RACE${i}`, secretHash: 'h', site: 'north', gatewayId: null, note: null, actor: 'op', expiresAt: Date.now() + 3_600_000 });
      const results = await Promise.allSettled([a.identity.redeemClaim(redeemRequest(`RACE${i}`, `gw-a${i}`)), b.identity.redeemClaim(redeemRequest(`RACE${i}`, `gw-b${i}`))]);
      t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${i}: one winner`);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      t.equal((lost?.reason as { code?: string } | undefined)?.code, 'HUB_ERR_CLAIM_USED', `round ${i}: the other is told the claim is used`);
    }
    t.equal((await b.identity.listPrincipals('gateway')).length, rounds, 'one account per claim');
    t.equal((await a.registry.listGateways()).length, rounds, 'one registry row per claim');
    t.equal((await a.audit.list({ action: 'gateway.provision', limit: 1000 })).length, rounds, 'one audit entry per claim');
    t.ok((await b.audit.verify()).ok, 'the chain holds');
  });

  t.test('two hubs append to the audit chain at once: one chain, every entry once', async (t) => {
    const [a, b] = await twoHubs(t);
    const per = 60;
    await Promise.all([a, b].flatMap((h, hub) => Array.from({ length: per }, (_, i) => h.audit.record({ actor: `hub${hub}`, action: 'race.append', outcome: 'ok', detail: { i } }))));
    const v = await a.audit.verify();
    t.match(v, { ok: true, entries: 2 * per, head: { n: 2 * per } }, 'the chain verifies from either hub');
    t.same(await b.audit.verify(), v);
    for (const hub of ['hub0', 'hub1']) t.equal((await a.audit.list({ actor: hub, limit: 1000 })).length, per, `${hub}: all its entries`);
  });
}
