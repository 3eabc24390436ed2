/** Argument parsing shared by the operator commands: usage errors exit 2 with the help text. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { CommandIo } from './command.js';

/** Parses `args`; returns null after printing help (exit 0) or a usage error (exit 2), with the code in `exit`. */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, help: string, io: CommandIo, positionals = false): { values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; args: string[] }>>['values']; positionals: string[] } | { exit: number } {
  let r;
  try {
    r = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  } catch (e) {
    io.err.write(`${(e as Error).message}\n${help}\n`);
    return { exit: 2 };
  }
  if ((r.values as { help?: boolean }).help) {
    io.out.write(`${help}\n`);
    return { exit: 0 };
  }
  if (!positionals && r.positionals.length > 0) {
    io.err.write(`unexpected argument '${r.positionals[0]}'\n${help}\n`);
    return { exit: 2 };
  }
  return { values: r.values as never, positionals: r.positionals };
}

/** Parses a duration like `90m`, `12h`, `7d` or plain seconds; NaN when malformed. */
export function parseDuration(s: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(s.trim());
  if (!m) return Number.NaN;
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}
