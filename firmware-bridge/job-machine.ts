/**
 * The per-device firmware job state machine, after the LwM2M Firmware Update
 * object (OMA LwM2M TS 1.0, Appendix E.6, object 5; State resource 3, Update
 * Result resource 5):
 *
 * ```
 * idle ──▶ downloading ──▶ downloaded ──▶ updating ──▶ updated (result 1)
 *   │          │  ▲ progress     │            │  ▲ progress
 *   └──────────┴──┴──────────────┴────────────┴──┴──▶ failed (result 2..9)
 *              └──────────────┴──▶ idle (cancelled: result 0, as LwM2M's
 *                                  reset by an empty Package URI)
 * ```
 *
 * Every accepted transition (and every progress step) yields the next
 * `fw/state` report with a growing `seq`; an illegal transition throws, so a
 * bug cannot, say, flash an image that was never downloaded.
 */
import { FW_RESULT, IocError, isIocError, type ErrorCode, type FirmwareState, type FirmwareStateReport } from '../contract/index.js';

const ALLOWED: Record<FirmwareState, readonly FirmwareState[]> = {
  idle: ['downloading', 'failed'],
  downloading: ['downloading', 'downloaded', 'failed', 'idle'],
  downloaded: ['updating', 'failed', 'idle'],
  updating: ['updating', 'updated', 'failed'],
  updated: [],
  failed: [],
};

/** True when a job may go from `from` to `to`. */
export function canTransition(from: FirmwareState, to: FirmwareState): boolean {
  return ALLOWED[from].includes(to);
}

/** Update Result code for an error that ended a job (LwM2M E.6 resource 5). */
export function resultForError(err: unknown): number {
  const code = isIocError(err) ? err.code : undefined;
  const map: Partial<Record<ErrorCode, number>> = {
    FW_ERR_MANIFEST: FW_RESULT.integrityFailure,
    FW_ERR_UNSIGNED: FW_RESULT.integrityFailure,
    FW_ERR_UNTRUSTED_KEY: FW_RESULT.integrityFailure,
    FW_ERR_SIGNATURE: FW_RESULT.integrityFailure,
    FW_ERR_INTEGRITY: FW_RESULT.integrityFailure,
    FW_ERR_WRONG_MODEL: FW_RESULT.unsupportedPackage,
    FW_ERR_UNSUPPORTED: FW_RESULT.unsupportedPackage,
    FW_ERR_IMAGE_NOT_FOUND: FW_RESULT.invalidUri,
    FW_ERR_TRANSFER: FW_RESULT.connectionLost,
    GW_ERR_UPLINK_OFFLINE: FW_RESULT.connectionLost,
    FW_ERR_STORE_IO: FW_RESULT.notEnoughFlash,
    FW_ERR_FLASH_TIMEOUT: FW_RESULT.updateFailed,
    FW_ERR_FLASH_CANCELLED: FW_RESULT.updateFailed,
    FW_ERR_FLASH_REJECTED: FW_RESULT.updateFailed,
    FW_ERR_VERSION_MISMATCH: FW_RESULT.updateFailed,
  };
  return (code && map[code]) ?? FW_RESULT.updateFailed;
}

/** A job's persisted state. */
export interface JobSnapshot {
  job: string;
  device: string;
  state: FirmwareState;
  result: number;
  seq: number;
  bytes?: number;
  total?: number;
  version?: string;
  error?: { code: string; message: string };
}

/** Extra fields of a transition. */
export interface TransitionInfo {
  bytes?: number;
  total?: number;
  version?: string;
  /** The error that failed (or cancelled) the job. */
  error?: unknown;
  result?: number;
}

/** One job's state; `to()` checks and applies a transition and returns the report to send. */
export class JobMachine {
  private snap: JobSnapshot;

  constructor(initial: JobSnapshot, private readonly clock: () => number = Date.now) {
    this.snap = { ...initial };
  }

  get state(): FirmwareState {
    return this.snap.state;
  }

  get snapshot(): JobSnapshot {
    return { ...this.snap };
  }

  /** The report of the current state (to send again after a reconnect). */
  report(): FirmwareStateReport {
    const s = this.snap;
    return {
      v: 1, job: s.job, device: s.device, seq: s.seq, ts: this.clock(), state: s.state, result: s.result,
      ...(s.bytes !== undefined ? { bytes: s.bytes } : {}), ...(s.total !== undefined ? { total: s.total } : {}),
      ...(s.version !== undefined ? { version: s.version } : {}), ...(s.error ? { error: s.error } : {}),
    };
  }

  /** Applies a transition; throws FW_ERR_ROLLOUT_STATE on an illegal one. */
  to(next: FirmwareState, info: TransitionInfo = {}): FirmwareStateReport {
    if (!canTransition(this.snap.state, next)) {
      throw new IocError('FW_ERR_ROLLOUT_STATE', `firmware job ${this.snap.job} cannot go from ${this.snap.state} to ${next}`, { context: { job: this.snap.job } });
    }
    const error = info.error === undefined ? undefined : isIocError(info.error)
      ? { code: info.error.code, message: info.error.message.slice(0, 1024) }
      : { code: 'FW_ERR_TRANSFER', message: String((info.error as Error)?.message ?? info.error).slice(0, 1024) };
    let result = this.snap.result;
    if (next === 'updated') result = FW_RESULT.success;
    else if (next === 'failed') result = info.result ?? resultForError(info.error);
    else if (next === 'idle') result = FW_RESULT.initial;
    else if (next !== this.snap.state) result = FW_RESULT.initial;
    this.snap = {
      job: this.snap.job, device: this.snap.device, state: next, result, seq: this.snap.seq + 1,
      ...(info.bytes !== undefined ? { bytes: info.bytes } : this.snap.bytes !== undefined && next === this.snap.state ? { bytes: this.snap.bytes } : {}),
      ...(info.total !== undefined ? { total: info.total } : this.snap.total !== undefined ? { total: this.snap.total } : {}),
      ...(info.version !== undefined ? { version: info.version } : {}),
      ...(error ? { error } : {}),
    };
    return this.report();
  }
}
