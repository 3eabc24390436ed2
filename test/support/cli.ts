/** Runs the `ioc-edge` dispatcher in-process with captured output, as a test sees a terminal. */
import { PassThrough } from 'node:stream';
import { main } from '../../bin/cli.js';

/** Result of one command line. */
export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** `ioc-edge ...argv`: exit code, stdout and stderr. */
export async function runCli(argv: string[]): Promise<CliResult> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d: Buffer) => (o += d.toString()));
  err.on('data', (d: Buffer) => (e += d.toString()));
  const code = await main(argv, out, err);
  return { code, out: o, err: e };
}
