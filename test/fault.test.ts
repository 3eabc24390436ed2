/**
 * Short runs of the fault scenarios (scripts/fault/scenarios.ts) with real
 * processes: nothing lost but what a budget dropped (counted) or what a
 * killed gateway had not yet written, nothing stored twice.
 * Long runs: `node --import tsx scripts/fault/run.ts`.
 */
import t from 'tap';
import { budgetOverflow, gatewayKills, hubFaults } from '../scripts/fault/scenarios.js';

t.test('(b) gateway killed with SIGKILL under load, three times', async (t) => {
  const r = await gatewayKills(3, { runMs: [500, 1500] });
  t.comment(JSON.stringify(r));
  t.ok(r.served > 100, `devices served ${r.served} values`);
  t.equal(r.duplicates, 0, 'nothing stored twice');
  t.equal(r.lostUnexplained, 0, `only values read in the last moments before a kill may be lost (lost ${r.lost})`);
});

t.test('(c) hub killed with SIGKILL under load, twice: nothing lost, nothing doubled', async (t) => {
  const r = await hubFaults(2, 'SIGKILL', { runMs: [800, 1500], downMs: [200, 800] });
  t.comment(JSON.stringify(r));
  t.ok(r.served > 100);
  t.equal(r.lost, 0, 'every served value is in the store');
  t.equal(r.duplicates, 0);
  t.equal(r.dropped, 0);
});

t.test('(a) hub down for a period, then back', async (t) => {
  const r = await hubFaults(1, 'SIGTERM', { runMs: [500, 800], downMs: [2000, 2500] });
  t.comment(JSON.stringify(r));
  t.equal(r.lost, 0);
  t.equal(r.duplicates, 0);
});

t.test('(d) budget overflow: the oldest readings dropped and counted, the newest kept', async (t) => {
  const r = await budgetOverflow(1000);
  t.comment(JSON.stringify(r));
  t.ok(r.dropped > 0, `the budget dropped ${r.dropped}`);
  t.equal(r.lost, r.dropped, 'every missing value is accounted for by the drop counter');
  t.equal(r.lostUnexplained, 0);
  t.equal(r.duplicates, 0);
  t.equal(r.newestKept, true, 'what was dropped is older than everything kept');
});
