/**
 * Progress for long CLI operations (a bus scan): a redrawn bar on a
 * terminal, plain lines (about every 10 %) when the output is a file or a
 * pipe, so logs of a scan stay readable.
 */

/** A stream that may be a terminal. */
export type MaybeTty = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** A running progress display. */
export interface Progress {
  /** `done` items of `total` finished; `note` is shown beside the bar (e.g. what was found). */
  update(done: number, note?: string): void;
  /** Clears the bar (TTY) or prints the last line; call before printing results. */
  end(note?: string): void;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Show the estimated time left ("ETA 7 s") from the rate so far. */
  eta?: boolean;
  /** Clock for the estimate (ms); tests inject one. */
  clock?: () => number;
}

/** "ETA 7 s" / "ETA 2 min": time left at the rate so far, once there is a rate; '' before. */
export function etaText(startedAt: number, now: number, done: number, total: number): string {
  if (done <= 0 || done >= total) return '';
  const left = Math.ceil((((now - startedAt) / done) * (total - done)) / 1000);
  return left >= 120 ? `ETA ${Math.round(left / 60)} min` : `ETA ${left} s`;
}

/** Creates a progress display on `stream` for `total` items named `what` ("units"). */
export function createProgress(stream: MaybeTty, total: number, what: string, opts: ProgressOptions = {}): Progress {
  const clock = opts.clock ?? Date.now;
  const startedAt = clock();
  const withEta = (done: number, note = ''): string => {
    if (!opts.eta) return note;
    const eta = etaText(startedAt, clock(), done, total);
    return [note, eta].filter(Boolean).join(', ');
  };
  if (stream.isTTY) {
    let last = '';
    const draw = (done: number, plainNote = ''): void => {
      const note = withEta(done, plainNote);
      const cols = Math.max(40, stream.columns ?? 80);
      const counter = ` ${String(done).padStart(String(total).length)}/${total} ${what}`;
      const width = Math.max(10, Math.min(40, cols - counter.length - note.length - 6));
      const filled = total === 0 ? width : Math.round((done / total) * width);
      const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]${counter}${note ? `  ${note}` : ''}`.slice(0, cols - 1);
      if (line === last) return;
      last = line;
      stream.write(`\r\x1b[2K${line}`);
    };
    return {
      update: draw,
      end: () => {
        stream.write('\r\x1b[2K');
      },
    };
  }
  let nextAt = 0;
  const step = Math.max(1, Math.ceil(total / 10));
  return {
    update(done, plainNote) {
      if (done < nextAt && done !== total) return;
      nextAt = done + step;
      const note = withEta(done, plainNote);
      stream.write(`${done}/${total} ${what}${note ? `, ${note}` : ''}\n`);
    },
    end(note) {
      if (note) stream.write(`${note}\n`);
    },
  };
}
