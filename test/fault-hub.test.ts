/**
 * Short runs of the hub fault scenarios (scripts/fault/scenarios.ts) with real
 * processes: nothing lost but what a budget dropped (counted) or what a
 * killed gateway had not yet written, nothing stored twice.
 * Long runs: `node --import tsx scripts/fault/run.ts`.
 */
import t from 'tap';
import { hubFaults } from '../scripts/fault/scenarios.js';

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
