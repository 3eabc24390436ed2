/**
 * Child processes of bench:api.
 *   hub DATA_DIR          a hub with authentication; prints {"ready":true, httpPort, mqttPort, viewerToken, claim}
 *   gateway CONFIG_FILE   a gateway from a configuration file; prints {"ready":true}
 * Both stop cleanly on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { startGateway } from '../../gateway/index.js';
import { startHub } from '../../hub/index.js';
import { createLogger } from '../../lib/index.js';

const [mode, arg] = process.argv.slice(2);
const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'error', destination: process.stderr });
let stop: () => Promise<void>;
if (mode === 'hub') {
  const store = process.env.IOC_EDGE_HUB_STORE || undefined; // bench:api --store postgres
  const hub = await startHub({ dataDir: arg!, logger, mqttPort: 0, httpPort: 0, auth: { mode: 'required' }, ...(store ? { store } : {}) });
  const viewer = await hub.identity.createApiToken({ name: 'bench', role: 'viewer' }, { actor: 'bench' });
  const { token: claim } = await hub.identity.createClaim({ site: 'bench', gatewayId: 'gw-live' }, { actor: 'bench' });
  process.stdout.write(`${JSON.stringify({ ready: true, httpPort: hub.httpPort, mqttPort: hub.mqttPort, viewerToken: viewer.token, claim })}\n`);
  stop = () => hub.stop();
} else if (mode === 'gateway') {
  const gw = await startGateway({ config: JSON.parse(readFileSync(arg!, 'utf8')), source: arg!, logger });
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  stop = () => gw.stop();
} else {
  console.error('usage: api-procs.ts hub DATA_DIR | gateway CONFIG_FILE');
  process.exit(2);
}
const onSignal = (): void => void stop().then(() => process.exit(0));
process.once('SIGTERM', onSignal);
process.once('SIGINT', onSignal);
