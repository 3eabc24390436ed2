/** Progress output of the `ioc-edge fw` commands: redrawn on a terminal, plain lines otherwise. */
import t from 'tap';
import { PassThrough } from 'node:stream';
import { ProgressLine, bar } from '../cli/fw-progress.js';

function io(tty: boolean): { out: PassThrough; err: PassThrough; text: () => string } {
  const out = Object.assign(new PassThrough(), { isTTY: tty });
  let s = '';
  out.on('data', (d: Buffer) => (s += d.toString()));
  return { out, err: new PassThrough(), text: () => s };
}

t.test('bar', async (t) => {
  t.equal(bar(0, 10, 10), '[----------]   0%');
  t.equal(bar(5, 10, 10), '[#####-----]  50%');
  t.equal(bar(12, 10, 10), '[##########] 100%');
  t.equal(bar(1, 0, 4), '[----]   0%', 'nothing to do: 0%');
});

t.test('a terminal gets one line redrawn in place', async (t) => {
  const o = io(true);
  const p = new ProgressLine(o);
  p.update('a');
  p.update('a');
  p.update('b');
  p.done();
  await new Promise((r) => setImmediate(r));
  t.equal(o.text(), '\r\x1b[2Ka\r\x1b[2Kb\n');
});

t.test('a pipe gets one line per change', async (t) => {
  const o = io(false);
  const p = new ProgressLine(o);
  p.update('a');
  p.update('a');
  p.update('b');
  p.done();
  await new Promise((r) => setImmediate(r));
  t.equal(o.text(), 'a\nb\n');
});
