/**
 * Logs a machine can read (issue 14.7): `ioc-edge run` as a child process
 * with a Modbus TCP bus, a serial-line bus (its port missing) and an OPC UA
 * bus whose server certificate is not trusted. Every stdout line is one JSON
 * object with unique keys (JSON.parse would silently keep the last of two:
 * a small scanner finds them), no certificate appears except by fingerprint,
 * and "gateway started" counts all three buses.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { fingerprint, libraryText } from '../lib/index.js';
import { OpcuaCameraServer } from '../scripts/sim/opcua-camera-server.js';
import { startSim, startTestHub } from './support/stack.js';
import { waitFor } from './support/wait.js';

const ROOT = path.resolve(import.meta.dirname, '..');

/** Keys that occur twice in one object of a JSON text (at any depth). */
export function duplicateKeys(text: string): string[] {
  const dups: string[] = [];
  const stack: Array<Set<string> | null> = [];
  let i = 0;
  const readString = (): string => {
    let s = '';
    i++;
    while (text[i] !== '"') {
      if (text[i] === '\\') s += text[i++];
      s += text[i++];
    }
    i++;
    return s;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '{') (stack.push(new Set()), i++);
    else if (c === '[') (stack.push(null), i++);
    else if (c === '}' || c === ']') (stack.pop(), i++);
    else if (c === '"') {
      const s = readString();
      let j = i;
      while (text[j] === ' ') j++;
      const keys = stack[stack.length - 1];
      if (text[j] === ':' && keys) {
        if (keys.has(s)) dups.push(s);
        keys.add(s);
      }
    } else i++;
  }
  return dups;
}

t.test('the scanner finds duplicate keys', async (t) => {
  t.same(duplicateKeys('{"a":1,"b":{"a":2},"c":"x\\"a\\":"}'), []);
  t.same(duplicateKeys('{"bus":"lan","x":[{"k":1,"k":2}],"bus":"lan"}'), ['k', 'bus']);
});

t.test('library text: certificates by fingerprint, one line, no colours', async (t) => {
  const der = Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 7) & 255));
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----`;
  const text = libraryText(['\u001b[31mbad cert\u001b[0m', pem, der]);
  t.equal(text, `bad cert <certificate sha1 ${fingerprint(der)}> <600 bytes, sha1 ${fingerprint(der)}>`);
  t.match(fingerprint(der), /^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
});

t.test('every stdout line of run is JSON with unique keys; certificates by fingerprint; buses counted', async (t) => {
  const dir = t.testdir();
  const home = path.join(dir, 'home');
  const sim = await startSim(t);
  const hub = await startTestHub(t, dir);
  const server = new OpcuaCameraServer({ pkiDir: path.join(dir, 'server-pki') });
  await server.start();
  t.teardown(() => server.stop());
  const config = {
    gatewayId: 'gw-logs',
    dataDir: path.join(dir, 'gw'),
    hub: { url: `mqtt://127.0.0.1:${hub.mqttPort}`, reconnectMinMs: 100, reconnectMaxMs: 500 },
    buses: [
      { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim.port, timeoutMs: 300 },
      { id: 'radar-line', type: 'serial-line', path: path.join(dir, 'no-such-tty'), baudRate: 9600 },
      // Secured, with an empty trust list: the server's certificate fails the check.
      { id: 'cams', type: 'opcua', endpointUrl: server.endpointUrl, securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', trustList: [], pkiDir: path.join(dir, 'client-pki'), timeoutMs: 3000 },
    ],
    devices: [
      { id: 'flood-1', bus: 'lan', unitId: 1, profile: 'flood-level-sensor', pollIntervalMs: 200 },
      { id: 'radar-1', bus: 'radar-line', profile: 'water-level-radar' },
      { id: 'cam-1', bus: 'cams', profile: 'camera-health-opcua' },
    ],
  };
  const file = path.join(dir, 'gateway.json');
  writeFileSync(file, JSON.stringify(config));

  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bin/main.ts'), 'run', '--config', file], {
    cwd: ROOT, env: { ...process.env, HOME: home, LOG_LEVEL: 'info', DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  const lines = (): string[] => stdout.split('\n').filter((l) => l.length > 0);
  const parsed = (): Array<Record<string, unknown>> => lines().flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });

  const started = await waitFor(() => parsed().find((o) => o.msg === 'gateway started'), `'gateway started' (stderr: ${stderr.slice(0, 500)})`, 60_000);
  t.equal(started.buses, 3, 'modbus-tcp, serial-line and opcua buses counted');
  t.equal(started.devices, 3);
  await waitFor(() => parsed().some((o) => o.code === 'GW_ERR_OPCUA_CERT_UNTRUSTED'), 'the OPC UA certificate refusal', 60_000);
  await waitFor(() => parsed().some((o) => o.bus === 'radar-line' || o.device === 'radar-1'), 'a line about the missing serial port', 30_000);
  await waitFor(() => parsed().some((o) => o.device === 'flood-1' || o.msg === 'connected to hub'), 'the Modbus side and the hub', 30_000);
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'clean exit on SIGTERM');

  if (process.env.RUN_LOGS_DUMP) writeFileSync(process.env.RUN_LOGS_DUMP, stdout);
  const all = lines();
  t.ok(all.length > 5, `${all.length} lines`);
  for (const l of all) {
    let o: unknown;
    try {
      o = JSON.parse(l);
    } catch {
      t.fail(`not JSON: ${l.slice(0, 300)}`);
      continue;
    }
    t.ok(o && typeof o === 'object' && !Array.isArray(o), 'one object per line');
    const d = duplicateKeys(l);
    if (d.length > 0) t.fail(`duplicate keys ${d.join(', ')} in ${l.slice(0, 300)}`);
  }
  t.notMatch(stdout, /BEGIN CERTIFICATE/, 'no PEM certificate');
  t.notMatch(stdout, /[A-Za-z0-9+/]{160,}/, 'no long base64 (a certificate body)');
  t.notMatch(stdout, /\u001b\[/, 'no terminal colour codes');
  t.ok(parsed().some((o) => o.msg === 'gateway stopped'), 'stopped cleanly');
});
