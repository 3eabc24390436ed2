/**
 * Overlapping reconfigurations (new credentials twice at once, as a push and
 * its rollback can be): one client at a time, and after stop() the hub holds
 * no connection of the gateway (an orphaned client kept a test process alive).
 */
import t from 'tap';
import path from 'node:path';
import { silentLogger } from '../../../lib/index.js';
import { startHub } from '../../../hub/index.js';
import { SqliteOutbox } from '../../outbox/sqlite-outbox.js';
import { Uplink } from '../uplink.js';
import { waitFor } from '../../../test/support/wait.js';

t.test('overlapping reconfigures leave one client; stop leaves none', async (t) => {
  const dir = t.testdir();
  const hub = await startHub({ dataDir: path.join(dir, 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0 });
  t.teardown(() => hub.stop());
  const outbox = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits: { maxRows: 1_000_000, maxBytes: 1 << 30, maxAgeMs: 86_400_000 } });
  await outbox.start();
  t.teardown(() => outbox.stop());
  const url = `mqtt://127.0.0.1:${hub.mqttPort}`;
  const uplink = new Uplink({ gatewayId: 'gw-reconf', url, logger: silentLogger(), outbox, version: '1', batchSize: 100, window: 2, statusIntervalMs: 60_000, keepaliveS: 30, reconnect: { minMs: 50, maxMs: 200 } });
  t.teardown(() => uplink.stop());
  await uplink.start();
  await waitFor(() => uplink.connected, 'connected');
  const clients = (): number => (hub.broker.instance as unknown as { connectedClients: number }).connectedClients;

  for (let round = 0; round < 5; round++) {
    type Client = { disconnected: boolean };
    const inside = uplink as unknown as { connect(): void; client: Client | null };
    const made: Client[] = [];
    const real = inside.connect.bind(uplink);
    inside.connect = () => {
      real();
      made.push(inside.client!);
    };
    const results = await Promise.all([uplink.reconfigure({ username: `a${round}` }), uplink.reconfigure({ username: `b${round}` }), uplink.reconfigure({ username: `c${round}` })]);
    t.same(results, [true, true, true], 'each change reconnected');
    t.equal(made.length, 3, 'one client per change');
    t.same(made.slice(0, -1).map((c) => c.disconnected), [true, true], 'every client but the current one was ended (none orphaned)');
    t.equal(inside.client, made[2], 'the last one made is the current one');
    await waitFor(() => uplink.connected, 'connected again');
  }
  await uplink.stop();
  await waitFor(() => clients() === 0, 'no connection of the gateway left at the hub', 10_000);
  t.pass('none left');
});
