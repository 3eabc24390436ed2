/**
 * Alarm state at the hub, kept in the telemetry store's database. Gateways
 * evaluate thresholds and send `alarm.raised` / `alarm.cleared` events; the
 * store applies each one in the same transaction that stores the event, so
 * an acknowledged alarm event always shows in the alarm state. One row per
 * raised alarm: active until its clear arrives, then kept as history.
 * Operators may acknowledge an alarm (who and when), active or cleared.
 */
import type { GatewayEvent, ReadingValue } from '../contract/index.js';
import type { SqliteDb } from '../lib/index.js';

/** Tables and indexes (run with the store's schema). */
export const ALARM_SCHEMA = `
CREATE TABLE IF NOT EXISTS alarms (
  n INTEGER PRIMARY KEY, gateway TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL,
  severity TEXT NOT NULL, alarm_limit TEXT, threshold TEXT, value TEXT, message TEXT NOT NULL,
  raised_at INTEGER NOT NULL, raised_event TEXT NOT NULL, received_at INTEGER NOT NULL,
  cleared_at INTEGER, cleared_event TEXT, clear_value TEXT, clear_message TEXT,
  acked_at INTEGER, acked_by TEXT);
CREATE INDEX IF NOT EXISTS alarms_point ON alarms (gateway, device, point, raised_at);
CREATE INDEX IF NOT EXISTS alarms_active ON alarms (cleared_at) WHERE cleared_at IS NULL;
CREATE INDEX IF NOT EXISTS alarms_raised ON alarms (raised_at);
`;

/** An alarm as the API shows it. */
export interface StoredAlarm {
  id: number;
  gateway: string;
  device: string;
  point: string;
  state: 'active' | 'cleared';
  severity: GatewayEvent['severity'];
  /** Which limit was crossed: high, low or equals. */
  limit: string | null;
  threshold: ReadingValue;
  /** The value that raised it. */
  value: ReadingValue;
  message: string;
  /** Sample time of the reading that raised it (gateway clock, ms). */
  raisedAt: number;
  clearedAt: number | null;
  clearValue: ReadingValue;
  clearMessage: string | null;
  ackedAt: number | null;
  ackedBy: string | null;
}

/** Query of {@link listAlarms}. */
export interface AlarmQuery {
  /** One alarm by id. */
  id?: number;
  state?: 'active' | 'cleared' | 'all';
  gateway?: string;
  device?: string;
  /** Raised at or after (ms). */
  since?: number;
  limit?: number;
}

/** True for the event types that change alarm state. */
export function isAlarmEvent(ev: GatewayEvent): boolean {
  return (ev.type === 'alarm.raised' || ev.type === 'alarm.cleared') && ev.device !== undefined && ev.point !== undefined;
}

const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
const unjson = (v: unknown): ReadingValue => (v === null || v === undefined ? null : (JSON.parse(String(v)) as ReadingValue));

/**
 * Applies an alarm event; call inside the transaction that stored the event.
 * A raise while the point's alarm is active refreshes it (the gateway lost its
 * state, or the limit changed) instead of opening a second one. A clear
 * closes the active alarm raised at or before it; a clear with none active
 * (its raise was never seen) changes nothing.
 */
export async function applyAlarmEvent(db: SqliteDb, gateway: string, ev: GatewayEvent, now: number): Promise<void> {
  const data = ev.data ?? {};
  const active = await db.get<{ n: number; raised_at: number }>(
    'SELECT n, raised_at FROM alarms WHERE gateway = ? AND device = ? AND point = ? AND cleared_at IS NULL ORDER BY raised_at DESC LIMIT 1',
    [gateway, ev.device, ev.point],
  );
  if (ev.type === 'alarm.raised') {
    if (active && active.raised_at <= ev.ts) {
      await db.run('UPDATE alarms SET severity = ?, alarm_limit = ?, threshold = ?, value = ?, message = ? WHERE n = ?', [
        ev.severity, (data.limit as string | undefined) ?? null, json(data.threshold), json(data.value), ev.message, active.n,
      ]);
      return;
    }
    // A raise older than the newest clear of this point came late: record it as already cleared.
    const later = await db.get<{ cleared_at: number }>('SELECT cleared_at FROM alarms WHERE gateway = ? AND device = ? AND point = ? AND cleared_at >= ? ORDER BY cleared_at LIMIT 1', [gateway, ev.device, ev.point, ev.ts]);
    await db.run(
      `INSERT INTO alarms(gateway, device, point, severity, alarm_limit, threshold, value, message, raised_at, raised_event, received_at, cleared_at)
       VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
      [gateway, ev.device, ev.point, ev.severity, (data.limit as string | undefined) ?? null, json(data.threshold), json(data.value), ev.message, ev.ts, ev.id, now, later ? later.cleared_at : null],
    );
    return;
  }
  if (active && active.raised_at <= ev.ts) {
    await db.run('UPDATE alarms SET cleared_at = ?, cleared_event = ?, clear_value = ?, clear_message = ? WHERE n = ?', [ev.ts, ev.id, json(data.value), ev.message, active.n]);
  }
}

/** Alarms, newest raise first. */
export async function listAlarms(db: SqliteDb, q: AlarmQuery): Promise<StoredAlarm[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.state === 'active') where.push('cleared_at IS NULL');
  else if (q.state === 'cleared') where.push('cleared_at IS NOT NULL');
  for (const k of ['gateway', 'device'] as const) {
    if (q[k] !== undefined) {
      where.push(`${k} = ?`);
      params.push(q[k]);
    }
  }
  if (q.id !== undefined) {
    where.push('n = ?');
    params.push(q.id);
  }
  if (q.since !== undefined) {
    where.push('raised_at >= ?');
    params.push(q.since);
  }
  params.push(q.limit ?? 500);
  const rows = await db.all<Record<string, unknown>>(`SELECT * FROM alarms ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY raised_at DESC, n DESC LIMIT ?`, params);
  return rows.map((r) => ({
    id: Number(r.n), gateway: String(r.gateway), device: String(r.device), point: String(r.point),
    state: r.cleared_at === null ? 'active' : 'cleared', severity: r.severity as StoredAlarm['severity'],
    limit: r.alarm_limit === null ? null : String(r.alarm_limit), threshold: unjson(r.threshold), value: unjson(r.value), message: String(r.message),
    raisedAt: Number(r.raised_at), clearedAt: r.cleared_at === null ? null : Number(r.cleared_at), clearValue: unjson(r.clear_value),
    clearMessage: r.clear_message === null ? null : String(r.clear_message), ackedAt: r.acked_at === null ? null : Number(r.acked_at), ackedBy: r.acked_by === null ? null : String(r.acked_by),
  }));
}

/** Marks an alarm acknowledged by `actor`; false when there is no such alarm. A second acknowledgement keeps the first. */
export async function ackAlarm(db: SqliteDb, id: number, actor: string, now: number): Promise<boolean> {
  const exists = await db.get<{ n: number }>('SELECT n FROM alarms WHERE n = ?', [id]);
  if (!exists) return false;
  await db.run('UPDATE alarms SET acked_at = ?, acked_by = ? WHERE n = ? AND acked_at IS NULL', [now, actor, id]);
  return true;
}

/** Number of active alarms by severity (for metrics and the fleet view). */
export async function activeAlarmCounts(db: SqliteDb): Promise<Array<{ gateway: string; severity: string; count: number }>> {
  return db.all('SELECT gateway, severity, count(*) AS count FROM alarms WHERE cleared_at IS NULL GROUP BY gateway, severity');
}
