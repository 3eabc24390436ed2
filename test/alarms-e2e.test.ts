/**
 * Threshold alarms end to end: simulated flood sensor → gateway (profile
 * alarm, hysteresis) → hub alarm state → API; and an alarm raised while the
 * uplink is cut reaching the hub ahead of the readings buffered before it.
 */
import { once } from 'node:events';
import net from 'node:net';
import t from 'tap';
import type { Test } from 'tap';
import type { GatewayEvent, Reading } from '../contract/index.js';
import { freePort } from '../scripts/sim/free-port.js';
import { gatewayConfig, startSim, startTestGateway, startTestHub } from './support/stack.js';
import { waitFor } from './support/wait.js';

async function getJson(port: number, path: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

t.test('flood level above the profile limit raises an alarm; back below limit − hysteresis clears it', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  sim.freeze();
  const level = (mm: number): void => sim.devices.get(1)!.bank.setU16('input', 0, mm);
  level(1500);
  const hub = await startTestHub(t, dir);
  const gw = await startTestGateway(t, gatewayConfig(dir, hub.mqttPort, sim.port));
  const active = async () => (await getJson(hub.httpPort, '/api/v1/alarms?state=active')).items;
  await waitFor(async () => (await getJson(hub.httpPort, '/api/v1/readings/latest?gateway=gw-test-01&device=flood-1&point=level')).items[0]?.value === 1.5, 'level 1.5 m at the hub');
  t.same(await active(), []);

  level(2100);
  const [alarm] = await waitFor(async () => {
    const a = await active();
    return a.length > 0 ? a : null;
  }, 'the alarm at the hub');
  t.match(alarm, { gateway: 'gw-test-01', device: 'flood-1', point: 'level', state: 'active', severity: 'critical', limit: 'high', threshold: 2, value: 2.1, message: /^Water level above the 2\.0 m flood limit \(level 2\.1 m is above 2 m\)$/ });
  t.same(gw.alarms.list().map((a) => a.point), ['level'], 'active at the gateway too');

  level(1970); // inside the 0.05 m hysteresis band: stays raised
  await waitFor(async () => (await getJson(hub.httpPort, '/api/v1/readings/latest?gateway=gw-test-01&device=flood-1&point=level')).items[0]?.value === 1.97, 'level 1.97 m at the hub');
  t.equal((await active()).length, 1, 'not cleared inside the hysteresis band');

  level(1900);
  await waitFor(async () => (await active()).length === 0, 'the alarm to clear');
  const [cleared] = (await getJson(hub.httpPort, '/api/v1/alarms?state=cleared')).items;
  t.match(cleared, { id: alarm.id, state: 'cleared', clearValue: 1.9, clearMessage: 'cleared: level back to 1.9 m (high limit 2 m)' });
  const types = (await getJson(hub.httpPort, '/api/v1/events?gateway=gw-test-01')).items.map((e: GatewayEvent) => e.type);
  t.same(types.filter((x: string) => x.startsWith('alarm.')), ['alarm.cleared', 'alarm.raised'], 'both in the event log');
});

/** A TCP relay to the hub whose link can be cut and restored (the hub and its listeners stay up). */
async function relay(t: Test, targetPort: number): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void> }> {
  const port = await freePort('127.0.0.1');
  const sockets = new Set<net.Socket>();
  let server: net.Server | null = null;
  const open = async (): Promise<void> => {
    server = net.createServer((inbound) => {
      const outbound = net.connect(targetPort, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          sockets.delete(s);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
  };
  const cut = async (): Promise<void> => {
    const s = server;
    server = null;
    if (!s) return;
    const closed = new Promise((r) => s.close(r));
    for (const c of sockets) c.destroy();
    await closed;
  };
  await open();
  t.teardown(cut);
  return { port, cut, restore: open };
}

t.test('an alarm raised while the hub is unreachable overtakes the readings buffered before it', async (t) => {
  const dir = t.testdir();
  const sim = await startSim(t);
  sim.freeze();
  const bank = (unit: number) => sim.devices.get(unit)!.bank;
  bank(1).setU16('input', 0, 1500);
  const hub = await startTestHub(t, dir);
  const link = await relay(t, hub.mqttPort);
  const gw = await startTestGateway(t, gatewayConfig(dir, link.port, sim.port));
  await waitFor(async () => (await getJson(hub.httpPort, '/api/v1/readings/latest?gateway=gw-test-01&device=flood-1&point=level')).items.length === 1, 'readings at the hub');

  const order: string[] = [];
  let outageStart = Infinity;
  let alarmTs = 0;
  hub.events.on('event', ({ event }) => {
    if (event.type === 'alarm.raised') order.push('alarm');
  });
  const log: string[] = [];
  hub.events.on('batch', ({ readings, seq, duplicate }) => {
    log.push(`#${seq}${duplicate ? ' dup' : ''}: ${readings.map((r) => r.ts - outageStart).join(' ')}`);
    if (readings.some((r: Reading) => r.ts > outageStart && r.ts < alarmTs)) order.push('older readings');
  });
  await link.cut();
  await waitFor(() => !gw.uplink.connected, 'the gateway to notice the outage');
  outageStart = Date.now();
  // A changing counter while the hub is away: readings pile up in the outbox.
  let n = 70_000;
  const counter = setInterval(() => bank(2).setU32('holding', 6, n++, 'big'), 20);
  t.teardown(() => clearInterval(counter));
  const appended0 = gw.outbox.stats().appended;
  await waitFor(() => gw.outbox.stats().appended >= appended0 + 10, 'a backlog sampled during the outage');
  bank(1).setU16('input', 0, 2500);
  await waitFor(() => gw.alarms.list().length === 1, 'the alarm raised at the gateway');
  alarmTs = gw.alarms.list()[0]!.since;
  await waitFor(() => gw.outbox.stats().appended >= appended0 + 20, 'more backlog after the alarm');
  clearInterval(counter);

  await link.restore();
  await waitFor(() => order.includes('alarm') && order.includes('older readings'), 'the alarm and the backlog at the hub').catch((err: Error) => {
    throw new Error(`${err.message}; seen: ${order.join(', ') || 'nothing'}; gateway connected: ${gw.uplink.connected}, outbox ${JSON.stringify(gw.outbox.stats())}; alarm at ${alarmTs - outageStart}; batches ${log.join(' | ')}`);
  });
  t.equal(order[0], 'alarm', 'the alarm arrived before any batch of readings sampled before it');
  const [alarm] = (await getJson(hub.httpPort, '/api/v1/alarms?state=active')).items;
  t.match(alarm, { device: 'flood-1', point: 'level', value: 2.5, raisedAt: alarmTs });
});
