/** The shape of an `ioc-edge` sub-command, shared by the gateway's and the hub's command sets (bin/cli.ts registers both). */

/** Where a command writes. Injected so tests read the output. */
export interface CommandIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** One sub-command: `name` may have several words ("profile validate"). */
export interface Command {
  name: string;
  summary: string;
  /** Runs with the arguments after the command's words; resolves to the exit code. */
  run(args: string[], io: CommandIo): Promise<number>;
}
