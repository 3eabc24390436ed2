/**
 * Firmware end-to-end parts: a hub, a gateway with an FC 21 Modbus device
 * (own MBAP simulator) and an XMODEM bootloader device (serialport's mock
 * binding), a signing key the gateway trusts, and helpers to upload, sign
 * and roll out. Everything on loopback, torn down by `t.teardown`.
 */
import path from 'node:path';
import type { Test } from 'tap';
import { startGateway, type Gateway } from '../../gateway/index.js';
import { startHub, type Hub } from '../../hub/index.js';
import { buildManifest, generateSigningKey, parsePrivateKey, signManifest, type GeneratedKey } from '../../firmware-bridge/index.js';
import type { SignedManifest } from '../../contract/index.js';
import { silentLogger, type Logger } from '../../lib/index.js';
import { ModbusFileDeviceSim, type ModbusFileDeviceOptions } from '../../scripts/sim/modbus-file-device.js';
import { MockSerialHub } from '../../scripts/sim/serial-adapters.js';
import { XmodemBootloaderSim, type XmodemBootloaderOptions } from '../../scripts/sim/xmodem-bootloader.js';

export const PROFILE_DIR = path.resolve(import.meta.dirname, '../../scripts/sim/firmware-profiles');
export const GW = 'gw-fw-01';

/** The running parts. */
export interface FwStack {
  dir: string;
  hub: Hub;
  gw: Gateway;
  fc21: ModbusFileDeviceSim;
  xm: XmodemBootloaderSim;
  serial: MockSerialHub;
  key: GeneratedKey;
  /** Starts the gateway again on the same data folder (after `gw.stop()`). */
  restartGateway(): Promise<Gateway>;
  config: Record<string, unknown>;
}

let ports = 0;

/** Starts hub, simulators and gateway; waits until the hub's registry knows both devices. */
export async function startFwStack(t: Test, o: { dir: string; fc21?: ModbusFileDeviceOptions; xm?: XmodemBootloaderOptions; firmware?: Record<string, unknown>; hubReofferMs?: number; logger?: Logger; trust?: boolean } = { dir: '' }): Promise<FwStack> {
  const logger = o.logger ?? silentLogger();
  const key = generateSigningKey();
  const hub = await startHub({ dataDir: path.join(o.dir, 'hub'), logger, mqttPort: 0, httpPort: 0, firmware: { reofferMs: o.hubReofferMs ?? 60_000 } });
  t.teardown(() => hub.stop());
  const fc21 = new ModbusFileDeviceSim(o.fc21);
  await fc21.start();
  t.teardown(() => fc21.stop());
  const serial = new MockSerialHub();
  const xm = new XmodemBootloaderSim({ handshakeIntervalMs: 100, ...o.xm });
  t.teardown(() => xm.stop());
  const ttyPath = `/dev/ttyFWE${ports++}`;
  serial.connect(ttyPath, xm);
  const config = {
    gatewayId: GW,
    dataDir: path.join(o.dir, 'gw'),
    profileDirs: [PROFILE_DIR],
    hub: { url: `mqtt://127.0.0.1:${hub.mqttPort}`, reconnectMinMs: 100, reconnectMaxMs: 300 },
    buses: [
      { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: fc21.port, timeoutMs: 500, reconnectMinMs: 100, reconnectMaxMs: 300 },
      { id: 'com1', type: 'serial-line', path: ttyPath, baudRate: 115200, reconnectMinMs: 100, reconnectMaxMs: 300 },
    ],
    devices: [
      { id: 'fc21-1', bus: 'lan', unitId: 1, profile: 'sim-fc21-device', pollIntervalMs: 200 },
      { id: 'xm-1', bus: 'com1', profile: 'sim-xmodem-sensor', pollIntervalMs: 200 },
    ],
    outbox: { flushIntervalMs: 20 },
    uplink: { statusIntervalS: 1 },
    firmware: { trustedKeys: o.trust === false ? [] : [key.publicKey], chunkTimeoutMs: 500, ...o.firmware },
  };
  const start = async (): Promise<Gateway> => {
    const gw = await startGateway({ config, source: '<test>', logger, serialPortFactory: serial.factory });
    t.teardown(() => gw.stop());
    return gw;
  };
  const gw = await start();
  const deadline = Date.now() + 15_000;
  while ((await hub.registry.listDevices({ gateway: GW })).length < 2) {
    if (Date.now() > deadline) throw new Error('the hub registry never listed the gateway devices');
    await new Promise((r) => setTimeout(r, 20));
  }
  return { dir: o.dir, hub, gw, fc21, xm, serial, key, config, restartGateway: start };
}

/** Signs a manifest for `image` with `key` (or another key). */
export function sign(key: GeneratedKey, image: Buffer, model: string, version: string, chunkSize = 4096): SignedManifest {
  const { key: priv, keyId } = parsePrivateKey(key.privateKeyPem);
  return signManifest(buildManifest(image, { model, version, chunkSize }), priv, keyId);
}

/** Calls the hub API (open hub: no token). */
export async function hubApi<T = Record<string, unknown>>(hub: Hub, method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
  const raw = Buffer.isBuffer(body);
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}${url}`, {
    method, ...(body !== undefined ? { body: raw ? body : JSON.stringify(body), headers: { 'content-type': raw ? 'application/octet-stream' : 'application/json' } } : {}),
  }).catch((err: Error & { cause?: Error }) => {
    // undici says only 'fetch failed'; the cause (ECONNREFUSED, other side closed …) is what tells a failure apart.
    throw new Error(`${method} ${url} on port ${hub.httpPort}: ${err.message}: ${err.cause?.message ?? 'no cause'}`);
  });
  return { status: res.status, body: (await res.json()) as T };
}

/** Uploads image and manifest, creates a rollout; returns the rollout id. */
export async function rollOut(hub: Hub, image: Buffer, signed: SignedManifest, body: Record<string, unknown> = {}): Promise<string> {
  const up = await hubApi(hub, 'PUT', '/api/v1/firmware/images', image);
  if (up.status !== 201) throw new Error(`upload: ${JSON.stringify(up.body)}`);
  const m = await hubApi<{ id: string }>(hub, 'POST', '/api/v1/firmware/manifests', signed);
  if (m.status !== 201) throw new Error(`manifest: ${JSON.stringify(m.body)}`);
  const r = await hubApi<{ id: string }>(hub, 'POST', '/api/v1/firmware/rollouts', { manifest: m.body.id, target: { profile: signed.manifest.model }, ...body });
  if (r.status !== 201) throw new Error(`rollout: ${JSON.stringify(r.body)}`);
  return r.body.id;
}

/** The rollout's view and jobs from the API. */
export async function rolloutState(hub: Hub, id: string): Promise<{ state: string; reason: string | null; progress: Record<string, number>; jobs: Array<{ device: string; status: string; state: string; result: number; version: string | null; error: { code: string } | null }> }> {
  return (await hubApi(hub, 'GET', `/api/v1/firmware/rollouts/${id}`)).body as never;
}
