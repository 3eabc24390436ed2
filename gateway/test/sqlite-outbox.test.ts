/** The SQLite outbox: the conformance suite, plus what is specific to SQLite files. */
import t from 'tap';
import path from 'node:path';
import { readdir, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { silentLogger } from '../../lib/index.js';
import { SqliteOutbox } from '../outbox/sqlite-outbox.js';
import { outboxConformance } from './outbox-conformance.js';

const limits = { maxRows: 1_000_000, maxBytes: 1 << 30, maxAgeMs: 7 * 86_400_000 };

outboxConformance(
  t,
  'SqliteOutbox',
  (dir, opts) => new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits: { ...limits, ...opts?.limits }, flushIntervalMs: 10, ...(opts?.clock ? { clock: opts.clock } : {}) }),
  { durable: true },
);

t.test('a corrupt outbox file is moved aside and a fresh one starts', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'outbox.sqlite');
  await writeFile(file, Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4096, 0xab)]));
  const o = new SqliteOutbox({ file, logger: silentLogger(), limits });
  const corrupt = once(o, 'corrupt');
  await o.start();
  t.teardown(() => o.stop());
  const [info] = (await corrupt) as [{ movedTo: string }];
  t.match(info.movedTo, /outbox\.sqlite\.corrupt-\d+$/);
  t.ok((await readdir(dir)).some((f) => f.startsWith('outbox.sqlite.corrupt-')), 'old file kept for inspection');
  o.append([{ device: 'd', point: 'p', ts: Date.now(), value: 1, quality: 'good' }]);
  await o.flush();
  t.equal(o.stats().rows, 1, 'fresh outbox works');
});
