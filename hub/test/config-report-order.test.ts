/**
 * A gateway's configuration reports are stored in the order they arrived.
 * A gateway that rolls back sends 'confirming' (running the new version,
 * whose hash the hub looks up) and then 'rolled-back' (running its file, no
 * lookup) back to back; handled side by side, the first was stored last and
 * the fleet view said 'applying' for good (config-api test, CI under load).
 */
import t from 'tap';
import mqtt from 'mqtt';
import { topics } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import { waitFor } from '../../test/support/wait.js';
import { startHub } from '../index.js';
import { tempDir } from './support.js';

t.test('a confirming report followed at once by rolled-back: rolled-back is what the hub keeps', async (t) => {
  const hub = await startHub({ dataDir: tempDir(t), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  t.teardown(() => hub.stop());
  const config = { gatewayId: 'gw-order', hub: { url: 'mqtt://127.0.0.1:1883' }, buses: [], devices: [] };
  await hub.config.push('gw-order', { config }, { actor: 'test' });
  const hash = (await hub.config.fleet({ gateway: 'gw-order' })).items[0]?.desired?.hash;
  t.ok(hash, 'version 1 is stored with its hash');

  const gw = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: 'gw-order', reconnectPeriod: 0 });
  t.teardown(() => gw.endAsync(true));
  let stored = 0;
  hub.config.on('reported', ({ gateway }: { gateway: string }) => void (gateway === 'gw-order' && stored++));
  const now = Date.now();
  const confirming = { v: 1, ts: now, running: { version: 1, hash, since: now }, status: 'confirming', version: 1, profiles: [] };
  const rolledBack = { v: 1, ts: now + 1, running: { version: 0, since: now + 1 }, status: 'rolled-back', version: 1, error: { code: 'CONFIG_ERR_UNCONFIRMED', message: 'the hub refused the connection', phase: 'confirm' }, profiles: [] };
  for (let round = 0; round < 5; round++) {
    await Promise.all([
      gw.publishAsync(topics.configReported('gw-order'), JSON.stringify(confirming), { qos: 1 }),
      gw.publishAsync(topics.configReported('gw-order'), JSON.stringify(rolledBack), { qos: 1 }),
    ]);
    await waitFor(() => stored >= 2 * (round + 1), 'both reports stored');
    const row = (await hub.config.fleet({ gateway: 'gw-order' })).items[0]!;
    t.equal(row.reported?.status, 'rolled-back', `round ${round + 1}: the later report is the stored one`);
    t.equal(row.state, 'failed', 'and the fleet view says failed');
  }
});
