/** startAll: start in order; on a failure stop what started, newest first, and throw the start's error. */
import t from 'tap';
import { startAll, type Startable } from '../start-all.js';

function part(name: string, log: string[], fail: { start?: boolean; stop?: boolean } = {}): Startable {
  return {
    async start() {
      log.push(`start ${name}`);
      if (fail.start) throw new Error(`${name} would not start`);
    },
    async stop() {
      log.push(`stop ${name}`);
      if (fail.stop) throw new Error(`${name} would not stop`);
    },
  };
}

t.test('all start, in order, and none is stopped', async (t) => {
  const log: string[] = [];
  await startAll([part('a', log), part('b', log), part('c', log)]);
  t.same(log, ['start a', 'start b', 'start c']);
});

t.test('a failure stops the started ones newest first, skips the rest, and throws its own error', async (t) => {
  const log: string[] = [];
  await t.rejects(startAll([part('a', log, { stop: true }), part('b', log), part('c', log, { start: true }), part('d', log)]), { message: 'c would not start' });
  t.same(log, ['start a', 'start b', 'start c', 'stop b', 'stop a'], 'c never started, so it is not stopped; a failing stop does not hide the start error');
});
