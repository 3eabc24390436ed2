/**
 * Alarm state in PostgreSQL: the same rules as the SQLite store
 * (`hub/store/sqlite/alarm-store.ts`), applied in the transaction that stores the alarm
 * event. Two hubs applying events of one point at once serialise on a
 * transaction-level advisory lock of that point (a raise must see the
 * active alarm another hub just opened, or it would open a second one).
 */
import type pg from 'pg';
import type { GatewayEvent, ReadingValue } from '../../../contract/index.js';
import type { AlarmQuery, StoredAlarm } from '../model/alarms.js';
import type { PgPool } from './pg-pool.js';

const limitOf = (data: Record<string, unknown>): string | null => (typeof data.limit === 'string' ? data.limit.replace(/\u0000/g, '\uFFFD') : null);
const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
const unjson = (v: unknown): ReadingValue => (v === null || v === undefined ? null : (JSON.parse(String(v)) as ReadingValue));

/** Applies an alarm event inside the caller's transaction (see alarm-store.ts for the rules). */
export async function applyAlarmEventPg(c: pg.PoolClient, gateway: string, ev: GatewayEvent, now: number): Promise<void> {
  const data = ev.data ?? {};
  await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [JSON.stringify(['alarm', gateway, ev.device, ev.point])]);
  const active = (await c.query<{ n: number; raised_at: number }>(
    'SELECT n, raised_at FROM alarms WHERE gateway = $1 AND device = $2 AND point = $3 AND cleared_at IS NULL ORDER BY raised_at DESC LIMIT 1',
    [gateway, ev.device, ev.point],
  )).rows[0];
  if (ev.type === 'alarm.raised') {
    if (active && active.raised_at <= ev.ts) {
      await c.query('UPDATE alarms SET severity = $1, alarm_limit = $2, threshold = $3, value = $4, message = $5 WHERE n = $6', [
        ev.severity, limitOf(data), json(data.threshold), json(data.value), ev.message, active.n,
      ]);
      return;
    }
    const later = (await c.query<{ cleared_at: number }>(
      'SELECT cleared_at FROM alarms WHERE gateway = $1 AND device = $2 AND point = $3 AND cleared_at >= $4 ORDER BY cleared_at LIMIT 1',
      [gateway, ev.device, ev.point, ev.ts],
    )).rows[0];
    await c.query(
      `INSERT INTO alarms(gateway, device, point, severity, alarm_limit, threshold, value, message, raised_at, raised_event, received_at, cleared_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
      [gateway, ev.device, ev.point, ev.severity, limitOf(data), json(data.threshold), json(data.value), ev.message, ev.ts, ev.id, now, later ? later.cleared_at : null],
    );
    return;
  }
  if (active && active.raised_at <= ev.ts) {
    await c.query('UPDATE alarms SET cleared_at = $1, cleared_event = $2, clear_value = $3, clear_message = $4 WHERE n = $5', [ev.ts, ev.id, json(data.value), ev.message, active.n]);
  }
}

/** Alarms, newest raise first. */
export async function listAlarmsPg(db: PgPool, q: AlarmQuery): Promise<StoredAlarm[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown): string => `$${params.push(v)}`;
  if (q.state === 'active') where.push('cleared_at IS NULL');
  else if (q.state === 'cleared') where.push('cleared_at IS NOT NULL');
  if (q.gateway !== undefined) where.push(`gateway = ${p(q.gateway)}`);
  if (q.device !== undefined) where.push(`device = ${p(q.device)}`);
  if (q.id !== undefined) where.push(`n = ${p(q.id)}`);
  if (q.since !== undefined) where.push(`raised_at >= ${p(q.since)}`);
  const limit = p(q.limit ?? 500);
  const rows = (await db.query<Record<string, unknown>>(`SELECT * FROM alarms ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY raised_at DESC, n DESC LIMIT ${limit}`, params)).rows;
  return rows.map((r) => ({
    id: Number(r.n), gateway: String(r.gateway), device: String(r.device), point: String(r.point),
    state: r.cleared_at === null ? 'active' : 'cleared', severity: r.severity as StoredAlarm['severity'],
    limit: r.alarm_limit === null ? null : String(r.alarm_limit), threshold: unjson(r.threshold), value: unjson(r.value), message: String(r.message),
    raisedAt: Number(r.raised_at), clearedAt: r.cleared_at === null ? null : Number(r.cleared_at), clearValue: unjson(r.clear_value),
    clearMessage: r.clear_message === null ? null : String(r.clear_message), ackedAt: r.acked_at === null ? null : Number(r.acked_at), ackedBy: r.acked_by === null ? null : String(r.acked_by),
  }));
}

/** Marks an alarm acknowledged (the first acknowledgement is kept); false when there is no such alarm. */
export async function ackAlarmPg(db: PgPool, id: number, actor: string, now: number): Promise<boolean> {
  const r = await db.query<{ n: number }>(
    'WITH a AS (UPDATE alarms SET acked_at = $1, acked_by = $2 WHERE n = $3 AND acked_at IS NULL RETURNING n) SELECT n FROM a UNION ALL SELECT n FROM alarms WHERE n = $3',
    [now, actor, id],
  );
  return (r.rowCount ?? 0) > 0;
}
