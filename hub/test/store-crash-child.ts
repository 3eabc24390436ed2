/**
 * Test helper: commits telemetry into a hub store, then dies with SIGKILL
 * before the written-behind `latest` is flushed. With a third argument
 * `merge-half`, the first half of the readings is moved out of the staging
 * table before the second half is committed; the rest stays staged.
 */
import { silentLogger } from '../../lib/index.js';
import { HubStore } from '../store/sqlite/hub-store.js';

const [file, n, mode] = process.argv.slice(2) as [string, string, string | undefined];
const store = new HubStore({ file, logger: silentLogger(), latestFlushMs: 3_600_000, mergeMs: 3_600_000 });
await store.start();
for (let seq = 1; seq <= Number(n); seq++) {
  if (mode === 'merge-half' && seq === Math.floor(Number(n) / 2) + 1) await store.mergeStaged();
  await store.commitBatch({ gateway: 'gw-crash', epoch: 'e', seq, historical: false, readings: [{ device: 'd1', point: 'level', ts: 1_000 + seq, value: seq, quality: 'good' }, { device: 'd1', point: 'door', ts: 1_000 + seq, value: seq % 2 === 0, quality: 'stale' }] });
}
process.kill(process.pid, 'SIGKILL');
