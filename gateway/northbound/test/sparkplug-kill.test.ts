/**
 * A gateway SIGKILLed mid-session, on Aedes and on a private Mosquitto: the
 * broker publishes the NDEATH will, and its bdSeq is the one of the last
 * NBIRTH ([tck-id-topics-nbirth-bdseq-matching]); a restarted gateway counts
 * bdSeq on from the value kept in its data folder.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startSim } from '../../../test/support/stack.js';
import { BROKERS, GROUP, NODE, spConfig, startHost } from './sparkplug-fixture.js';

for (const broker of BROKERS) {
  t.test(`${broker.name}: gateway SIGKILLed mid-session: the broker's NDEATH carries the last NBIRTH's bdSeq`, { skip: broker.skip }, async (t) => {
    const port = await broker.start(t);
    const sim = await startSim(t);
    const host = await startHost(t, port);
    const dir = t.testdir();
    const file = path.join(dir, 'gw.json');
    writeFileSync(file, JSON.stringify(spConfig(dir, port, sim.port)));
    const node = host.node(GROUP, NODE);
    const runs = async (): Promise<void> => {
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/run-gateway.ts', import.meta.url)), file], { stdio: ['ignore', 'pipe', 'inherit'] });
      t.teardown(() => void child.kill('SIGKILL'));
      const births = node.births;
      await host.until(() => node.births > births && node.devices.get('flood-1')?.online, 'NBIRTH of the child gateway', 30_000);
      const bdSeq = node.bdSeq;
      const deaths = node.deaths.length;
      child.kill('SIGKILL');
      await once(child, 'exit');
      await host.until(() => node.deaths.length > deaths, 'the broker publishes the will (NDEATH)');
      t.match(node.deaths.at(-1), { bdSeq, matched: true }, `NDEATH bdSeq ${bdSeq} = the last NBIRTH's`);
    };
    await runs();
    if (broker.name === 'Aedes') {
      // Once is enough for the restart (a child start costs seconds on a loaded machine).
      await runs();
      t.equal(node.bdSeq, 1, 'the restarted gateway counts bdSeq on (kept in its data folder)');
    }
    t.same(host.violations, [], 'no conformance statement broken');
  });
}

