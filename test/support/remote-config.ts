/**
 * Helpers for remote configuration tests: a hub, a Modbus simulator and a
 * gateway on loopback; pushes through the hub API; a recorder of reading
 * times per device (gaps while a configuration is applied).
 */
import type { Test } from 'tap';
import type { ConfigReported, Reading } from '../../contract/index.js';
import type { Gateway } from '../../gateway/index.js';
import type { Hub } from '../../hub/index.js';
import { silentLogger, type Logger, type LogRing } from '../../lib/index.js';
import { startGateway } from '../../gateway/index.js';
import { gatewayConfig, startSim, startTestHub } from './stack.js';
import { waitFor } from './wait.js';

/** Calls the hub API (open auth on loopback: anonymous admin unless a token is given). */
export async function hubApi(hub: Hub, method: string, url: string, body?: unknown, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}${url}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  }).catch((err: Error & { cause?: Error }) => {
    // undici says only 'fetch failed'; the cause (ECONNREFUSED, other side closed …) is what tells a failure apart.
    throw new Error(`${method} ${url} on port ${hub.httpPort}: ${err.message}: ${err.cause?.message ?? 'no cause'}`);
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A gateway configuration as an operator pushes it: without the settings local to the gateway. */
export function pushable(cfg: Record<string, unknown>): Record<string, unknown> {
  const c = structuredClone(cfg);
  delete c.dataDir;
  return c;
}

/** Hub, simulator (flood sensor unit 1, traffic controller unit 2) and a gateway polling both every 100 ms. */
export async function startRemoteStack(t: Test, dir: string, opts: { confirmWindowMs?: number; logger?: Logger; logRing?: LogRing } = {}) {
  const sim = await startSim(t);
  const hub = await startTestHub(t, dir);
  const cfg = gatewayConfig(dir, hub.mqttPort, sim.port);
  const gw = await startGateway({ config: cfg, source: '<test>', logger: opts.logger ?? silentLogger(), ...(opts.confirmWindowMs !== undefined ? { confirmWindowMs: opts.confirmWindowMs } : {}), ...(opts.logRing ? { logRing: opts.logRing } : {}) });
  t.teardown(() => gw.stop());
  await waitFor(() => gw.uplink.connected, 'gateway connected');
  await waitFor(() => gw.devices()['flood-1'] === 'up', 'flood sensor up');
  return { sim, hub, gw, cfg };
}

/** Pushes a configuration; returns the API answer. */
export function push(hub: Hub, gateway: string, body: Record<string, unknown>, token?: string) {
  return hubApi(hub, 'POST', `/api/v1/gateways/${gateway}/config`, body, token);
}

/** Waits until the gateway's report says `status` for `version`. */
export function reportOf(gw: Gateway, version: number, status: ConfigReported['status'], timeoutMs = 20_000): Promise<ConfigReported> {
  return waitFor(() => {
    const r = gw.configAgent.reported;
    return r.version === version && r.status === status ? r : null;
  }, `gateway report '${status}' for version ${version} (now: ${JSON.stringify(gw.configAgent.reported.status)} v${gw.configAgent.reported.version})`, timeoutMs);
}

/** Records the timestamps (`ts`) of readings per device (every point). */
export function recordReadings(gw: Gateway): { times: Map<string, number[]>; stop(): void } {
  const times = new Map<string, number[]>();
  const on = (rs: Reading[]): void => {
    for (const r of rs) {
      let a = times.get(r.device);
      if (!a) times.set(r.device, (a = []));
      if (a[a.length - 1] !== r.ts) a.push(r.ts);
    }
  };
  gw.bus.on('readings', on);
  return { times, stop: () => gw.bus.off('readings', on) };
}

/** Longest gap (ms) between consecutive times inside [from, to], counting the edges. */
export function longestGap(times: readonly number[], from: number, to: number): number {
  const inside = times.filter((x) => x >= from && x <= to);
  let prev = from;
  let max = 0;
  for (const x of inside) {
    max = Math.max(max, x - prev);
    prev = x;
  }
  return Math.max(max, to - prev);
}
