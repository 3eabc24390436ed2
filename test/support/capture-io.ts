/** Captured output streams for running a CLI command in a test. */
import { PassThrough } from 'node:stream';

/** Output streams for a command (`{out, err}`, a CommandIo) whose text the test reads back. */
export function captureIo(): { out: PassThrough; err: PassThrough; text: () => string; errText: () => string } {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d: Buffer) => (o += d.toString()));
  err.on('data', (d: Buffer) => (e += d.toString()));
  return { out, err, text: () => o, errText: () => e };
}
