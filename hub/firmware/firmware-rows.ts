/**
 * Rows of the firmware tables into records, shared by the SQLite and the
 * PostgreSQL backend (same column names; JSON columns stored as text in both).
 */
import type { FirmwareState, SignedManifest } from '../../contract/index.js';
import type { JobRecord, JobStatus, ManifestRecord, RolloutRecord, RolloutState, RolloutTarget } from './firmware-port.js';

/** A row as either backend returns it (numbers as numbers, JSON columns as text). */
export type Row = Record<string, unknown>;
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** A manifest row. */
export function manifestOf(r: Row): ManifestRecord {
  return { id: String(r.id), sha256: String(r.sha256), model: String(r.model), version: String(r.version), size: Number(r.size), keyId: str(r.key_id), signed: JSON.parse(String(r.signed)) as SignedManifest, createdAt: Number(r.created_at), createdBy: String(r.created_by) };
}

/** A rollout row. */
export function rolloutOf(r: Row): RolloutRecord {
  return {
    id: String(r.id), manifestId: String(r.manifest_id), state: r.state as RolloutState, target: JSON.parse(String(r.target)) as RolloutTarget, canary: Number(r.canary), waveSize: Number(r.wave_size),
    maxFailurePercent: Number(r.max_failure_percent), stage: Number(r.stage), stages: Number(r.stages), reason: str(r.reason), ackFailures: Number(r.ack_failures),
    seed: str(r.seed), canaryDevices: r.canary_devices === null || r.canary_devices === undefined ? null : (JSON.parse(String(r.canary_devices)) as string[]), createdAt: Number(r.created_at), createdBy: String(r.created_by), updatedAt: Number(r.updated_at),
  };
}

/** A job row. */
export function jobOf(r: Row): JobRecord {
  return {
    id: String(r.id), rollout: String(r.rollout), gateway: String(r.gateway), device: String(r.device), stage: Number(r.stage), status: r.status as JobStatus,
    state: (str(r.state) as FirmwareState | null), result: Number(r.result), seq: Number(r.seq), bytes: r.bytes === null ? null : Number(r.bytes), total: r.total === null ? null : Number(r.total),
    version: str(r.version), error: r.error === null ? null : (JSON.parse(String(r.error)) as { code: string; message: string }), offers: Number(r.offers), offeredAt: r.offered_at === null ? null : Number(r.offered_at), updatedAt: Number(r.updated_at),
  };
}

