/**
 * Threshold alarms at the gateway: every reading the drivers report is
 * checked against its point's `alarm` (device profile); crossing a limit
 * sends an `alarm.raised` event, coming back past the limit and its
 * hysteresis sends `alarm.cleared`. Events go through the outbox, which
 * sends events before telemetry and keeps warnings and critical events over
 * info ones, so alarms overtake a backlog. Readings of bad or stale quality
 * leave an alarm as it is (a dead sensor neither raises nor clears).
 *
 * Active alarms are kept in a small JSON file so that an alarm raised
 * before a restart is cleared after it once the value is back to normal.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { GatewayEvent, Reading, ReadingValue } from '../../contract/index.js';
import type { DeviceProfile, PointAlarm } from '../../device-profiles/index.js';
import type { Logger } from '../../lib/index.js';
import { eventId } from './device-state.js';

/** Which limit an active alarm crossed. */
export type AlarmLimit = 'high' | 'low' | 'equals';

/** An alarm that is raised now. */
export interface ActiveAlarm {
  device: string;
  point: string;
  limit: AlarmLimit;
  severity: 'warning' | 'critical';
  /** Sample time of the reading that raised it (ms). */
  since: number;
  value: ReadingValue;
}

/** Alarm rules by device id, then point name. */
export type AlarmRules = Map<string, Map<string, PointAlarm & { unit?: string }>>;

/** Collects the alarm rules of the enabled devices of a configuration from their profiles. */
export function alarmRules(devices: ReadonlyArray<{ id: string; profile: string; enabled?: boolean }>, profiles: ReadonlyMap<string, DeviceProfile>): AlarmRules {
  const rules: AlarmRules = new Map();
  for (const d of devices) {
    if (d.enabled === false) continue;
    const profile = profiles.get(d.profile);
    if (!profile) continue;
    const byPoint = new Map<string, PointAlarm & { unit?: string }>();
    for (const p of profile.points as ReadonlyArray<{ name: string; alarm?: PointAlarm; unit?: string }>) {
      if (p.alarm) byPoint.set(p.name, { ...p.alarm, ...(p.unit ? { unit: p.unit } : {}) });
    }
    if (byPoint.size > 0) rules.set(d.id, byPoint);
  }
  return rules;
}

/** Dependencies of {@link AlarmEvaluator}. */
export interface AlarmEvaluatorDeps {
  rules: AlarmRules;
  onEvent: (event: GatewayEvent) => void;
  logger: Logger;
  /** Where active alarms are kept across restarts; omitted: memory only. */
  stateFile?: string;
}

/** Which limit the value is past, if any, given the alarm's current state (hysteresis applies to leaving it). */
function condition(rule: PointAlarm, value: ReadingValue, current: AlarmLimit | undefined): AlarmLimit | undefined {
  if (rule.equals !== undefined) return value === rule.equals ? 'equals' : undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) return current; // nothing to compare: keep the state
  const h = rule.hysteresis ?? 0;
  if (rule.high !== undefined && (current === 'high' ? value > rule.high - h : value > rule.high)) return 'high';
  if (rule.low !== undefined && (current === 'low' ? value < rule.low + h : value < rule.low)) return 'low';
  return undefined;
}

/** A value for a message: numbers to 6 significant digits (no 2.1000000000000001). */
function fmt(v: unknown): string {
  return typeof v === 'number' ? String(Number(v.toPrecision(6))) : String(v);
}

function describe(point: string, rule: PointAlarm & { unit?: string }, limit: AlarmLimit, value: ReadingValue): string {
  const u = rule.unit ? ` ${rule.unit}` : '';
  if (limit === 'equals') return `${point} is ${fmt(value)}`;
  return `${point} ${fmt(value)}${u} is ${limit === 'high' ? 'above' : 'below'} ${fmt(limit === 'high' ? rule.high : rule.low)}${u}`;
}

/** The alarm evaluator service. */
export class AlarmEvaluator {
  private readonly active = new Map<string, ActiveAlarm>();
  private rules: AlarmRules;
  private saving: Promise<void> = Promise.resolve();
  /** Raised and cleared since start, for metrics. */
  readonly counters = { raised: 0, cleared: 0 };

  constructor(private readonly deps: AlarmEvaluatorDeps) {
    this.rules = deps.rules;
  }

  async start(): Promise<void> {
    if (!this.deps.stateFile) return;
    try {
      const saved = JSON.parse(await readFile(this.deps.stateFile, 'utf8')) as ActiveAlarm[];
      for (const a of saved) if (this.rules.get(a.device)?.has(a.point)) this.active.set(`${a.device}\u0000${a.point}`, a);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.deps.logger.warn({ err, file: this.deps.stateFile }, 'alarm state unreadable; starting with no active alarms');
    }
  }

  async stop(): Promise<void> {
    await this.saving;
  }

  /** Replaces the rules (after a configuration change); alarms of points without a rule are dropped silently. */
  setRules(rules: AlarmRules): void {
    this.rules = rules;
    for (const [k, a] of this.active) if (!rules.get(a.device)?.has(a.point)) this.active.delete(k);
    this.save();
  }

  /** Alarms raised now. */
  list(): ActiveAlarm[] {
    return [...this.active.values()];
  }

  /** Checks readings as the drivers report them. Never throws. */
  evaluate(readings: readonly Reading[]): void {
    let changed = false;
    for (const r of readings) {
      if (r.quality !== 'good') continue;
      const rule = this.rules.get(r.device)?.get(r.point);
      if (!rule) continue;
      const key = `${r.device}\u0000${r.point}`;
      const was = this.active.get(key);
      const now = condition(rule, r.value, was?.limit);
      if (now === was?.limit) continue;
      changed = true;
      const severity = rule.severity ?? 'warning';
      const threshold = now === 'high' || was?.limit === 'high' ? rule.high : now === 'low' || was?.limit === 'low' ? rule.low : rule.equals;
      if (was) {
        this.active.delete(key);
        this.counters.cleared++;
        // Same severity as the raise: the outbox's event budget must not drop a clear before its raise.
        const limitValue = was.limit === 'high' ? rule.high : was.limit === 'low' ? rule.low : rule.equals;
        const u = rule.unit ? ` ${rule.unit}` : '';
        this.emit('alarm.cleared', severity, r, `cleared: ${r.point} back to ${fmt(r.value)}${u} (${was.limit} limit ${fmt(limitValue)}${u})`, {
          limit: was.limit, threshold: limitValue ?? null, value: r.value, hysteresis: rule.hysteresis ?? 0, raisedAt: was.since,
        });
      }
      if (now) {
        this.active.set(key, { device: r.device, point: r.point, limit: now, severity, since: r.ts, value: r.value });
        this.counters.raised++;
        const what = describe(r.point, rule, now, r.value);
        this.emit('alarm.raised', severity, r, rule.message ? `${rule.message} (${what})` : what, {
          limit: now, threshold: threshold ?? null, value: r.value, hysteresis: rule.hysteresis ?? 0, ...(rule.unit ? { unit: rule.unit } : {}),
        });
      }
    }
    if (changed) this.save();
  }

  private emit(type: 'alarm.raised' | 'alarm.cleared', severity: 'warning' | 'critical', r: Reading, message: string, data: Record<string, unknown>): void {
    this.deps.logger[type === 'alarm.raised' ? 'warn' : 'info']({ device: r.device, point: r.point, value: r.value, event: type }, message);
    this.deps.onEvent({ v: 1, id: eventId(), ts: r.ts, type, severity, device: r.device, point: r.point, message: message.slice(0, 1024), data });
  }

  /** Writes the active set (atomically: temporary file, then rename), one write at a time. */
  private save(): void {
    const file = this.deps.stateFile;
    if (!file) return;
    const snapshot = JSON.stringify(this.list());
    this.saving = this.saving
      .then(async () => {
        await writeFile(`${file}.tmp`, snapshot);
        await rename(`${file}.tmp`, file);
      })
      .catch((err: unknown) => this.deps.logger.error({ err, file }, 'alarm state not saved'));
  }
}
