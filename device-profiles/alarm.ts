/**
 * Threshold alarms declared on profile points (`"alarm": {...}` on any
 * point, whatever the protocol). The gateway evaluates them on every
 * reported reading and sends `alarm.raised` / `alarm.cleared` events; the
 * schema (`$defs/pointAlarm`) is the source of truth, this file adds the
 * checks a schema cannot express and the TypeScript view.
 */
import type { ProfileProblem } from './check-profile.js';

/**
 * An alarm on one point. `high`: raised when the value rises above it,
 * cleared once it falls below `high - hysteresis`. `low`: raised below it,
 * cleared above `low + hysteresis`. `equals`: raised while the value equals
 * it (a bool flag such as a float switch), no hysteresis.
 */
export interface PointAlarm {
  readonly high?: number;
  readonly low?: number;
  readonly equals?: boolean | number | string;
  /** Engineering units; ≥ 0. Default 0. */
  readonly hysteresis?: number;
  /** Default `warning`. */
  readonly severity?: 'warning' | 'critical';
  /** Operator text, e.g. "Water level above the flood limit". */
  readonly message?: string;
}

/** A point as far as alarms go. */
interface AlarmPoint {
  readonly name: string;
  readonly type: string;
  readonly alarm?: PointAlarm;
}

/**
 * Checks what the schema cannot: `high`/`low` only on numeric points,
 * `low` below `high` with room for the hysteresis, `equals` of the point's
 * type. Pointers are `/points/<i>/alarm/...`.
 */
export function checkAlarms(points: readonly AlarmPoint[]): ProfileProblem[] {
  const problems: ProfileProblem[] = [];
  points.forEach((p, i) => {
    const a = p.alarm;
    if (!a) return;
    const at = `/points/${i}/alarm`;
    const numeric = p.type !== 'bool' && p.type !== 'string';
    if (!numeric && (a.high !== undefined || a.low !== undefined)) {
      problems.push({ pointer: at, message: `point '${p.name}' is ${p.type}: use 'equals', not 'high'/'low'` });
    }
    if (a.high !== undefined && a.low !== undefined && a.low + (a.hysteresis ?? 0) >= a.high - (a.hysteresis ?? 0)) {
      problems.push({ pointer: `${at}/low`, message: `low (${a.low}) plus hysteresis must stay below high (${a.high}) minus hysteresis` });
    }
    if (a.equals !== undefined) {
      const want = p.type === 'bool' ? 'boolean' : p.type === 'string' ? 'string' : 'number';
      if (typeof a.equals !== want) problems.push({ pointer: `${at}/equals`, message: `point '${p.name}' is ${p.type}: 'equals' must be a ${want}` });
    }
  });
  return problems;
}
