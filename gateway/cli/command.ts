/** The shape of an `ioc-edge` sub-command (lib/cli-command.ts). */
export type { Command, CommandIo } from '../../lib/cli-command.js';
