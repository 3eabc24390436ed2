/** Runs the `ioc-edge` dispatcher in-process with captured output, as a test sees a terminal. */
import { captureIo } from './capture-io.js';
import { main } from '../../bin/cli.js';

/** Result of one command line. */
export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** `ioc-edge ...argv`: exit code, stdout and stderr. */
export async function runCli(argv: string[]): Promise<CliResult> {
  const io = captureIo();
  const code = await main(argv, io.out, io.err);
  return { code, out: io.text(), err: io.errText() };
}
