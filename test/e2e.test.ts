/**
 * End to end over real sockets on loopback: Modbus TCP simulator → gateway
 * (driver, decoding, outbox, uplink) → Aedes hub (ingest, SQLite) → HTTP API.
 */
import t from 'tap';
import { loadProfileDir, PROFILES_DIR } from '../device-profiles/index.js';
import { gatewayConfig, startSim, startTestGateway, startTestHub } from './support/stack.js';
import { waitFor } from './support/wait.js';

interface ApiReading {
  gateway: string;
  device: string;
  point: string;
  ts: number;
  value: number | boolean | string | null;
  quality: string;
}

async function getJson<T>(port: number, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

t.test('decoded values at the hub equal what the simulated devices served', async (t) => {
  const dir = t.testdir();
  const profiles = await loadProfileDir(PROFILES_DIR);
  const sim = await startSim(t);
  const hub = await startTestHub(t, dir);
  await startTestGateway(t, gatewayConfig(dir, hub.mqttPort, sim.port));

  const expectedPoints = ['flood-level-sensor', 'traffic-signal-controller'].reduce((n, m) => n + profiles.get(m)!.points.length, 0);
  await waitFor(async () => (await getJson<{ items: ApiReading[] }>(hub.httpPort, '/api/v1/readings/latest?gateway=gw-test-01')).items.length === expectedPoints, 'every point at the hub');

  // Let values move for a while (the traffic controller's uint32 counter crosses 2^16 after ~1.5 s).
  await waitFor(async () => {
    const items = (await getJson<{ items: ApiReading[] }>(hub.httpPort, '/api/v1/readings/latest?gateway=gw-test-01&device=tsc-1&point=detector_count')).items;
    return (items[0]?.value as number) > 65_540;
  }, 'detector_count past 2^16 at the hub');
  sim.freeze();
  const served: Record<string, Record<string, unknown>> = { 'flood-1': { ...sim.devices.get(1)!.served }, 'tsc-1': { ...sim.devices.get(2)!.served } };
  const tolerance = (device: string, point: string): number => {
    const model = device === 'flood-1' ? 'flood-level-sensor' : 'traffic-signal-controller';
    return Math.max(1e-9, profiles.get(model)!.points.find((p) => p.name === point)!.deadband ?? 0);
  };
  const mismatches = (items: ApiReading[]): string[] =>
    items.flatMap((r) => {
      const want = served[r.device]![r.point];
      const ok = typeof want === 'number' && typeof r.value === 'number' ? Math.abs(want - r.value) <= tolerance(r.device, r.point) + 1e-9 : want === r.value;
      return ok && r.quality === 'good' ? [] : [`${r.device}.${r.point}: hub ${String(r.value)} (${r.quality}) vs served ${String(want)}`];
    });
  let last: string[] = [];
  await waitFor(async () => {
    last = mismatches((await getJson<{ items: ApiReading[] }>(hub.httpPort, '/api/v1/readings/latest?gateway=gw-test-01')).items);
    return last.length === 0;
  }, 'hub values to settle on the served values').catch((err: Error) => {
    throw new Error(`${err.message}\n${last.join('\n')}`);
  });
  t.same(last, [], 'every point decoded as served (within its deadband)');

  // Spot checks that exercise the awkward encodings end to end.
  const latest = (await getJson<{ items: ApiReading[] }>(hub.httpPort, '/api/v1/readings/latest?gateway=gw-test-01&device=tsc-1')).items;
  const byPoint = Object.fromEntries(latest.map((r) => [r.point, r.value]));
  t.equal(byPoint.fw_version, 'TSC-2.41', 'string over 4 registers');
  t.equal(byPoint.red_lamp_ok, true, 'bit inside an input register');
  t.ok((byPoint.detector_count as number) > 65535, 'uint32 above 2^16, big word order');
  t.equal(latest.every((r) => r.device === 'tsc-1'), true, 'device filter applies');

  const gws = await getJson<{ items: Array<{ id: string; online: boolean; lastSeen: number }> }>(hub.httpPort, '/api/v1/gateways');
  t.match(gws.items, [{ id: 'gw-test-01', online: true }], 'gateway listed as online');

  const hist = await getJson<{ items: ApiReading[] }>(hub.httpPort, `/api/v1/readings?gateway=gw-test-01&device=flood-1&point=sample_count&from=0&to=${Date.now() + 1000}`);
  t.ok(hist.items.length >= 2, 'history holds several readings of a changing point');
  t.ok(hist.items.every((r, i) => i === 0 || r.ts >= hist.items[i - 1]!.ts), 'history is ordered by time');
  const counts = hist.items.map((r) => r.value as number);
  t.ok(counts.every((v, i) => i === 0 || v > counts[i - 1]!), 'uint32 little-endian counter only increases');
});

t.test('API rejects bad queries with a clear error', async (t) => {
  const dir = t.testdir();
  const hub = await startTestHub(t, dir);
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/readings?gateway=gw&device=d`);
  t.equal(res.status, 400);
  const body = (await res.json()) as { error: { code: string; message: string } };
  t.equal(body.error.code, 'HUB_ERR_BAD_REQUEST');
  t.match(body.error.message, /point/, 'names the missing parameter');
  const bad = await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/readings?gateway=gw&device=d&point=p&from=10&to=5`);
  t.equal(bad.status, 400);
  const notFound = await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/nope`);
  t.equal(notFound.status, 404);
  t.equal(((await notFound.json()) as { error: { code: string } }).error.code, 'HUB_ERR_NOT_FOUND');
  t.equal((await fetch(`http://127.0.0.1:${hub.httpPort}/readyz`)).status, 200);
});
