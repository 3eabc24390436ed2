/**
 * bench:hub — QoS 1 telemetry messages per second through the hub with
 * authentication, ACL and the ingest commit (PUBACK only after SQLite
 * COMMIT), next to a plain Aedes broker (defaults, no hooks) measured in the
 * same run with the same load:
 *
 *   broker in its own process; PUBLISHERS gateways (each its own credential
 *   and client id) publish MESSAGES QoS 1 telemetry batches of READINGS
 *   readings (~200 B) with WINDOW in flight each; one QoS 1 subscriber
 *   (a read-only IOC consumer account at the hub) receives all of them.
 *   Rate = PUBACKs per second after a 20 % warm-up.
 *
 *   A diagnostic run in between sends the same load through the hub as
 *   command results (`cmd/bench/result`, a valid result no command waits
 *   for: the command service parses, validates and drops it), received by a
 *   service account: the cost of authentication, ACL and the packet guard,
 *   apart from the ingest commit. (Until the ACL narrowed gateways' fw/
 *   topics it used fw/bench, which no service read; before that
 *   config/reported, whose per-message rejection showed in the profile.)
 *
 *   npm run bench:hub -- [--publishers 8] [--messages 8000] [--window 32] [--readings 2]
 *
 * Last line: BENCH hub-vs-aedes <hub rate / aedes rate> ratio.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LineProc } from './line-proc.js';

const { values: a } = parseArgs({ options: { publishers: { type: 'string' }, messages: { type: 'string' }, window: { type: 'string' }, readings: { type: 'string' } } });
const publishers = Number(a.publishers ?? 8);
const messages = Number(a.messages ?? 8000);
const window = Number(a.window ?? 32);
const readings = Number(a.readings ?? 2);
const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-hub-'));

interface Cred {
  clientId: string;
  username?: string;
  password?: string;
}

async function load(url: string, pubs: Cred[], subscriber: Cred & { filter: string }, topic = 'ioc/v1/gw/{id}/telemetry', payload = 'telemetry'): Promise<{ rate: number; received: number; payloadBytes: number; seconds: number }> {
  const file = path.join(dir, `load-${Date.now()}.json`);
  await writeFile(file, JSON.stringify({ url, publishers: pubs, subscriber, messages, window, readingsPerMessage: readings, topic, payload, warmup: 0.2 }));
  const worker = LineProc.start('scripts/bench/mqtt-load.ts', ['publish', file]);
  await worker.next((o) => o.ready === true);
  const r = await worker.next((o) => o.done === true);
  await worker.stop();
  return r as never;
}

try {
  // 1. Plain Aedes (measured again at the end; the ratio uses the mean, which evens out a shared machine's drift).
  const runPlain = async (): Promise<number> => {
    const aedes = LineProc.start('scripts/bench/aedes-process.ts');
    const ar = await aedes.next((o) => o.ready === true);
    const plainPubs = Array.from({ length: publishers }, (_, i) => ({ clientId: `gw-${i}` }));
    const r = await load(`mqtt://127.0.0.1:${ar.mqttPort as number}`, plainPubs, { clientId: 'ioc-core:1', filter: 'ioc/v1/gw/+/telemetry' });
    await aedes.stop();
    console.log(`plain aedes: ${Math.round(r.rate)} msg/s (QoS 1, ${r.payloadBytes} B, ${publishers} publishers × window ${window}, 1 QoS 1 subscriber)`);
    return r.rate;
  };
  const plainBefore = await runPlain();

  // 2. The hub: authentication, ACL, ingest commit.
  const hub = LineProc.start('scripts/bench/secure-hub-process.ts', [path.join(dir, 'hub')]);
  const hr = await hub.next((o) => o.ready === true);
  const credFile = path.join(dir, 'creds.json');
  await hub.ask(`issue ${publishers} gw ${credFile}`, (o) => 'issued' in o);
  const creds = JSON.parse(await (await import('node:fs/promises')).readFile(credFile, 'utf8')) as Cred[];
  const consumer = (await hub.ask('consumer ioc-core', (o) => 'password' in o)) as { username: string; password: string };
  const url = `mqtt://127.0.0.1:${hr.mqttPort as number}`;
  const service = (await hub.ask('service cfg-svc', (o) => 'password' in o)) as { username: string; password: string };
  const noCommit = await load(url, creds, { clientId: 'cfg-svc:1', username: service.username, password: service.password, filter: 'ioc/v1/gw/+/cmd/bench/result' }, 'ioc/v1/gw/{id}/cmd/bench/result', 'command-result');
  console.log(`hub, auth + ACL + packet guard, no commit (cmd/bench/result): ${Math.round(noCommit.rate)} msg/s (${(noCommit.rate / plainBefore).toFixed(3)} of plain Aedes)`);
  const secured = await load(url, creds, { clientId: 'ioc-core:1', username: consumer.username, password: consumer.password, filter: 'ioc/v1/gw/+/telemetry' });
  const stats = await hub.ask('stats', (o) => 'rss' in o);
  await hub.stop();
  console.log(`hub, auth + ACL + ingest commit (telemetry): ${Math.round(secured.rate)} msg/s, subscriber got ${secured.received}; ${stats.batches as number} batches in ${stats.commits as number} commits (${((stats.batches as number) / Math.max(1, stats.commits as number)).toFixed(1)} per commit)`);
  const plain = (plainBefore + (await runPlain())) / 2;
  console.log(`BENCH hub-vs-aedes ${(secured.rate / plain).toFixed(3)} ratio`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
