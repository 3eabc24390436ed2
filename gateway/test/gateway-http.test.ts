/** The gateway's /metrics, /healthz and /readyz endpoint against a simulator and a real hub. */
import t from 'tap';
import { gatewayConfig, startSim, startTestGateway, startTestHub } from '../../test/support/stack.js';
import { waitFor } from '../../test/support/wait.js';

async function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** Value of one sample line of the exposition text, e.g. `ioc_edge_outbox_readings{gateway="x"}`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

t.test('the endpoint is off unless configured', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  const gw = await startTestGateway(t, gatewayConfig(dir, 1, sim.port));
  t.equal(gw.httpPort, 0);
  t.match(await gw.metrics.text(), /ioc_edge_outbox_readings/, 'metrics exist in process even without the endpoint');
});

t.test('metrics, liveness and readiness', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  const hub = await startTestHub(t, dir);
  const cfg = gatewayConfig(dir, hub.mqttPort, sim.port, { http: { host: '127.0.0.1', port: 0 } });
  (cfg.devices as Array<Record<string, unknown>>).push({ id: 'ghost', bus: 'lan', unitId: 9, profile: 'flood-level-sensor', pollIntervalMs: 100 });
  sim.silent(true, 9);
  const gw = await startTestGateway(t, cfg);
  t.ok(gw.httpPort > 0, 'listening on a free port');

  t.same(JSON.parse((await get(gw.httpPort, '/healthz')).body), { status: 'ok' });
  const ready = await waitFor(async () => {
    const r = await get(gw.httpPort, '/readyz');
    return r.status === 200 ? r : null;
  }, 'ready once connected to the hub');
  t.same(JSON.parse(ready.body), { status: 'ready', checks: { started: true, hubConnected: true } });

  const text = await waitFor(async () => {
    const m = await get(gw.httpPort, '/metrics');
    return (sample(m.body, 'ioc_edge_device_poll_timeouts_total', { device: 'ghost' }) ?? 0) > 0 && (sample(m.body, 'ioc_edge_uplink_messages_acked_total') ?? 0) > 0 ? m : null;
  }, 'timeouts of the silent device and acknowledged messages in the metrics');
  t.match(text.type, /^text\/plain; version=0.0.4/);
  const body = text.body;
  t.ok((sample(body, 'ioc_edge_device_polls_total', { device: 'flood-1' }) ?? 0) > 0, 'polls per device');
  t.equal(sample(body, 'ioc_edge_device_up', { device: 'flood-1' }), 1);
  t.equal(sample(body, 'ioc_edge_device_up', { device: 'ghost' }), 0, 'the silent device is down');
  t.ok((sample(body, 'ioc_edge_device_poll_latency_seconds', { device: 'flood-1' }) ?? -1) >= 0);
  t.equal(sample(body, 'ioc_edge_uplink_connected'), 1);
  t.equal(sample(body, 'ioc_edge_device_polls_total', { gateway: 'gw-test-01', device: 'tsc-1' }) !== undefined, true, 'every sample carries the gateway label');
  for (const name of ['ioc_edge_outbox_readings', 'ioc_edge_outbox_bytes', 'ioc_edge_outbox_oldest_age_seconds', 'ioc_edge_uplink_drain_readings_per_second', 'ioc_edge_uplink_messages_sent_total', 'ioc_edge_outbox_dropped_readings_total', 'ioc_edge_alarms_active', 'ioc_edge_process_resident_memory_bytes']) {
    t.not(sample(body, name), undefined, name);
  }

  t.equal((await get(gw.httpPort, '/nope')).status, 404);
  t.equal((await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`, { method: 'POST' })).status, 405);

  await hub.stop();
  await waitFor(async () => (await get(gw.httpPort, '/readyz')).status === 503, 'not ready once the hub is gone');
  t.same(JSON.parse((await get(gw.httpPort, '/readyz')).body).checks, { started: true, hubConnected: false });
});
