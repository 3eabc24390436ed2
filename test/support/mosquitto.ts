/**
 * A private Eclipse Mosquitto for tests against a broker that is not ours:
 * `/usr/sbin/mosquitto -c CONF` on a free loopback port with a temporary
 * configuration (anonymous, or a password file), stopped at teardown.
 * Never the system's instance on 1883.
 */
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { freePort } from '../../scripts/sim/free-port.js';
import { skipUnlessBinary } from './outside-binary.js';
import { waitFor } from './wait.js';

export const MOSQUITTO = process.env.IOC_EDGE_TEST_MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

/** `false` when Mosquitto is installed, else the skip reason (a failure under CI=true). */
export function mosquittoMissing(): false | string {
  return skipUnlessBinary(MOSQUITTO, 'mosquitto');
}

/** A running private Mosquitto. */
export interface TestMosquitto {
  port: number;
  url: string;
  /** What the broker wrote (log_dest stderr): connections, disconnections, wills. */
  log(): string;
}

/**
 * Starts Mosquitto in `t.testdir()` (on `port` when given, e.g. one a gateway
 * already tries). With `users`, anonymous clients are refused and only those
 * user/password pairs may connect.
 */
export async function startMosquitto(t: Test, opts: { users?: Record<string, string>; port?: number } = {}): Promise<TestMosquitto> {
  const dir = t.testdir();
  const port = opts.port ?? (await freePort());
  // Run as ourselves: started as root, Mosquitto would switch to user 'mosquitto', who cannot read the test folder.
  const lines = [`user ${os.userInfo().username}`, `listener ${port} 127.0.0.1`, 'persistence false', 'log_dest stderr', 'log_type all', 'connection_messages true'];
  if (opts.users) {
    const file = path.join(dir, 'passwd');
    writeFileSync(file, '', { mode: 0o600 });
    for (const [user, pass] of Object.entries(opts.users)) execFileSync('mosquitto_passwd', ['-b', file, user, pass], { stdio: 'pipe' });
    lines.push('allow_anonymous false', `password_file ${file}`);
  } else lines.push('allow_anonymous true');
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  const proc = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  t.teardown(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await gone;
  });
  await waitFor(() => {
    if (proc.exitCode !== null) throw new Error(`mosquitto exited ${proc.exitCode}: ${log}`);
    return new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
  }, `mosquitto listening on ${port}`, 10_000, 50);
  return { port, url: `mqtt://127.0.0.1:${port}`, log: () => log };
}
