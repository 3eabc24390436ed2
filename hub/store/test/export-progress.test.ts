/**
 * Progress of hub export / import on stderr (hub/cli/hub-export.ts
 * RowProgress): on a terminal a bar redrawn in place with rows/s and time
 * left; elsewhere plain lines, at most one per interval; nothing with --quiet.
 */
import t from 'tap';
import { PassThrough } from 'node:stream';
import { RowProgress } from '../../cli/hub-export.js';

function sink(tty: boolean): { stream: NodeJS.WritableStream; text: () => string } {
  const s = new PassThrough();
  let out = '';
  s.on('data', (b: Buffer) => (out += b.toString()));
  if (tty) (s as unknown as { isTTY: boolean }).isTTY = true;
  return { stream: s, text: () => out };
}

t.test('non-TTY: plain lines with rows, rate and time left, no escape codes', async (t) => {
  const s = sink(false);
  const p = new RowProgress(s.stream, 'import', 3000, 0);
  p.add(1000, 'readings');
  p.add(1000, 'readings');
  p.end();
  const lines = s.text().trim().split('\n');
  t.equal(lines.length, 2, 'one line per update at interval 0');
  t.match(lines[1], /^import readings: 2,000 of 3,000 rows, [\d,]+ rows\/s, (\d+ s left|time left unknown)$/);
  t.notMatch(s.text(), /\r|\x1b/, 'no terminal codes in logs');
});

t.test('non-TTY: no more than one line per interval', async (t) => {
  const s = sink(false);
  const p = new RowProgress(s.stream, 'export', 10, 60_000);
  for (let i = 0; i < 10; i++) p.add(1, 'audit');
  t.equal(s.text().trim().split('\n').length, 1, 'the first update prints, the rest within the minute do not');
  t.equal(p.rows, 10);
});

t.test('TTY: a bar redrawn in place; quiet: nothing', async (t) => {
  const s = sink(true);
  const p = new RowProgress(s.stream, 'export', 4, 0);
  p.add(1, 'series');
  p.end();
  t.match(s.text(), /^\r\x1b\[2K\[#{8}-{22}\]  25% export series: 1 of 4 rows, .* rows\/s, (\d+ s left|time left unknown)\n$/);
  const q = sink(true);
  const quiet = new RowProgress(q.stream, 'export', 4, 0, true);
  quiet.add(4, 'series');
  quiet.end();
  t.equal(q.text(), '', '--quiet writes nothing');
});
