/**
 * Sparkplug edge node across outages, on Aedes and on a private Mosquitto:
 * the primary host goes offline and comes back (readings kept in the outbox,
 * then sent as historical, complete and oldest first. SIGKILL: sparkplug-kill.test.ts.
 */
import { once } from 'node:events';
import net from 'node:net';
import { Aedes, type AuthorizePublishHandler } from 'aedes';
import t from 'tap';
import type { Reading } from '../../../contract/index.js';
import { startSim, startTestGateway } from '../../../test/support/stack.js';
import { waitFor } from '../../../test/support/wait.js';
import { BROKERS, capturingLogger, GROUP, NODE, spConfig, startHost } from './sparkplug-fixture.js';

for (const broker of BROKERS) {
  t.test(`${broker.name}: primary host offline and back: readings kept, sent as historical, complete and in order`, { skip: broker.skip }, async (t) => {
    const port = await broker.start(t);
    const sim = await startSim(t);
    const host = await startHost(t, port, 'scada-primary');
    const { logger, lines } = capturingLogger();
    const gw = await startTestGateway(t, spConfig(t.testdir(), port, sim.port, { primaryHostId: 'scada-primary' }), logger);
    const node = host.node(GROUP, NODE);
    await host.until(() => node.births === 1 && node.devices.get('flood-1')?.live.length, 'birth and data while the host is online');
    // A STATE that is not the 3.0 JSON (a 2.2-style "OFFLINE" string): logged and ignored, the session stays.
    await host.raw('spBv1.0/STATE/scada-primary', 'OFFLINE');
    await waitFor(() => lines.some((l) => l.code === 'GW_ERR_SPARKPLUG_PAYLOAD' && /STATE message is not/.test(String(l.msg))), 'bad STATE logged');
    t.equal(gw.sparkplug!.stats().born, true, 'a malformed STATE does not end the session');
    const recorded: Reading[] = [];
    gw.bus.on('readings', (rs: Reading[]) => recorded.push(...rs.filter((r) => r.device === 'flood-1' && r.point === 'sample_count')));
    await host.offline();
    await waitFor(() => !gw.sparkplug!.stats().born, 'the node ends its session when the host goes offline');
    t.ok(lines.some((l) => l.code === 'GW_ERR_SPARKPLUG_OFFLINE' && /primary host offline/.test(String(l.msg))), 'the session end is logged with GW_ERR_SPARKPLUG_OFFLINE');
    const offlineAt = Date.now();
    const offlineFrom = recorded.length;
    // Readings pile up in the outbox, nothing is published.
    await waitFor(() => recorded.length >= offlineFrom + 10 && gw.outbox.stats().rows > 10, 'readings waiting in the outbox');
    t.equal(gw.sparkplug!.stats().born, false, 'no birth while the primary host is offline');
    await host.online();
    await host.until(() => node.births === 2, 'birth again when the host is back');
    t.ok(node.bdSeq! >= 1, 'a new CONNECT with the next bdSeq');
    const flood = node.devices.get('flood-1')!;
    const missed = recorded.filter((r) => r.ts >= offlineAt - 200);
    await host.until(() => missed.every((r) => flood.historical.some((m) => m.metric === 'sample_count' && m.timestamp === r.ts && m.value === r.value)
      || flood.live.some((m) => m.metric === 'sample_count' && m.timestamp === r.ts && m.value === r.value)), 'every reading of the outage delivered');
    const hist = flood.historical.filter((m) => m.metric === 'sample_count');
    t.ok(hist.length >= 10, `backlog sent as historical (${hist.length} sample_count values)`);
    t.ok(hist.every((m, i) => i === 0 || m.timestamp! >= hist[i - 1]!.timestamp!), 'historical values oldest first');
    await waitFor(() => gw.outbox.stats().rows < 50, 'outbox drained after the fences are acknowledged');
    t.same(host.violations, [], 'no conformance statement broken');
  });
}

t.test('fences unacknowledged when the session ends are sent again after the next birth (Aedes holding PUBACKs)', async (t) => {
  // The fence's PUBACK is held while `hold` is set: the host goes offline with batches in flight.
  let hold = false;
  const held: Array<() => void> = [];
  const authorizePublish: AuthorizePublishHandler = (_client, packet, cb) => {
    if (hold && packet.topic.endsWith('/fence')) held.push(() => cb(null));
    else cb(null);
  };
  const aedes = await Aedes.createBroker({ authorizePublish });
  const server = net.createServer(aedes.handle).listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => {
    server.close();
    aedes.close(() => resolve());
  }));
  const port = (server.address() as net.AddressInfo).port;
  const sim = await startSim(t);
  const host = await startHost(t, port, 'scada-primary');
  const gw = await startTestGateway(t, spConfig(t.testdir(), port, sim.port, { primaryHostId: 'scada-primary', window: 2, batchSize: 20 }));
  const node = host.node(GROUP, NODE);
  await host.until(() => node.births === 1 && node.devices.get('flood-1')?.live.length, 'birth and data');
  hold = true;
  await waitFor(() => gw.sparkplug!.stats().inFlight === 2, 'two batches waiting for their fence');
  await host.offline();
  await waitFor(() => !gw.sparkplug!.stats().born, 'session ended');
  hold = false;
  for (const release of held.splice(0)) release();
  await host.online();
  await host.until(() => node.births === 2, 'birth when the host is back');
  const flood = node.devices.get('flood-1')!;
  const live = flood.live.length;
  await host.until(() => flood.live.length > live + 20, 'data flows after the new birth (the window is not held by the old session)');
  await waitFor(() => gw.outbox.stats().rows < 100, 'backlog drained');
  t.same(host.violations, [], 'no conformance statement broken');
});
