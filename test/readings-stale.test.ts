/**
 * Issue 14.4, hub side: after a gateway goes offline, `/readings/latest`
 * marks its last values `stale: true` (their `quality` stays as read), and
 * the mark goes once the gateway is back. Real parts on loopback: Modbus TCP
 * simulator → gateway → Aedes hub (SQLite) → HTTP API.
 */
import t from 'tap';
import { gatewayConfig, startSim, startTestGateway, startTestHub } from './support/stack.js';
import { waitFor } from './support/wait.js';

interface Latest {
  gateway: string;
  device: string;
  point: string;
  quality: string;
  value: unknown;
  stale?: boolean;
}

async function latest(port: number, query: string): Promise<Latest[]> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/readings/latest?${query}`);
  if (!res.ok) throw new Error(`HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { items: Latest[] }).items;
}

t.test('an offline gateway: its latest values are marked stale, quality unchanged; back online, unmarked', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  const hub = await startTestHub(t, dir);
  const config = gatewayConfig(dir, hub.mqttPort, sim.port);
  const gw = await startTestGateway(t, config);
  await waitFor(async () => (await latest(hub.httpPort, 'gateway=gw-test-01&device=flood-1')).some((r) => r.quality === 'good'), 'good values at the hub');
  const online = await latest(hub.httpPort, 'gateway=gw-test-01');
  t.ok(online.every((r) => r.stale === undefined), 'an online gateway: no stale mark');

  await gw.stop();
  const offline = await waitFor(async () => {
    const items = await latest(hub.httpPort, 'gateway=gw-test-01');
    return items.length > 0 && items.every((r) => r.stale === true) ? items : null;
  }, 'every latest value of the stopped gateway marked stale');
  const before = new Map(online.map((r) => [`${r.device}.${r.point}`, r.quality]));
  t.ok(offline.some((r) => r.quality === 'good'), 'quality stays what the device reported');
  t.ok(offline.every((r) => !before.has(`${r.device}.${r.point}`) || before.get(`${r.device}.${r.point}`) === r.quality || r.quality === 'good'), 'no quality rewritten');

  await startTestGateway(t, config);
  await waitFor(async () => (await latest(hub.httpPort, 'gateway=gw-test-01')).every((r) => r.stale === undefined), 'stale mark gone once the gateway is back');
  t.pass('back online');
});
