/**
 * Short runs of the gateway fault scenarios (scripts/fault/scenarios.ts) with real
 * processes: nothing lost but what a budget dropped (counted) or what a
 * killed gateway had not yet written, nothing stored twice.
 * Long runs: `node --import tsx scripts/fault/run.ts`.
 */
import t from 'tap';
import { budgetOverflow, gatewayKills } from '../scripts/fault/scenarios.js';

t.test('(b) gateway killed with SIGKILL under load, three times', async (t) => {
  const r = await gatewayKills(3, { runMs: [500, 1500] });
  t.comment(JSON.stringify(r));
  t.ok(r.served > 100, `devices served ${r.served} values`);
  t.equal(r.duplicates, 0, 'nothing stored twice');
  t.equal(r.lostUnexplained, 0, `only values read in the last moments before a kill may be lost (lost ${r.lost})`);
});

t.test('(d) budget overflow: the oldest readings dropped and counted, the newest kept', async (t) => {
  const r = await budgetOverflow(1000, { devices: 10 }); // 200 readings/s: the budget overflows 2.5 times in about 12 s
  t.comment(JSON.stringify(r));
  t.ok(r.dropped > 0, `the budget dropped ${r.dropped}`);
  t.equal(r.lost, r.dropped, 'every missing value is accounted for by the drop counter');
  t.equal(r.lostUnexplained, 0);
  t.equal(r.duplicates, 0);
  t.equal(r.newestKept, true, 'what was dropped is older than everything kept');
});
