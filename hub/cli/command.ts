/**
 * The shape of an `ioc-edge` sub-command on the hub side. Structurally the
 * same as the gateway's (bin/cli.ts registers both); declared here because
 * hub and gateway never import each other.
 */

/** Where a command writes. Injected so tests read the output. */
export interface CommandIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** One sub-command: `name` may have several words ("claim create"). */
export interface Command {
  name: string;
  summary: string;
  /** Runs with the arguments after the command's words; resolves to the exit code. */
  run(args: string[], io: CommandIo): Promise<number>;
}
