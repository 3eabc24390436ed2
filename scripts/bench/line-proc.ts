/** A child process spoken to in JSON lines: commands on stdin, one JSON object per stdout line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** A TypeScript child with a line protocol. */
export class LineProc {
  private readonly waiting: Array<{ match: (o: Record<string, unknown>) => boolean; resolve: (o: Record<string, unknown>) => void }> = [];
  private readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        process.stderr.write(`${line}\n`);
        return;
      }
      const i = this.waiting.findIndex((w) => w.match(o));
      if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(o);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /**
   * Starts `node [--expose-gc] --import tsx FILE ARGS`, trying to raise the open-file limit to `nofile`
   * first (`ulimit -n` in a shell; kept as is when the hard limit does not allow it).
   */
  static start(file: string, args: string[] = [], opts: { nofile?: number; env?: NodeJS.ProcessEnv } = {}): LineProc {
    const script = fileURLToPath(new URL(`../../${file}`, import.meta.url));
    return LineProc.exec([process.execPath, '--expose-gc', '--import', 'tsx', script, ...args], opts);
  }

  /** Starts any command (`argv`) speaking the same line protocol, with the same open-file limit handling. */
  static exec(argv: string[], opts: { nofile?: number; env?: NodeJS.ProcessEnv } = {}): LineProc {
    const command = argv.map((s) => `'${s.replace(/'/g, "'\\''")}'`).join(' ');
    const raise = opts.nofile ? `ulimit -n ${opts.nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; ` : '';
    const child = spawn('/bin/sh', ['-c', `${raise}exec ${command}`], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...opts.env } });
    return new LineProc(child);
  }

  /** Resolves with the next line matching `match`. */
  next(match: (o: Record<string, unknown>) => boolean, timeoutMs = 600_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer from child in time')), timeoutMs);
      this.waiting.push({ match, resolve: (o) => (clearTimeout(t), resolve(o)) });
      // The timer goes with the child too: a wait left pending at exit must not hold the bench's process open.
      void this.exited.then((code) => (clearTimeout(t), reject(new Error(`child exited (${code}) before answering`))));
    });
  }

  /** Resolves with the child's exit code when it exits (null when ended by a signal). */
  exitCode(): Promise<number | null> {
    return this.exited;
  }

  /** Sends a command line and resolves with the next line matching `match`. */
  ask(line: string, match: (o: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>> {
    const p = this.next(match, timeoutMs);
    this.child.stdin!.write(`${line}\n`);
    return p;
  }

  /** Closes stdin (the child's cue to stop) and waits; SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}
