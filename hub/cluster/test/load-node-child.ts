/**
 * Test helper of cluster-load.test.ts: one hub cluster node in its own
 * process (so a test can SIGKILL it), with required authentication. Argument:
 * one JSON object {store, redis, keyPrefix, heartbeatMs, dataDir, nodeId,
 * issue?: gateway id}. With `issue` the node makes an admin API token and a
 * gateway credential (both in PostgreSQL, so every node of the cluster
 * accepts them). Prints one line `READY {mqttPort, httpPort, brokerId,
 * token?, username?, password?}` once it listens, then runs until killed.
 */
import { silentLogger } from '../../../lib/index.js';
import { startHub } from '../../index.js';

interface Args {
  store: string;
  redis: string;
  keyPrefix: string;
  heartbeatMs: number;
  dataDir: string;
  nodeId: string;
  issue?: string;
}

const a = JSON.parse(process.argv[2]!) as Args;
const hub = await startHub({
  dataDir: a.dataDir, logger: silentLogger(), mqttPort: 0, httpPort: 0,
  auth: { mode: 'required' },
  store: a.store, cluster: { redis: a.redis, keyPrefix: a.keyPrefix, heartbeatMs: a.heartbeatMs, nodeId: a.nodeId },
});
const extra = a.issue
  ? { token: (await hub.identity.createApiToken({ name: 'load-test', role: 'admin' }, { actor: 'test' })).token, ...(await hub.identity.issueGatewayCredential(a.issue)) }
  : {};
process.stdout.write(`READY ${JSON.stringify({ mqttPort: hub.mqttPort, httpPort: hub.httpPort, brokerId: hub.cluster!.brokerId, ...extra })}\n`);
setInterval(() => undefined, 60_000);
