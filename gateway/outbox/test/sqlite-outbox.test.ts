/** The SQLite outbox: the conformance suite, plus what is specific to SQLite files. */
import t from 'tap';
import path from 'node:path';
import { readdir, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { silentLogger } from '../../../lib/index.js';
import { SqliteOutbox } from '../sqlite-outbox.js';
import { outboxConformance } from './outbox-conformance.js';

const limits = { maxRows: 1_000_000, maxBytes: 1 << 30, maxAgeMs: 7 * 86_400_000 };

outboxConformance(
  t,
  'SqliteOutbox',
  (dir, opts) =>
    new SqliteOutbox({
      file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits: { ...limits, ...opts?.limits }, flushIntervalMs: 10,
      ...(opts?.clock ? { clock: opts.clock } : {}),
      ...(opts?.backlogThreshold !== undefined ? { backlogThreshold: opts.backlogThreshold } : {}),
      ...(opts?.liveShare !== undefined ? { liveShare: opts.liveShare } : {}),
    }),
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

t.test('a full disk (SQLITE_FULL) drops the oldest readings, counted, and the outbox keeps working', async (t) => {
  const dir = t.testdir();
  // max_page_count makes SQLite answer SQLITE_FULL exactly as a full disk does.
  const o = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits: { ...limits, maxBufferedRows: 5000 }, pragmas: 'PRAGMA max_page_count=256;' });
  await o.start();
  t.teardown(() => o.stop());
  const overflows: Array<{ reason: string; dropped: number }> = [];
  o.on('overflow', (x: { reason: string; dropped: number }) => overflows.push(x));
  const big = 'x'.repeat(200);
  for (let round = 0; round < 10; round++) {
    o.append(Array.from({ length: 1000 }, (_, i) => ({ device: 'd', point: `p${i % 5}`, ts: Date.now(), value: `${big}${round}-${i}`, quality: 'good' as const })));
    // Every flush succeeds: room is made by dropping the oldest stored readings.
    await o.flush();
  }
  t.ok(overflows.length > 0 && overflows.every((x) => x.reason === 'diskFull'), 'overflow signalled with the reason');
  const s = o.stats();
  t.ok(s.dropped > 0, `readings were dropped (${s.dropped})`);
  t.equal(s.rows + s.dropped, 10_000, `nothing unaccounted for: ${s.rows} kept + ${s.dropped} dropped`);
  t.equal(overflows.reduce((n, x) => n + x.dropped, 0), s.dropped, 'every drop was signalled');
  const b = await o.nextBatch(10);
  t.ok(b && b.count > 0, 'batches can still be taken');
  t.match(JSON.parse(b!.payload).readings[0].value, /9-\d+$|[5-8]-\d+$/, 'the newest readings were kept');
});

t.test('readings offered faster than the disk takes them: memory stays bounded, the oldest are dropped and counted', async (t) => {
  const o = new SqliteOutbox({ file: path.join(t.testdir(), 'outbox.sqlite'), logger: silentLogger(), limits: { ...limits, maxBufferedRows: 1000 } });
  await o.start();
  t.teardown(() => o.stop());
  const overflows: Array<{ reason: string; dropped: number }> = [];
  o.on('overflow', (x: { reason: string; dropped: number }) => overflows.push(x));
  // 5000 readings in one synchronous burst: no flush can run in between.
  for (let i = 0; i < 50; i++) o.append(Array.from({ length: 100 }, (_, j) => ({ device: 'd', point: 'p', ts: Date.now(), value: i * 100 + j, quality: 'good' as const })));
  t.ok(o.stats().rows <= 1000 + 100, `buffer bounded (${o.stats().rows})`);
  await o.flush();
  const s = o.stats();
  t.equal(s.rows + s.dropped, 5000, 'every reading kept or counted');
  t.ok(overflows.every((x) => x.reason === 'maxBufferedRows'));
  const b = (await o.nextBatch(1))!;
  t.ok(JSON.parse(b.payload).readings[0].value >= 3900, 'the newest were kept');
});

t.test('stats count the readings of a flush while it is being written (a drain check must not see 0 then)', async (t) => {
  const dir = t.testdir();
  const o = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits, flushIntervalMs: 60_000 });
  await o.start();
  t.teardown(() => o.stop());
  const now = Date.now();
  o.append(Array.from({ length: 500 }, (_, i) => ({ device: 'd', point: 'p', ts: now + i, value: i, quality: 'good' as const })));
  t.equal(o.stats().rows, 500, 'buffered');
  const flushing = o.flush();
  t.equal(o.stats().rows, 500, 'taken by the flush, not yet committed: still counted');
  await flushing;
  t.equal(o.stats().rows, 500, 'committed: counted once');
});
