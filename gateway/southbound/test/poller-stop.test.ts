/**
 * DevicePoller.stop waits for a poll that is waiting for its answer, so the
 * poll's readings are delivered before stop returns and never after: the
 * gateway closes lines and outbox only after its drivers stopped. (Found in
 * CI: a poll of a silent RTU unit ended after stop and its readings hit a
 * closed outbox — GW_ERR_OUTBOX_CLOSED as an unhandled rejection.) The
 * transport here answers when the test says so: the one thing a real line
 * cannot be made to do on cue.
 */
import t from 'tap';
import net from 'node:net';
import path from 'node:path';
import type { Reading } from '../../../contract/index.js';
import { loadProfileFile, PROFILES_DIR, type ModbusProfile } from '../../../device-profiles/index.js';
import { silentLogger } from '../../../lib/index.js';
import type { DeviceConfig } from '../../config.js';
import { DevicePoller } from '../device-poller.js';
import type { ModbusTransport } from '../drivers/modbus-transport.js';
import { ModbusTcpTransport } from '../drivers/modbus-tcp.js';

t.test('stop waits for the poll in flight, and its readings come before stop returns', async (t) => {
  const profile = (await loadProfileFile(path.join(PROFILES_DIR, 'eastron-sdm120.json'))) as ModbusProfile;
  const pending: Array<() => void> = [];
  let reads = 0;
  const transport: ModbusTransport = {
    id: 'held', start: async () => undefined, stop: async () => undefined, write: async () => undefined,
    read: (_u, _table, _a, count) => {
      reads++;
      return new Promise((resolve) => pending.push(() => resolve(new Array<number>(count).fill(0))));
    },
  };
  const delivered: Reading[][] = [];
  const poller = new DevicePoller({
    device: { id: 'meter-1', bus: 'rs485', unitId: 1, profile: 'eastron-sdm120', pollIntervalMs: 50 } as DeviceConfig,
    profile, transport, logger: silentLogger(), onReadings: (r) => delivered.push(r), onEvent: () => undefined,
  });
  await poller.start();
  while (reads === 0) await new Promise((r) => setTimeout(r, 5));
  let stopReturned = false;
  const stopping = poller.stop().then(() => { stopReturned = true; });
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(stopReturned, 'stop has not returned while the answer is outstanding');
  // A poll reads its requests one after another: answer each until the polls are done.
  while (!stopReturned) {
    for (const answer of pending.splice(0)) answer();
    await new Promise((r) => setTimeout(r, 5));
  }
  await stopping;
  t.ok(delivered.length > 0, 'the poll delivered its readings before stop returned');
  const n = delivered.length;
  await new Promise((r) => setTimeout(r, 150));
  t.equal(delivered.length, n, 'nothing is delivered after stop');
});

t.test('five silent devices on one Modbus TCP line stop at once: their queued requests are cancelled, none reaches the wire after stop, no device is reported down by the stop', async (t) => {
  // A peer that takes Modbus TCP requests and never answers (a line whose devices all went quiet), counting each request.
  let requests = 0;
  const server = net.createServer((s) => {
    s.on('data', (b: Buffer) => void (requests += Math.floor(b.length / 12)));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as net.AddressInfo).port;
  const profile = (await loadProfileFile(path.join(PROFILES_DIR, 'eastron-sdm120.json'))) as ModbusProfile;
  const transport = new ModbusTcpTransport({ config: { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port, timeoutMs: 1500, retries: 0, reconnectMinMs: 50, reconnectMaxMs: 200 }, logger: silentLogger() });
  await transport.start();
  t.teardown(() => transport.stop());
  const events: string[] = [];
  const pollers = Array.from({ length: 5 }, (_, i) => new DevicePoller({
    device: { id: `m${i + 1}`, bus: 'lan', unitId: i + 1, profile: 'eastron-sdm120', pollIntervalMs: 100 } as DeviceConfig,
    profile, transport, logger: silentLogger(), onReadings: () => undefined, onEvent: (e) => void events.push(`${e.type} ${e.device ?? ''}`),
  }));
  for (const p of pollers) await p.start();
  while (requests === 0) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(requests, 1, 'one request on the wire, the other devices queued behind it');
  const before = events.length;
  await Promise.all(pollers.map((p) => p.stop()));
  t.equal(requests, 1, 'no queued request reached the wire after stop: cancelled, not sent and waited out');
  t.same(events.slice(before), [], 'stopping reports no device down');
});
