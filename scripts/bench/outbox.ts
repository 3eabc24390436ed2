/**
 * bench:outbox — readings/s appended to the SQLite outbox in the gateway's own
 * batching (the poller appends small arrays; the outbox buffers and writes
 * multi-row INSERTs per flush, WAL, synchronous=FULL), measured until every
 * reading is durable. The producer offers readings as fast as the outbox
 * takes them (it waits while the write buffer holds more than 20,000). Compares with raw sqlite3 multi-row inserts of the same
 * rows in the same run.
 *
 *   npm run bench:outbox -- [--readings N] [--sync FULL|NORMAL]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SqliteOutbox } from '../../gateway/outbox/sqlite-outbox.js';
import { insertMany, silentLogger, SqliteDb } from '../../lib/index.js';
import type { Reading } from '../../contract/index.js';

const { values } = parseArgs({ options: { readings: { type: 'string', default: '500000' }, sync: { type: 'string', default: 'FULL' } } });
const N = Number(values.readings);
const sync = values.sync === 'NORMAL' ? 'NORMAL' : 'FULL';
const dir = await mkdtemp(path.join(tmpdir(), 'ioc-bench-outbox-'));
const t0 = Date.now();
const reading = (i: number): Reading => ({ device: `dev-${i % 500}`, point: `p${i % 30}`, ts: t0 + i, value: Math.round(Math.sin(i) * 1e6) / 1e3, quality: 'good' });

// Raw sqlite3, same rows, 1000-row multi-row INSERTs, one transaction each: the ceiling.
const raw = await SqliteDb.open(path.join(dir, 'raw.sqlite'));
await raw.exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=${sync}; CREATE TABLE readings (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, body TEXT NOT NULL);`);
let start = process.hrtime.bigint();
for (let i = 0; i < N; i += 1000) {
  const rows: unknown[][] = [];
  for (let j = i; j < Math.min(N, i + 1000); j++) {
    const r = reading(j);
    rows.push([r.ts, JSON.stringify(r)]);
  }
  await raw.transaction(() => insertMany(raw, 'INSERT INTO readings(ts, body)', 2, rows));
}
const rawRate = N / (Number(process.hrtime.bigint() - start) / 1e9);
await raw.close();

const outbox = new SqliteOutbox({ file: path.join(dir, 'outbox.sqlite'), logger: silentLogger(), limits: { maxRows: 100_000_000, maxBytes: 2 ** 40, maxAgeMs: 86_400_000 }, synchronous: sync });
await outbox.start();
start = process.hrtime.bigint();
// As the pollers do: one small array per device poll (30 points), many devices.
for (let i = 0; i < N; i += 30) {
  const chunk: Reading[] = [];
  for (let j = i; j < Math.min(N, i + 30); j++) chunk.push(reading(j));
  outbox.append(chunk);
  // The highest rate the outbox sustains: offer more only while its write buffer is not backing up.
  while (outbox.stats().buffered > 20_000) await new Promise((r) => setTimeout(r, 1));
}
await outbox.flush();
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const rows = outbox.stats().rows;
const dropped = outbox.stats().dropped;
await outbox.stop();
await rm(dir, { recursive: true, force: true });
console.log(`appended ${rows} readings durably in ${seconds.toFixed(2)} s (synchronous=${sync}, ${dropped} dropped by the memory bound); raw sqlite3 multi-row inserts of the same rows: ${Math.round(rawRate)} rows/s`);
// Only readings that reached the disk count.
console.log(`BENCH outbox-append ${Math.round(rows / seconds)} readings/s`);
