/**
 * `ioc-edge gateway status` (issue 16.4): a real gateway with two hub
 * addresses, the first dead, and its HTTP endpoint on; the command shows the
 * hub in use and what it resolved to, the configured list, failovers; after
 * the hub goes away it says so and exits 1; usage errors are clear.
 */
import t from 'tap';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { freePort } from '../../../scripts/sim/free-port.js';
import { runCli } from '../../../test/support/cli.js';
import { gatewayConfig, startSim, startTestGateway, startTestHub } from '../../../test/support/stack.js';
import { waitFor } from '../../../test/support/wait.js';
import { formatHubLinkStatus, hubLinkStatus, parseMetrics } from '../gateway-status.js';

t.test('shows the hub address in use of several, and the loss of it', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  const hub = await startTestHub(t, dir);
  const dead = `mqtt://127.0.0.1:${await freePort()}`;
  const live = `mqtt://localhost:${hub.mqttPort}`;
  const cfg = gatewayConfig(dir, hub.mqttPort, sim.port, { http: { host: '127.0.0.1', port: 0 } });
  (cfg.hub as Record<string, unknown>).url = [dead, live];
  const gw = await startTestGateway(t, cfg);
  await waitFor(() => gw.uplink.connected, 'connected');
  const url = `http://127.0.0.1:${gw.httpPort}`;

  const r = await runCli(['gateway', 'status', '--url', url]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, `gateway gw-test-01: connected to hub ${live} (127.0.0.1)`);
  t.match(r.out, `hub addresses: ${dead}, ${live} (in use)`);
  const json = await runCli(['gateway', 'status', '--url', url, '--json']);
  t.match(JSON.parse(json.out), { gateway: 'gw-test-01', connected: true, hub: live, address: '127.0.0.1', hubs: [dead, live] });

  const file = path.join(dir, 'gw.json');
  writeFileSync(file, JSON.stringify({ ...cfg, http: { host: '127.0.0.1', port: gw.httpPort } }));
  t.equal((await runCli(['gateway', 'status', '--config', file])).code, 0, '--config finds the endpoint');

  await hub.stop();
  await waitFor(() => !gw.uplink.connected, 'offline');
  const down = await runCli(['gateway', 'status', '--url', url]);
  t.equal(down.code, 1, 'exit 1 while not connected');
  t.match(down.out, 'NOT connected to any hub; buffering in the outbox');
});

t.test('usage errors and an endpoint that does not answer', async (t) => {
  const dir = t.testdir();
  t.match(await runCli(['gateway', 'status']), { code: 2, err: /give exactly one of --config and --url/ });
  const file = path.join(dir, 'gw.json');
  writeFileSync(file, JSON.stringify({ gatewayId: 'gw-x', dataDir: dir, hub: { url: 'mqtt://127.0.0.1:1' }, buses: [], devices: [] }));
  t.match(await runCli(['gateway', 'status', '--config', file]), { code: 2, err: /HTTP endpoint is off in .*gw\.json: add "http"/ });
  const port = await freePort();
  t.match(await runCli(['gateway', 'status', '--url', `http://127.0.0.1:${port}`]), { code: 1, err: new RegExp(`cannot read the gateway's status at http://127\\.0\\.0\\.1:${port}/metrics \\(ECONNREFUSED\\)`) });
});

t.test('parsing: labels with escapes, missing series', async (t) => {
  const s = hubLinkStatus(parseMetrics([
    '# HELP ioc_edge_uplink_hub x',
    'ioc_edge_uplink_hub{hub="mqtt://a:1",address="",gateway="g\\"1"} 0',
    'ioc_edge_uplink_hub{hub="mqtt://b:2",address="10.0.0.2",gateway="g\\"1"} 1',
    'ioc_edge_uplink_connected{gateway="g\\"1"} 1',
    'garbage line',
  ].join('\n')));
  t.match(s, { connected: true, hub: 'mqtt://b:2', address: '10.0.0.2', hubs: ['mqtt://a:1', 'mqtt://b:2'], failovers: 0 });
  t.match(formatHubLinkStatus(hubLinkStatus([])), 'gateway (unknown): NOT connected');
});
