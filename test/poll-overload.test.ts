/**
 * Gateway overload (issue 14.10): when the devices offer more readings than
 * the uplink carries, the poll pacer (gateway/southbound/poll-pacer.ts)
 * stretches the polls and reports overruns while readings keep reaching the
 * hub; at normal load nothing is stretched and no overrun is counted.
 *
 * Real parts: a Modbus TCP simulator whose registers change on every read
 * (every poll is 30 new readings), the gateway with its SQLite outbox and
 * MQTT uplink, a hub (Aedes, ingest, SQLite). The overload is made by the
 * offer, not by a mock: four devices polled every 50 ms (2,400 readings/s)
 * against an uplink allowed one batch of 5 readings in flight, which carries
 * a few hundred per second.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import type { GatewayEvent } from '../contract/index.js';
import type { Gateway } from '../gateway/index.js';
import type { Hub } from '../hub/index.js';
import type { SimDevice } from '../scripts/sim/field-devices.js';
import { ModbusTcpSimulator } from '../scripts/sim/modbus-tcp-sim.js';
import { RegisterBank } from '../scripts/sim/register-bank.js';
import { gatewayConfig, startTestGateway, startTestHub } from './support/stack.js';
import { waitFor } from './support/wait.js';

const POINTS = 30;
const UNITS = [1, 2, 3, 4];

/** A device whose 30 holding registers all change on every read, so every poll reports every point. */
class ChurnDevice implements SimDevice {
  readonly model = 'churn';
  readonly bank = new RegisterBank();
  readonly served: Record<string, number> = {};
  private n = 0;
  constructor() {
    this.onRead();
  }
  tick(): void {}
  onRead(): void {
    this.n = (this.n + 1) & 0x7fff;
    for (let i = 0; i < POINTS; i++) this.bank.setU16('holding', i, this.n + i);
  }
}

interface Stack {
  hub: Hub;
  gw: Gateway;
  committed: () => number;
  /** Overrun events the gateway emitted (bus), by device. */
  overrunEvents: Map<string, GatewayEvent[]>;
  /** Overrun events the hub committed. */
  hubOverrunEvents: GatewayEvent[];
}

async function stack(t: Test, pollIntervalMs: number, uplink: Record<string, unknown>): Promise<Stack> {
  const dir = t.testdir();
  const profiles = path.join(dir, 'profiles');
  mkdirSync(profiles);
  writeFileSync(path.join(profiles, 'churn.json'), JSON.stringify({
    model: 'churn', manufacturer: 'test', protocol: 'modbus', pollIntervalMs: 1000,
    points: Array.from({ length: POINTS }, (_, i) => ({ name: `p${i}`, table: 'holding', address: i, type: 'uint16' })),
  }));
  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>(UNITS.map((u) => [u, new ChurnDevice()])), { tickMs: 1000 });
  await sim.start();
  t.teardown(() => sim.stop());
  const hub = await startTestHub(t, dir);
  let committed = 0;
  const hubOverrunEvents: GatewayEvent[] = [];
  hub.events.on('batch', ({ readings, duplicate }: { readings: unknown[]; duplicate: boolean }) => {
    if (!duplicate) committed += readings.length;
  });
  hub.events.on('event', ({ event }: { event: GatewayEvent }) => {
    if (event.code === 'GW_ERR_POLL_OVERRUN') hubOverrunEvents.push(event);
  });
  const config = gatewayConfig(dir, hub.mqttPort, sim.port, {
    profileDirs: [profiles],
    devices: UNITS.map((u) => ({ id: `churn-${u}`, bus: 'lan', unitId: u, profile: 'churn', pollIntervalMs })),
    uplink: { statusIntervalS: 5, ...uplink },
  });
  const gw = await startTestGateway(t, config);
  const overrunEvents = new Map<string, GatewayEvent[]>();
  gw.bus.on('event', (ev: GatewayEvent) => {
    if (ev.code !== 'GW_ERR_POLL_OVERRUN') return;
    overrunEvents.set(ev.device ?? '', [...(overrunEvents.get(ev.device ?? '') ?? []), ev]);
  });
  return { hub, gw, committed: () => committed, overrunEvents, hubOverrunEvents };
}

const totalOverruns = (gw: Gateway): number => Object.values(gw.pollStats()).reduce((n, s) => n + s.overruns, 0);
const metric = async (gw: Gateway, name: string): Promise<number> => {
  const line = (await gw.metrics.text()).split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return Number(line?.split(' ').at(-1));
};

t.test('overloaded: polls are stretched and reported as overruns, readings keep reaching the hub', async (t) => {
  const s = await stack(t, 50, { batchSize: 5, window: 1 });
  const { gw } = s;
  await waitFor(() => gw.pacer.stats().stretch >= 2, 'the pacer to stretch the polls at least 2x', 40_000);
  t.pass(`polls stretched x${gw.pacer.stats().stretch.toFixed(1)} with ${gw.pacer.stats().backlog} readings waiting`);

  // Every device reports its overruns: one event each, naming its interval, when the next poll is and why
  // (the first overrun of a device may be a poll that took longer than 50 ms, before the pacer stretched anything).
  await waitFor(() => UNITS.every((u) => (s.overrunEvents.get(`churn-${u}`)?.length ?? 0) > 0), 'an overrun event from every device', 20_000);
  const firstAt = Date.now();
  for (const u of UNITS) {
    const [ev] = s.overrunEvents.get(`churn-${u}`)!;
    t.match(ev, { type: 'driver.fault', severity: 'warning', device: `churn-${u}`, code: 'GW_ERR_POLL_OVERRUN', data: { intervalMs: 50, stretchedMs: Number, overruns: Number } });
    t.match(ev!.message, /^device churn-\d \(unit \d on bus lan\): polls every 50 ms overran \d+ times? since the last report; next poll in \d+ ms; (the gateway is overloaded \(\d+ readings waiting for the hub, event loop \d+ % busy\): polls stretched ×[\d.]+ so the uplink keeps its share|a poll took \d+ ms|a poll started \d+ ms late \(the gateway's event loop was behind\))\. Lengthen pollIntervalMs or spread the devices over more gateways \(GW_ERR_POLL_OVERRUN\)$/);
    t.notMatch(ev!.message, /undefined|NaN|\[object Object\]/);
  }
  // The pollers themselves are stretched: their next poll is scheduled later than their interval.
  const stretched = await waitFor(() => {
    const stats = gw.pollStats();
    return UNITS.every((u) => (stats[`churn-${u}`]!.spacingMs ?? 0) >= 100) ? stats : null;
  }, 'every poller spaced at least 2x its 50 ms interval', 20_000);
  for (const u of UNITS) t.ok(stretched[`churn-${u}`]!.overruns > 0, `churn-${u}: overruns counted, polls spaced ${stretched[`churn-${u}`]!.spacingMs} ms`);

  // Readings keep reaching the hub while the polls are stretched.
  const before = s.committed();
  await waitFor(() => s.committed() >= before + 1000, '1,000 more readings committed at the hub while overloaded', 40_000);
  t.ok(gw.pacer.stats().maxStretch >= 2, 'still paced');

  // Overruns go on being counted, but each device has said so once (at most one event per device per minute).
  const counted = totalOverruns(gw);
  await waitFor(() => totalOverruns(gw) >= counted + 20, 'more overruns counted', 20_000);
  if (Date.now() - firstAt < 55_000) {
    for (const u of UNITS) t.equal(s.overrunEvents.get(`churn-${u}`)!.length, 1, `churn-${u}: one overrun event within the minute`);
  }
  t.ok(totalOverruns(gw) > UNITS.length, `${totalOverruns(gw)} overruns counted`);
  t.ok((await metric(gw, 'ioc_edge_poll_overruns_total')) > 0, 'ioc_edge_poll_overruns_total counts them');
  t.ok((await metric(gw, 'ioc_edge_poll_stretch_ratio')) >= 1, 'ioc_edge_poll_stretch_ratio is exposed');
  await waitFor(() => s.hubOverrunEvents.length >= UNITS.length, 'the overrun events at the hub', 20_000);
  t.same(new Set(s.hubOverrunEvents.map((e) => e.device)), new Set(UNITS.map((u) => `churn-${u}`)), 'the hub has the overrun event of every device');
});

t.test('normal load: nothing stretched, zero overruns', async (t) => {
  const s = await stack(t, 1000, {});
  const { gw } = s;
  // Five polls of every device committed at the hub.
  await waitFor(() => s.committed() >= 5 * UNITS.length * POINTS && Object.values(gw.pollStats()).every((p) => p.polls >= 5), 'five polls of every device at the hub', 40_000);
  t.equal(totalOverruns(gw), 0, 'no overrun');
  t.equal(gw.pacer.stats().maxStretch, 1, 'never stretched');
  t.equal(s.overrunEvents.size, 0, 'no overrun event');
  t.equal(await metric(gw, 'ioc_edge_poll_overruns_total'), 0, 'ioc_edge_poll_overruns_total is 0');
});
