/**
 * Long runs of the fault scenarios; prints the counts of each.
 *   node --import tsx scripts/fault/run.ts [--gateway-kills N] [--hub-kills N] [--hub-outages N] [--budget ROWS]
 */
import { parseArgs } from 'node:util';
import { budgetOverflow, gatewayKills, hubFaults, type FaultReport } from './scenarios.js';

const { values } = parseArgs({
  options: {
    'gateway-kills': { type: 'string', default: '20' },
    'hub-kills': { type: 'string', default: '10' },
    'hub-outages': { type: 'string', default: '3' },
    budget: { type: 'string', default: '5000' },
  },
});
const log = (line: string): void => console.log(`  ${line}`);
const reports: FaultReport[] = [];
const n = (k: keyof typeof values): number => Number(values[k]);
if (n('gateway-kills') > 0) reports.push(await gatewayKills(n('gateway-kills'), { log }));
if (n('hub-kills') > 0) reports.push(await hubFaults(n('hub-kills'), 'SIGKILL', { log }));
if (n('hub-outages') > 0) reports.push(await hubFaults(n('hub-outages'), 'SIGTERM', { log, downMs: [3000, 10_000] }));
if (n('budget') > 0) reports.push(await budgetOverflow(n('budget'), { log }));
console.table(reports);
const bad = reports.filter((r) => r.duplicates > 0 || r.lostUnexplained > 0 || (r.scenario !== 'gateway SIGKILL' && r.lost !== r.dropped));
console.log(bad.length === 0 ? 'all scenarios held their guarantees' : `VIOLATIONS in: ${bad.map((r) => r.scenario).join(', ')}`);
process.exit(bad.length === 0 ? 0 : 1);
