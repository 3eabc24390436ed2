/**
 * The `ioc-edge` command dispatcher. Gateway-side commands (for technicians at
 * the cabinet) live in `gateway/cli/`, hub-side commands (for operators) in
 * `hub/cli/`; this file only routes `ioc-edge <command> …` to them.
 */
import { gatewayCommands } from '../gateway/cli/index.js';
import type { Command } from '../gateway/cli/command.js';
import { hubCommands } from '../hub/cli/index.js';

const commands: Command[] = [...gatewayCommands, ...hubCommands];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'ioc-edge — IoT edge gateway and hub for the city operations centre',
    '',
    'Usage: ioc-edge <command> [options]   (ioc-edge <command> --help for details)',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

/** Runs one command line; returns the process exit code. */
export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    out.write(`${usage()}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  // Longest match first, so "profile validate" wins over a hypothetical "profile".
  const sorted = [...commands].sort((a, b) => b.name.split(' ').length - a.name.split(' ').length);
  for (const c of sorted) {
    const words = c.name.split(' ');
    if (words.every((w, i) => argv[i] === w)) return c.run(argv.slice(words.length), { out, err });
  }
  err.write(`ioc-edge: unknown command '${argv.join(' ')}'\n\n${usage()}\n`);
  return 2;
}
