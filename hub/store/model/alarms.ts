/**
 * Alarms as the API shows them and the events that change them: the model both store backends share.
 */
import type { GatewayEvent, ReadingValue } from '../../../contract/index.js';

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
  /** Fields of the stored row that could not be read (data of an older version, or damaged) and are shown as null or a placeholder; absent when the row is sound. */
  malformed?: string[];
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
