/**
 * SIGINT and SIGTERM for `hub run` and `gateway run`, from before the start
 * on: a stop asked while the process starts (systemd stopping a unit that is
 * still starting, Ctrl-C) is kept and carried out once the start is over, so
 * stores close cleanly instead of the process dying where it stood; a second
 * signal during the start ends the process at once (exit 130). Once running,
 * the first signal resolves {@link StopSignals.wait}.
 */
import type { Logger } from './logger.js';

/** Listens for SIGINT/SIGTERM from construction until {@link dispose} or the stop it reports. */
export class StopSignals {
  private asked: NodeJS.Signals | null = null;
  private waiting: ((signal: NodeJS.Signals) => void) | null = null;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.waiting) {
      const resolve = this.waiting;
      this.dispose();
      resolve(signal);
      return;
    }
    if (this.asked) {
      this.log()?.warn({ signal }, `second stop asked while the ${this.what} starts: exiting now`);
      process.exit(130);
    }
    this.asked = signal;
    this.log()?.info({ signal }, `stop asked while the ${this.what} starts: it stops once started`);
  };

  /**
   * @param what names the process in log lines ("hub", "gateway").
   * @param log the logger once there is one (the first signals may come before it exists).
   */
  constructor(private readonly what: string, private readonly log: () => Logger | null) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** Resolves with the signal that asks the running process to stop: at once when one came during the start. */
  wait(): Promise<NodeJS.Signals> {
    if (this.asked) {
      const signal = this.asked;
      this.dispose();
      return Promise.resolve(signal);
    }
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  /** Stops listening (a start that failed, or the stop was taken). */
  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    this.waiting = null;
  }
}
