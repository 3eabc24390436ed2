/**
 * Helpers of the broker abuse suites (broker-abuse.test.ts, broker-abuse-mixed.test.ts):
 * a log the test can read, valid telemetry batches, a provisioned gateway, a
 * consumer account, one SUBSCRIBE with many filters, the broker's retained topics.
 */
import type { Test } from 'tap';
import { Writable } from 'node:stream';
import type { Aedes } from 'aedes';
import type { MqttClient } from 'mqtt';
import { createLogger } from '../../lib/index.js';
import type { Hub } from '../index.js';
import { connectOk, mqttUrl } from './support.js';

/** A logger whose JSON lines the test can read. */
export function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const dest = new Writable({ write(chunk, _enc, cb) { out.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
  return { logger: createLogger({ level: 'info', destination: dest }), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

let seq = 0;
/** The seq of the last {@link batch}. */
export function lastSeq(): number {
  return seq;
}

/** A valid telemetry batch (a fresh seq each call), padded with trailing spaces to about `bytes`. */
export function batch(bytes = 200): string {
  seq++;
  const json = JSON.stringify({ v: 1, epoch: 'abuse', seq, readings: [{ device: 'd', point: 'p', ts: Date.now(), value: seq, quality: 'good' }] });
  return json + ' '.repeat(Math.max(0, bytes - json.length));
}

export async function gateway(t: Test, hub: Hub, id: string, extra: Record<string, unknown> = {}): Promise<MqttClient> {
  const cred = await hub.identity.issueGatewayCredential(id);
  return connectOk(t, mqttUrl(hub), { clientId: id, username: id, password: cred.password, ...extra });
}

export async function consumerAccount(hub: Hub, name = 'ioc'): Promise<{ username: string; password: string }> {
  return hub.identity.createAccount({ username: name, kind: 'consumer' }, { actor: 'test' });
}

/** SUBSCRIBE with many filters in ONE packet; resolves with the SUBACK's return codes (mqtt.js hides them behind one error when any is 0x80). */
export function subscribeMany(client: MqttClient, filters: string[]): Promise<number[]> {
  return new Promise((resolve) => {
    const onPacket = (packet: unknown): void => {
      const p = packet as { cmd: string; granted?: number[] };
      if (p.cmd !== 'suback') return;
      client.off('packetreceive', onPacket);
      resolve(p.granted ?? []);
    };
    client.on('packetreceive', onPacket);
    client.subscribe(filters, { qos: 1 }, () => undefined);
  });
}

export async function retainedTopics(aedes: Aedes): Promise<string[]> {
  const out: string[] = [];
  for await (const p of (aedes as unknown as { persistence: any }).persistence.createRetainedStream('#') as AsyncIterable<{ topic: string }>) out.push(p.topic);
  return out;
}
