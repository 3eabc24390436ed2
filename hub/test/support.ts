/**
 * Test helpers for the hub's security tests: a hub with authentication on,
 * real mqtt.js clients, and a CONNECT that reports the CONNACK code instead
 * of throwing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Test } from 'tap';
import { silentLogger } from '../../lib/index.js';
import { startHub, type Hub, type HubOptions } from '../index.js';
import { DEFAULT_SCRYPT } from '../identity/secret-hash.js';

/** scrypt as hubs before the fast hash stored secrets: tests that run on it cover that scheme too. */
export const TEST_SCRYPT = DEFAULT_SCRYPT;

/** A fresh temporary folder removed at teardown (t.testdir() would wipe the test's other files). */
export function tempDir(t: Test, prefix = 'ioc-edge-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts a hub with authentication required in a fresh folder, torn down with the test. */
export async function startSecureHub(t: Test, opts: Partial<HubOptions> = {}): Promise<Hub> {
  const hub = await startHub({
    dataDir: path.join(tempDir(t, 'ioc-edge-hub-'), 'hub'), logger: silentLogger(), mqttPort: 0, httpPort: 0,
    ...opts,
    auth: { mode: 'required', ...opts.auth },
  });
  t.teardown(() => hub.stop());
  return hub;
}

/** Result of a connection attempt: the client when accepted, or the CONNACK return code / error. */
export type ConnectResult = { ok: true; client: MqttClient } | { ok: false; code: number | undefined; message: string };

/** Connects once (no reconnect); never rejects. Accepted clients are ended at teardown. `before` sees the client before CONNACK (to attach listeners). */
export function tryConnect(t: Test, url: string, opts: IClientOptions, before?: (client: MqttClient) => void): Promise<ConnectResult> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    before?.(client);
    const done = (r: ConnectResult): void => {
      client.removeAllListeners('connect');
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      resolve(r);
    };
    client.once('connect', () => {
      t.teardown(() => client.endAsync(true));
      done({ ok: true, client });
    });
    client.once('error', (err) => {
      client.end(true);
      done({ ok: false, code: (err as { code?: number }).code, message: err.message });
    });
    client.once('close', () => {
      if (!client.connected) done({ ok: false, code: undefined, message: 'closed before CONNACK' });
    });
  });
}

/** Connects or fails the test. */
export async function connectOk(t: Test, url: string, opts: IClientOptions, before?: (client: MqttClient) => void): Promise<MqttClient> {
  const r = await tryConnect(t, url, opts, before);
  if (!r.ok) throw new Error(`connect as ${String(opts.clientId)} refused: ${r.message} (${String(r.code)})`);
  return r.client;
}

/** Resolves when the client's connection closes (the broker dropped it). */
export function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (client.disconnected || !client.connected) resolve();
    client.once('close', () => resolve());
  });
}

/** The mqtt:// URL of a hub. */
export function mqttUrl(hub: Hub): string {
  return `${hub.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${hub.mqttPort}`;
}

/** Calls the hub API with an optional bearer token; returns status and JSON body. */
export async function api(hub: Hub, method: string, url: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}${url}`, {
    method,
    headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** MQTT 3.1.1 string: two-byte length, then UTF-8 (§1.5.3). */
function mqttString(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

/** Remaining length, variable byte encoding (§2.2.3). */
export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/** A hand-made CONNECT (MQTT 3.1.1 §3.1), for what mqtt.js will not send. */
export function connectPacket(o: { clientId: string; clean: boolean; keepalive?: number; username?: string; password?: string }): Buffer {
  const flags = (o.username !== undefined ? 0x80 : 0) | (o.password !== undefined ? 0x40 : 0) | (o.clean ? 0x02 : 0);
  const ka = Buffer.alloc(2);
  ka.writeUInt16BE(o.keepalive ?? 60);
  const body = Buffer.concat([
    mqttString('MQTT'), Buffer.from([4, flags]), ka, mqttString(o.clientId),
    ...(o.username !== undefined ? [mqttString(o.username)] : []), ...(o.password !== undefined ? [mqttString(o.password)] : []),
  ]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

/** Opens a raw TCP connection to the hub (closed at teardown). */
export async function rawSocket(t: Test, port: number): Promise<import('node:net').Socket> {
  const net = await import('node:net');
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  t.teardown(() => socket.destroy());
  return socket;
}

/** Sends bytes and resolves with the first bytes the hub answers, or 'closed' if it closes first. */
export function exchange(socket: import('node:net').Socket, bytes: Buffer): Promise<Buffer | 'closed'> {
  return new Promise((resolve) => {
    const onData = (d: Buffer): void => {
      socket.off('close', onClose);
      resolve(d);
    };
    const onClose = (): void => {
      socket.off('data', onData);
      resolve('closed');
    };
    socket.once('data', onData);
    socket.once('close', onClose);
    socket.write(bytes);
  });
}
