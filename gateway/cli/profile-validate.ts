/**
 * `ioc-edge profile validate FILE…`: checks device profiles as the gateway
 * would load them and prints every problem with file, JSON pointer and reason.
 * Exit code 0 when all are valid, 1 otherwise.
 */
import { parseArgs } from 'node:util';
import { isIocError } from '../../contract/index.js';
import { loadProfileFile } from '../../device-profiles/index.js';
import type { Command } from './command.js';

const HELP = `Usage: ioc-edge profile validate FILE...

Validates device profile JSON files against the profile schema and the
checks the schema cannot express (overlapping registers, duplicate names…).
Prints one line per problem: FILE: /json/pointer: reason.`;

export const profileValidate: Command = {
  name: 'profile validate',
  summary: 'check device profile files (schema + register overlap checks)',
  async run(args, { out, err }) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      out.write(`${HELP}\n`);
      return 0;
    }
    if (positionals.length === 0) {
      err.write(`${HELP}\n`);
      return 2;
    }
    let bad = 0;
    for (const file of positionals) {
      try {
        const p = await loadProfileFile(file);
        out.write(`ok   ${file} (${p.model}, ${p.points.length} points)\n`);
      } catch (e) {
        bad++;
        err.write(`FAIL ${isIocError(e) ? e.message : String(e)}\n`);
      }
    }
    return bad === 0 ? 0 : 1;
  },
};
