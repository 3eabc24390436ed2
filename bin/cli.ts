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

/** What each command group is about, for `ioc-edge GROUP --help`. A group is the first word of commands with several words. */
const GROUP_SUMMARIES: Record<string, string> = {
  account: 'MQTT accounts on the hub',
  audit: 'the hub\'s tamper-evident audit log',
  claim: 'one-time claim tokens that provision gateways',
  config: 'remote configuration of gateways (desired/reported)',
  device: 'devices in a gateway\'s configuration file',
  fw: 'firmware: signing keys, images, staged rollouts',
  gateway: 'gateways known to the hub: commands, revocation',
  hub: 'the hub service',
  profile: 'device profiles',
  token: 'API tokens for operators and the IOC',
};

/** The commands of `group` ("fw" → "fw upload", "fw sign"…), or none when it is not a group. */
function groupCommands(group: string | undefined): Command[] {
  return commands.filter((c) => {
    const words = c.name.split(' ');
    return words.length > 1 && words[0] === group;
  });
}

function groupUsage(group: string, members: Command[]): string {
  const width = Math.max(...members.map((c) => c.name.length));
  return [
    `ioc-edge ${group} — ${GROUP_SUMMARIES[group] ?? `the ${group} commands`}`,
    '',
    `Usage: ioc-edge ${group} <command> [options]   (ioc-edge ${group} <command> --help for details)`,
    '',
    'Commands:',
    ...members.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

const HELP = new Set(['--help', '-h', 'help']);

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
  // A group alone or with --help lists its commands; an unknown one in a group lists them as an error.
  const members = groupCommands(argv[0]);
  if (members.length > 0) {
    if (argv.length === 1 || HELP.has(argv[1]!)) {
      out.write(`${groupUsage(argv[0]!, members)}\n`);
      return 0;
    }
    err.write(`ioc-edge: unknown command '${argv[0]} ${argv[1]}'\n\n${groupUsage(argv[0]!, members)}\n`);
    return 2;
  }
  err.write(`ioc-edge: unknown command '${argv.join(' ')}'\n\n${usage()}\n`);
  return 2;
}
