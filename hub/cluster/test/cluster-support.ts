/**
 * Helpers of the cluster tests: hub nodes on one PostgreSQL schema and one
 * Redis key prefix, and gateway-like MQTT clients.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Test } from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL } from '../../../test/support/postgres.js';
import { startHub, type Hub, type HubOptions } from '../../index.js';
import { tempDir } from '../../test/support.js';
import { REDIS_URL } from './redis-support.js';

/** Aedes heartbeat of test clusters: wills of a dead node within a few seconds. */
export const HEARTBEAT_MS = 250;

/** One hub node of the test cluster (open auth on loopback unless `extra` says otherwise). */
export async function clusterNode(t: Test, schema: string, prefix: string, extra: Partial<HubOptions> & { redis?: string; nodeId?: string } = {}): Promise<Hub> {
  const { redis, nodeId, ...rest } = extra;
  const hub = await startHub({
    dataDir: tempDir(t, 'ioc-edge-cluster-'), logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'open' },
    store: `${PG_URL}?schema=${schema}`,
    cluster: { redis: redis ?? REDIS_URL, keyPrefix: prefix, heartbeatMs: HEARTBEAT_MS, ...(nodeId ? { nodeId } : {}) },
    ...rest,
  });
  t.teardown(() => hub.stop());
  return hub;
}

/** A status payload. */
export const status = (state: 'online' | 'offline'): Buffer => Buffer.from(JSON.stringify({ v: 1, state, ts: Date.now() }));

/** A telemetry batch of `n` readings. */
export const telemetry = (seq: number, n = 5): Buffer =>
  Buffer.from(JSON.stringify({ v: 1, epoch: 'e1', seq, readings: Array.from({ length: n }, (_, i) => ({ device: 'flood-1', point: `p${i}`, ts: Date.now() - 1000 + i, value: seq * 100 + i, quality: 'good' })) }));

/** A gateway-like client: last will "offline" (retained), "online" once connected. */
export async function gatewayClient(t: Test, port: number, id: string, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: id, reconnectPeriod: 0, clean: true, keepalive: 30,
    will: { topic: `ioc/v1/gw/${id}/status`, payload: status('offline'), qos: 1, retain: true },
    ...opts,
  });
  c.on('error', () => undefined);
  t.teardown(() => c.endAsync(true).catch(() => undefined));
  await c.publishAsync(`ioc/v1/gw/${id}/status`, status('online'), { qos: 1, retain: true });
  return c;
}

/** A JSON API call. */
export async function api(hub: Hub, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${hub.httpPort}${path}`, { method, ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
  return { status: r.status, body: (await r.json().catch(() => ({}))) as Record<string, unknown> };
}

/** Whether the store of `hub` has the gateway online. */
export async function online(hub: Hub, gw: string): Promise<boolean | undefined> {
  return (await hub.store.listGateways()).find((g) => g.id === gw)?.online;
}
