/**
 * Test helper: one hub cluster node in its own process, so a test can
 * SIGKILL it. Arguments: store URL, Redis URL, key prefix, heartbeat ms,
 * data directory. Prints `READY <mqttPort> <httpPort> <brokerId>` once it
 * listens, then runs until killed.
 */
import { silentLogger } from '../../../lib/index.js';
import { startHub } from '../../index.js';

const [store, redis, keyPrefix, heartbeat, dataDir] = process.argv.slice(2) as [string, string, string, string, string];
const hub = await startHub({ dataDir, logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'open' }, store, cluster: { redis, keyPrefix, heartbeatMs: Number(heartbeat) } });
process.stdout.write(`READY ${hub.mqttPort} ${hub.httpPort} ${hub.cluster!.brokerId}\n`);
setInterval(() => undefined, 60_000);
