/**
 * Shared parts of the Sparkplug edge node tests: brokers (in-process Aedes,
 * a private Mosquitto), the gateway configuration, the test host application
 * and a logger whose lines the tests read.
 */
import { once } from 'node:events';
import net from 'node:net';
import { Writable } from 'node:stream';
import { Aedes } from 'aedes';
import type { Test } from 'tap';
import { createLogger } from '../../../lib/index.js';
import { mosquittoMissing, startMosquitto } from '../../../test/support/mosquitto.js';
import { SparkplugHost } from '../../../test/support/sparkplug-host.js';
import { gatewayConfig } from '../../../test/support/stack.js';

export const GROUP = 'city-centre';
export const NODE = 'gw-test-01';

/** An in-process Aedes on a free loopback port; its port. */
export async function startAedes(t: Test): Promise<number> {
  const aedes = await Aedes.createBroker();
  const server = net.createServer(aedes.handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => {
    server.close();
    aedes.close(() => resolve());
  }));
  return (server.address() as net.AddressInfo).port;
}

export const BROKERS: Array<{ name: string; start: (t: Test) => Promise<number>; skip: false | string }> = [
  { name: 'Aedes', start: startAedes, skip: false },
  { name: 'Mosquitto', start: async (t) => (await startMosquitto(t)).port, skip: mosquittoMissing() },
];

/** A logger whose JSON lines are kept. */
export function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ destination, level: 'info' }), lines };
}

export function spConfig(dir: string, port: number, simPort: number, northbound: Record<string, unknown> = {}): Record<string, unknown> {
  return gatewayConfig(dir, port, simPort, {
    northbound: { type: 'sparkplug', url: `mqtt://127.0.0.1:${port}`, groupId: GROUP, reconnectMinMs: 100, reconnectMaxMs: 500, batchSize: 200, ...northbound },
  });
}

export async function startHost(t: Test, port: number, id = 'scada'): Promise<SparkplugHost> {
  const host = new SparkplugHost(`mqtt://127.0.0.1:${port}`, id);
  await host.online();
  t.teardown(() => host.close());
  return host;
}

