/**
 * bench:firmware — two firmware numbers (issue 7):
 *
 * 1. XMODEM-1K flashing at 115200 baud against the line's physical limit.
 *    The simulated bootloader gives every byte its wire time (10 bits per
 *    byte: start, 8 data, stop) in both directions, since neither the mock
 *    binding nor a pty enforces a baud rate. The limit of a stop-and-wait
 *    transfer is the time of every frame (1029 bytes for STX blocks, 133 for
 *    SOH) plus its one-byte ACK; `efficiency` = limit / measured.
 * 2. A 1 MiB image from the hub (its own process) to a gateway over MQTT on
 *    loopback: from the rollout's creation to the gateway's `downloaded`
 *    state (every chunk stored in SQLite and the SHA-256 checked).
 *    `MB/s` = 10^6 bytes per second.
 *
 *   npm run bench:firmware -- [--size BYTES] [--xmodem-size BYTES] [--chunk BYTES] [--window N]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startGateway } from '../../gateway/index.js';
import { buildManifest, generateSigningKey, parsePrivateKey, planBlocks, signManifest, xmodemSend } from '../../firmware-bridge/index.js';
import type { GatewayEvent } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import { ModbusFileDeviceSim } from '../sim/modbus-file-device.js';
import { MockSerialHub } from '../sim/serial-adapters.js';
import { buildSimImage } from '../sim/sim-firmware.js';
import { XmodemBootloaderSim } from '../sim/xmodem-bootloader.js';
import { spawnTs, stopChild } from './spawn.js';

const { values } = parseArgs({ options: { size: { type: 'string', default: '1048576' }, 'xmodem-size': { type: 'string', default: '131072' }, chunk: { type: 'string', default: '16384' }, window: { type: 'string', default: '16' } } });
const SIZE = Number(values.size);
const XSIZE = Number(values['xmodem-size']);
const BAUD = 115_200;

// 1. XMODEM-1K at 115200 baud.
{
  const serial = new MockSerialHub();
  const sim = new XmodemBootloaderSim({ startInBootloader: true, baudRate: BAUD, handshakeIntervalMs: 1000 });
  serial.connect('/dev/ttyBENCH', sim);
  const link = await serial.factory({ path: '/dev/ttyBENCH', baudRate: BAUD, parity: 'none', dataBits: 8, stopBits: 1 });
  const image = buildSimImage('9.9.9', XSIZE);
  const r = await xmodemSend(link, image, { mode: 'xmodem-1k' });
  await link.close();
  sim.stop();
  if (!sim.image?.equals(image)) throw new Error('the bootloader did not store the image');
  const blocks = planBlocks(image.length, true);
  // Every frame and its ACK, then EOT, NAK, EOT, ACK (the receiver NAKs the first EOT).
  const lineBytes = blocks.reduce((n, b) => n + (b === 1024 ? 1029 : 133) + 1, 0) + 4;
  const limitS = (lineBytes * 10) / BAUD;
  const measuredS = r.transferMs / 1000;
  console.log(`xmodem-1k: ${image.length} bytes in ${blocks.length} blocks (${r.blocks1k} of 1024 bytes), ${r.retransmits} retransmits`);
  console.log(`xmodem-1k: measured ${measuredS.toFixed(2)} s (first block sent to EOT acknowledged), physical limit ${limitS.toFixed(2)} s at ${BAUD} baud (${lineBytes} bytes of frames, ACKs and the EOT exchange at 10 bits/byte)`);
  console.log(`xmodem-1k: payload ${(image.length / measuredS / 1000).toFixed(2)} kB/s of a raw line rate of ${(BAUD / 10 / 1000).toFixed(2)} kB/s`);
  console.log(`BENCH xmodem-1k-efficiency ${(limitS / measuredS).toFixed(3)} ratio`);
}

// 2. 1 MiB hub → gateway over MQTT.
const dir = await mkdtemp(path.join(tmpdir(), 'ioc-bench-fw-'));
const hub = await spawnTs<{ mqttPort: number; httpPort: number }>('scripts/bench/hub-process.ts', [path.join(dir, 'hub')]);
const api = async <T>(method: string, url: string, body?: unknown): Promise<T> => {
  const raw = Buffer.isBuffer(body);
  const res = await fetch(`http://127.0.0.1:${hub.info.httpPort}${url}`, { method, ...(body !== undefined ? { body: raw ? body : JSON.stringify(body), headers: { 'content-type': raw ? 'application/octet-stream' : 'application/json' } } : {}) });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
};
const device = new ModbusFileDeviceSim();
await device.start();
const key = generateSigningKey();
const gw = await startGateway({
  source: '<bench>', logger: silentLogger(),
  config: {
    gatewayId: 'gw-bench-fw', dataDir: path.join(dir, 'gw'), profileDirs: [path.resolve(import.meta.dirname, '../sim/firmware-profiles')],
    hub: { url: `mqtt://127.0.0.1:${hub.info.mqttPort}` },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: device.port, timeoutMs: 1000 }],
    devices: [{ id: 'fc21-1', bus: 'lan', unitId: 1, profile: 'sim-fc21-device', pollIntervalMs: 1000 }],
    uplink: { statusIntervalS: 1 },
    firmware: { trustedKeys: [key.publicKey], window: Number(values.window) },
  },
});
try {
  for (let i = 0; i < 500; i++) {
    const devices = await api<{ items: unknown[] }>('GET', '/api/v1/devices?gateway=gw-bench-fw');
    if (devices.items.length > 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const image = buildSimImage('9.9.9', SIZE);
  const { key: priv, keyId } = parsePrivateKey(key.privateKeyPem);
  const signed = signManifest(buildManifest(image, { model: 'sim-fc21-device', version: '9.9.9', chunkSize: Number(values.chunk) }), priv, keyId);
  await api('PUT', '/api/v1/firmware/images', image);
  const m = await api<{ id: string }>('POST', '/api/v1/firmware/manifests', signed);
  const downloaded = new Promise<number>((resolve) => {
    const on = (ev: GatewayEvent): void => {
      if (ev.type === 'fw.downloaded') resolve(performance.now());
      if (ev.type === 'fw.failed') resolve(Number.NaN);
    };
    gw.bus.on('event', on);
  });
  const t0 = performance.now();
  await api('POST', '/api/v1/firmware/rollouts', { manifest: m.id });
  const t1 = await downloaded;
  if (Number.isNaN(t1)) throw new Error('the download failed');
  const seconds = (t1 - t0) / 1000;
  console.log(`firmware-transfer: ${SIZE} bytes in ${Math.ceil(SIZE / Number(values.chunk))} chunks of ${values.chunk}, window ${values.window}: ${(seconds * 1000).toFixed(0)} ms (offer, chunk requests, SQLite, SHA-256)`);
  console.log(`BENCH firmware-transfer ${(SIZE / 1e6 / seconds).toFixed(2)} MB/s`);
} finally {
  await gw.stop();
  await device.stop();
  await stopChild(hub.child);
  await rm(dir, { recursive: true, force: true });
}
