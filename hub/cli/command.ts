/** The shape of an `ioc-edge` sub-command (lib/cli-command.ts); hub and gateway share it through lib/. */
export type { Command, CommandIo } from '../../lib/cli-command.js';
