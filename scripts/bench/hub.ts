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
 *   The same load also goes through the durable floor (floor-process.ts:
 *   plain Aedes + an append-only journal fdatasync'd before each PUBACK, the
 *   least a durable broker must do; run before the hubs and again after them,
 *   and the ratios use the mean, as for plain Aedes) and through the hub on PostgreSQL
 *   (IOC_EDGE_TEST_PG, default postgres://postgres@127.0.0.1:5432/postgres, a
 *   scratch schema dropped after; skipped with a line when PostgreSQL does
 *   not answer). Each is reported as a ratio to plain Aedes and to the floor.
 *   Issue 15 asks for the default load and `--publishers 64 --window 64`: run
 *   it once with each.
 *
 *   Each run line also gives the CPU time per message of the broker's process
 *   (all its threads: SQLite's and the GC's too; and of its main thread alone), of the load generator and of
 *   the whole machine (PostgreSQL's share shows there): on a shared machine the
 *   rate swings with the neighbours, the CPU a message costs much less.
 *
 *   The whole sequence runs ROUNDS times (default 3), interleaved: each round
 *   measures plain Aedes, the floor, both hubs (fresh), the floor and plain
 *   Aedes again, and its ratios use that round's own floor and plain runs. The
 *   BENCH lines give the median of the rounds' ratios: one round swung from
 *   0.73 to 0.93 (SQLite hub vs floor) within minutes on this 2-core machine.
 *
 *   Every broker (plain Aedes, the floor, each hub) first gets an unmeasured
 *   load of WARMUP messages per publisher (default half of MESSAGES): the
 *   figures are of warm processes, as a hub that has run for a while is (a
 *   fresh PostgreSQL hub's first load cost its process about 47 µs of CPU per
 *   message, its second about 30).
 *
 *   npm run bench:hub -- [--publishers 8] [--messages 8000] [--window 32] [--readings 2] [--rounds 3] [--warmup 4000]
 *
 * Last line: BENCH hub-vs-durable-floor <median of SQLite hub rate / floor rate> ratio.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { LineProc } from './line-proc.js';

const { values: a } = parseArgs({ options: { publishers: { type: 'string' }, messages: { type: 'string' }, window: { type: 'string' }, readings: { type: 'string' }, rounds: { type: 'string' }, warmup: { type: 'string' } } });
const rounds = Math.max(1, Number(a.rounds ?? 3));
const publishers = Number(a.publishers ?? 8);
const messages = Number(a.messages ?? 8000);
const window = Number(a.window ?? 32);
const readings = Number(a.readings ?? 2);
// An unmeasured load before each measured one, for every broker alike: the rates and CPU figures are of warm
// processes (JIT, heap sizes, and on the hubs the prepared statements, series and partitions a running hub has).
const warmupMessages = Number(a.warmup ?? Math.floor(messages / 2));
const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-hub-'));

interface Cred {
  clientId: string;
  username?: string;
  password?: string;
}

/** CPU time (user + system, ms) in a /proc stat file (Linux; 0 elsewhere). */
async function statMs(file: string): Promise<number> {
  try {
    const stat = await readFile(file, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms (USER_HZ 100)
  } catch {
    return 0;
  }
}

/** CPU time (ms) of a process, all its threads. */
const cpuMsOf = (pid: number | undefined): Promise<number> => (pid ? statMs(`/proc/${pid}/stat`) : Promise.resolve(0));

/** CPU time (ms) of a process's main thread alone (its JavaScript, and the GC pauses on it). */
const mainThreadMsOf = (pid: number | undefined): Promise<number> => (pid ? statMs(`/proc/${pid}/task/${pid}/stat`) : Promise.resolve(0));

/** Busy CPU time of this whole machine (ms): the broker, the load generator, PostgreSQL, this script and anything else running here. */
async function machineCpuMs(): Promise<number> {
  try {
    const f = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) * 10;
  } catch {
    return 0;
  }
}

/** CPU per message (µs) over a load: the broker's process, the load generator's, the whole machine's. */
interface CpuPerMessage {
  broker: number;
  /** Of which the broker's main thread (the rest: SQLite's threads, the GC's helpers, libuv's). */
  brokerMain: number;
  loadGenerator: number;
  machine: number;
}

/**
 * Runs the load against `url`. With the broker's pid, also its CPU time per message (all threads: SQLite's
 * and the GC's too): on a shared machine the rate swings with the neighbours, the CPU a message costs much less.
 */
async function load(url: string, pubs: Cred[], subscriber: Cred & { filter: string }, topic = 'ioc/v1/gw/{id}/telemetry', payload = 'telemetry', broker?: LineProc): Promise<{ rate: number; received: number; payloadBytes: number; seconds: number; cpu: CpuPerMessage }> {
  if (warmupMessages > 0) await loadOnce(url, pubs, subscriber, topic, payload, broker, warmupMessages);
  return loadOnce(url, pubs, subscriber, topic, payload, broker, messages);
}

async function loadOnce(url: string, pubs: Cred[], subscriber: Cred & { filter: string }, topic: string, payload: string, broker: LineProc | undefined, count: number): Promise<{ rate: number; received: number; payloadBytes: number; seconds: number; cpu: CpuPerMessage }> {
  const file = path.join(dir, `load-${Date.now()}-${count}.json`);
  await writeFile(file, JSON.stringify({ url, publishers: pubs, subscriber, messages: count, window, readingsPerMessage: readings, topic, payload, warmup: 0.2 }));
  const worker = LineProc.start('scripts/bench/mqtt-load.ts', ['publish', file]);
  await worker.next((o) => o.ready === true);
  const brokerPid = broker?.child.pid;
  const before = [await cpuMsOf(brokerPid), await cpuMsOf(worker.child.pid), await machineCpuMs(), await mainThreadMsOf(brokerPid)];
  // A broker that dies mid-load leaves the publishers waiting for PUBACKs: fail at once, not after the wait's timeout.
  let r: Record<string, unknown>;
  try {
    r = await Promise.race([worker.next((o) => o.done === true), ...(broker ? [broker.exitCode().then((code) => Promise.reject(new Error(`the broker's process exited (${code}) during the load (its stderr is above)`)))] : [])]);
  } catch (err) {
    await worker.stop(2000);
    throw err;
  }
  const after = [await cpuMsOf(brokerPid), await cpuMsOf(worker.child.pid), await machineCpuMs(), await mainThreadMsOf(brokerPid)];
  await worker.stop();
  const total = count * pubs.length;
  const per = (i: number): number => ((after[i]! - before[i]!) * 1000) / total;
  return { ...(r as never as { rate: number; received: number; payloadBytes: number; seconds: number }), cpu: { broker: per(0), brokerMain: per(3), loadGenerator: per(1), machine: per(2) } };
}

const cpuLine = (c: CpuPerMessage): string => `CPU per message: broker ${c.broker.toFixed(0)} µs (main thread ${c.brokerMain.toFixed(0)}), load generator ${c.loadGenerator.toFixed(0)} µs, whole machine ${c.machine.toFixed(0)} µs`;

try {
  // 1. Plain Aedes (measured again at the end; the ratio uses the mean, which evens out a shared machine's drift).
  const runPlain = async (): Promise<number> => {
    const aedes = LineProc.start('scripts/bench/aedes-process.ts');
    const ar = await aedes.next((o) => o.ready === true);
    const plainPubs = Array.from({ length: publishers }, (_, i) => ({ clientId: `gw-${i}` }));
    const r = await load(`mqtt://127.0.0.1:${ar.mqttPort as number}`, plainPubs, { clientId: 'ioc-core:1', filter: 'ioc/v1/gw/+/telemetry' }, undefined, undefined, aedes);
    await aedes.stop();
    console.log(`plain aedes: ${Math.round(r.rate)} msg/s (QoS 1, ${r.payloadBytes} B, ${publishers} publishers × window ${window}, 1 QoS 1 subscriber); ${cpuLine(r.cpu)}`);
    return r.rate;
  };

  // 2. The durable floor: plain Aedes + fdatasync'd journal before PUBACK. Measured again at the end too, as plain
  // Aedes is: the ratios use the mean (one run of the floor swung 17k-35k msg/s within minutes on a shared machine).
  const runFloor = async (n: number, plainBefore: number): Promise<number> => {
    const floorProc = LineProc.start('scripts/bench/floor-process.ts', [path.join(dir, `floor-${n}.journal`)]);
    const fr = await floorProc.next((o) => o.ready === true);
    const floorRun = await load(`mqtt://127.0.0.1:${fr.mqttPort as number}`, Array.from({ length: publishers }, (_, i) => ({ clientId: `gw-${i}` })), { clientId: 'ioc-core:1', filter: 'ioc/v1/gw/+/telemetry' }, undefined, undefined, floorProc);
    const fstats = await floorProc.ask('stats', (o) => 'syncs' in o);
    await floorProc.stop();
    console.log(`durable floor (aedes + fdatasync'd journal before PUBACK): ${Math.round(floorRun.rate)} msg/s (${(floorRun.rate / plainBefore).toFixed(3)} of plain Aedes; ${fstats.appended as number} appends in ${fstats.syncs as number} fdatasyncs); ${cpuLine(floorRun.cpu)}`);
    return floorRun.rate;
  };


  /**
   * One round: plain Aedes, the floor, the hub on SQLite, the hub on PostgreSQL, the floor and plain Aedes again
   * (each hub fresh, in its own directory or schema). Ratios use the mean of the round's two floor and plain runs.
   */
  const oneRound = async (round: number): Promise<{ plain: number; floor: number; sqlite: number; pg: number | null }> => {
    console.log(`--- round ${round} of ${rounds}`);
    const plainBefore = await runPlain();
    const floorBefore = await runFloor(2 * round - 1, plainBefore);
    // 3. The hub: authentication, ACL, ingest commit (SQLite).
    const hub = LineProc.start('scripts/bench/secure-hub-process.ts', [path.join(dir, `hub-${round}`)]);
    const hr = await hub.next((o) => o.ready === true);
    const credFile = path.join(dir, 'creds.json');
    await hub.ask(`issue ${publishers} gw ${credFile}`, (o) => 'issued' in o);
    const creds = JSON.parse(await readFile(credFile, 'utf8')) as Cred[];
    const consumer = (await hub.ask('consumer ioc-core', (o) => 'password' in o)) as { username: string; password: string };
    const url = `mqtt://127.0.0.1:${hr.mqttPort as number}`;
    const service = (await hub.ask('service cfg-svc', (o) => 'password' in o)) as { username: string; password: string };
    if (round === 1) {
      // The diagnostic run, once: the cost of authentication, ACL and the packet guard without the ingest commit.
      const noCommit = await load(url, creds, { clientId: 'cfg-svc:1', username: service.username, password: service.password, filter: 'ioc/v1/gw/+/cmd/bench/result' }, 'ioc/v1/gw/{id}/cmd/bench/result', 'command-result', hub);
      console.log(`hub, auth + ACL + packet guard, no commit (cmd/bench/result): ${Math.round(noCommit.rate)} msg/s (${(noCommit.rate / plainBefore).toFixed(3)} of plain Aedes); ${cpuLine(noCommit.cpu)}`);
    }
    const secured = await load(url, creds, { clientId: 'ioc-core:1', username: consumer.username, password: consumer.password, filter: 'ioc/v1/gw/+/telemetry' }, undefined, undefined, hub);
    const stats = await hub.ask('stats', (o) => 'rss' in o);
    await hub.stop();
    console.log(`hub, auth + ACL + ingest commit (telemetry): ${Math.round(secured.rate)} msg/s, subscriber got ${secured.received}; ${stats.batches as number} batches in ${stats.commits as number} commits (${((stats.batches as number) / Math.max(1, stats.commits as number)).toFixed(1)} per commit); ${cpuLine(secured.cpu)}`);

    // 4. The hub on PostgreSQL, same load.
    const pgUrl = process.env.IOC_EDGE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    const schema = `bench_hub_${process.pid}_${round}`;
    let pgRate: number | null = null;
    const admin = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 3000 });
    let pgUp = false;
    try {
      await admin.connect();
      pgUp = true;
    } catch (err) {
      console.log(`hub on PostgreSQL: SKIPPED, PostgreSQL does not answer at ${pgUrl} (${(err as Error).message}): start it or set IOC_EDGE_TEST_PG`);
    }
    if (pgUp) {
      try {
        const pgHub = LineProc.start('scripts/bench/secure-hub-process.ts', [path.join(dir, `hub-pg-${round}`)], { env: { ...process.env, IOC_EDGE_HUB_STORE: `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}schema=${schema}` } });
        const pr = await pgHub.next((o) => o.ready === true);
        const pgCredFile = path.join(dir, 'creds-pg.json');
        await pgHub.ask(`issue ${publishers} gw ${pgCredFile}`, (o) => 'issued' in o);
        const pgCreds = JSON.parse(await readFile(pgCredFile, 'utf8')) as Cred[];
        const pgConsumer = (await pgHub.ask('consumer ioc-core', (o) => 'password' in o)) as { username: string; password: string };
        const r = await load(`mqtt://127.0.0.1:${pr.mqttPort as number}`, pgCreds, { clientId: 'ioc-core:1', username: pgConsumer.username, password: pgConsumer.password, filter: 'ioc/v1/gw/+/telemetry' }, undefined, undefined, pgHub);
        const ps = await pgHub.ask('stats', (o) => 'rss' in o);
        await pgHub.stop();
        pgRate = r.rate;
        console.log(`hub on PostgreSQL, auth + ACL + ingest commit: ${Math.round(r.rate)} msg/s, subscriber got ${r.received}; ${ps.batches as number} batches in ${ps.commits as number} commits; ${cpuLine(r.cpu)} (PostgreSQL's share is in the machine's)`);
      } finally {
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
        await admin.end();
      }
    }


    const floor = (floorBefore + (await runFloor(2 * round, plainBefore))) / 2;
    const plain = (plainBefore + (await runPlain())) / 2;
    console.log(`round ${round}: SQLite hub ${(secured.rate / floor).toFixed(3)} of the floor${pgRate !== null ? `, PostgreSQL hub ${(pgRate / floor).toFixed(3)}` : ''}`);
    return { plain, floor, sqlite: secured.rate, pg: pgRate };
  };

  const results: Array<{ plain: number; floor: number; sqlite: number; pg: number | null }> = [];
  for (let k = 1; k <= rounds; k++) results.push(await oneRound(k));
  // The median of the rounds' ratios (each measured within its round, against that round's floor and plain Aedes).
  const median = (xs: number[]): number => {
    const v = [...xs].sort((x, y) => x - y);
    return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  const ratios = (f: (r: (typeof results)[number]) => number | null): number[] => results.map(f).filter((x): x is number => x !== null);
  const list = (xs: number[]): string => xs.map((x) => x.toFixed(3)).join(', ');
  const sqliteVsFloor = ratios((r) => r.sqlite / r.floor);
  const sqliteVsPlain = ratios((r) => r.sqlite / r.plain);
  const pgVsFloor = ratios((r) => (r.pg === null ? null : r.pg / r.floor));
  const pgVsPlain = ratios((r) => (r.pg === null ? null : r.pg / r.plain));
  const floorVsPlain = ratios((r) => r.floor / r.plain);
  console.log(`load: ${publishers} publishers × window ${window}, ${messages} messages, ${readings} readings each; ${rounds} round(s), medians (a loaded shared machine gives noisy figures)`);
  console.log(`plain Aedes            ${results.map((r) => Math.round(r.plain)).join(', ')} msg/s`);
  console.log(`durable floor          ${list(floorVsPlain)} of plain Aedes (median ${median(floorVsPlain).toFixed(3)})`);
  console.log(`hub on SQLite          ${list(sqliteVsPlain)} of plain Aedes (median ${median(sqliteVsPlain).toFixed(3)}); ${list(sqliteVsFloor)} of the durable floor (median ${median(sqliteVsFloor).toFixed(3)})`);
  if (pgVsFloor.length > 0) console.log(`hub on PostgreSQL      ${list(pgVsPlain)} of plain Aedes (median ${median(pgVsPlain).toFixed(3)}); ${list(pgVsFloor)} of the durable floor (median ${median(pgVsFloor).toFixed(3)})`);
  console.log(`BENCH hub-vs-aedes ${median(sqliteVsPlain).toFixed(3)} ratio`);
  if (pgVsFloor.length > 0) console.log(`BENCH hub-postgres-vs-durable-floor ${median(pgVsFloor).toFixed(3)} ratio`);
  console.log(`BENCH hub-vs-durable-floor ${median(sqliteVsFloor).toFixed(3)} ratio`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
