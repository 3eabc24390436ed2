/** Test helper: commits telemetry into a hub store, then dies with SIGKILL before the written-behind `latest` is flushed. */
import { silentLogger } from '../../lib/index.js';
import { HubStore } from '../store/sqlite/hub-store.js';

const [file, n] = process.argv.slice(2) as [string, string];
const store = new HubStore({ file, logger: silentLogger(), latestFlushMs: 3_600_000 });
await store.start();
for (let seq = 1; seq <= Number(n); seq++) {
  await store.commitBatch({ gateway: 'gw-crash', epoch: 'e', seq, historical: false, readings: [{ device: 'd1', point: 'level', ts: 1_000 + seq, value: seq, quality: 'good' }, { device: 'd1', point: 'door', ts: 1_000 + seq, value: seq % 2 === 0, quality: 'stale' }] });
}
process.kill(process.pid, 'SIGKILL');
