/**
 * Alarm state at the hub, kept in the telemetry store's database. Gateways
 * evaluate thresholds and send `alarm.raised` / `alarm.cleared` events; the
 * store applies each one in the same transaction that stores the event, so
 * an acknowledged alarm event always shows in the alarm state. One row per
 * raised alarm: active until its clear arrives, then kept as history.
 * Operators may acknowledge an alarm (who and when), active or cleared.
 */
import type { GatewayEvent, ReadingValue } from '../../../contract/index.js';
import type { SqliteDb } from '../../../lib/index.js';
import { type AlarmQuery, isAlarmEvent, type StoredAlarm } from '../model/alarms.js';

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

const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));

const SEVERITIES = new Set(['info', 'warning', 'critical']);

/**
 * Reads one stored alarm row into the API's shape without ever throwing: a
 * field that does not read back as its type (a row written by an older
 * version, or by hand) becomes null or a placeholder and is named in
 * `malformed`, so one bad row can neither fail the answer nor hide the others.
 */
export function renderAlarmRow(r: Record<string, unknown>): StoredAlarm {
  const malformed: string[] = [];
  const value = (field: string, v: unknown): ReadingValue => {
    if (v === null || v === undefined) return null;
    try {
      const x: unknown = JSON.parse(String(v));
      if (x === null || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x)) || (typeof x === 'string' && x.length <= 256)) return x;
    } catch {
      /* not JSON */
    }
    malformed.push(field);
    return null;
  };
  const int = (field: string, v: unknown, nullable: boolean): number | null => {
    if (v === null || v === undefined) {
      if (!nullable) malformed.push(field);
      return nullable ? null : 0;
    }
    const n = typeof v === 'number' || typeof v === 'bigint' ? Number(v) : Number.NaN;
    if (Number.isSafeInteger(n)) return n;
    malformed.push(field);
    return nullable ? null : 0;
  };
  const text = (field: string, v: unknown, nullable: boolean, max = 1024): string | null => {
    if (v === null || v === undefined) {
      if (!nullable) malformed.push(field);
      return nullable ? null : '';
    }
    if (typeof v === 'string') return v.length > max ? `${v.slice(0, max)}…` : v;
    malformed.push(field);
    return nullable ? null : '';
  };
  const severity = SEVERITIES.has(r.severity as string) ? (r.severity as StoredAlarm['severity']) : (malformed.push('severity'), 'critical');
  const a: StoredAlarm = {
    id: int('id', r.n, false)!, gateway: text('gateway', r.gateway, false, 64)!, device: text('device', r.device, false, 64)!, point: text('point', r.point, false, 64)!,
    state: r.cleared_at === null ? 'active' : 'cleared', severity,
    limit: text('limit', r.alarm_limit, true, 16), threshold: value('threshold', r.threshold), value: value('value', r.value), message: text('message', r.message, false)!,
    raisedAt: int('raisedAt', r.raised_at, false)!, clearedAt: int('clearedAt', r.cleared_at, true), clearValue: value('clearValue', r.clear_value),
    clearMessage: text('clearMessage', r.clear_message, true), ackedAt: int('ackedAt', r.acked_at, true), ackedBy: text('ackedBy', r.acked_by, true, 256),
  };
  if (malformed.length > 0) a.malformed = malformed;
  return a;
}

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
  return rows.map(renderAlarmRow);
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
