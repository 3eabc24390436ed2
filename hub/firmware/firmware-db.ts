/**
 * The hub's firmware records in SQLite (`<dataDir>/firmware.sqlite`): image
 * metadata (the bytes live content-addressed on disk, firmware-bridge
 * ImageStore), signed manifests, rollouts and one job per targeted device.
 */
import { IocError, type FirmwareState, type SignedManifest } from '../../contract/index.js';
import { SqliteDb, type Logger } from '../../lib/index.js';

/** Where a rollout is. `stopped`: it halted itself past its failure threshold. */
export type RolloutState = 'running' | 'paused' | 'stopped' | 'cancelled' | 'completed';

/** Where a job is, as the hub sees it. */
export type JobStatus = 'pending' | 'offered' | 'active' | 'updated' | 'failed' | 'cancelled';

/** Statuses a job never leaves. */
export const FINAL_JOB: ReadonlySet<JobStatus> = new Set(['updated', 'failed', 'cancelled']);

/** A stored manifest. */
export interface ManifestRecord {
  id: string;
  sha256: string;
  model: string;
  version: string;
  size: number;
  keyId: string | null;
  signed: SignedManifest;
  createdAt: number;
  createdBy: string;
}

/** What a rollout targets: devices of a profile, at a site, or listed (`gateway/device`); criteria combine (AND). */
export interface RolloutTarget {
  profile?: string;
  site?: string;
  devices?: string[];
}

/** A rollout. */
export interface RolloutRecord {
  id: string;
  manifestId: string;
  state: RolloutState;
  target: RolloutTarget;
  canary: number;
  waveSize: number;
  maxFailurePercent: number;
  stage: number;
  stages: number;
  reason: string | null;
  /** Failed gateways an operator accepted by resuming a stopped rollout (not counted against the threshold again). */
  ackFailures: number;
  /** Seed of the rollout's target order (rollout-plan.ts orderTargets); null for rollouts made before it existed. */
  seed: string | null;
  /** Canary devices an operator chose (`gateway/device`); null: the first targets of the seeded order. */
  canaryDevices: string[] | null;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
}

/** One device's job in a rollout. */
export interface JobRecord {
  id: string;
  rollout: string;
  gateway: string;
  device: string;
  stage: number;
  status: JobStatus;
  state: FirmwareState | null;
  result: number;
  seq: number;
  bytes: number | null;
  total: number | null;
  version: string | null;
  error: { code: string; message: string } | null;
  offers: number;
  offeredAt: number | null;
  updatedAt: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS fw_images (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, uploaded_at INTEGER NOT NULL, uploaded_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fw_manifests (
  id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL, size INTEGER NOT NULL, key_id TEXT,
  signed TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fw_rollouts (
  id TEXT PRIMARY KEY, manifest_id TEXT NOT NULL, state TEXT NOT NULL, target TEXT NOT NULL, canary INTEGER NOT NULL, wave_size INTEGER NOT NULL,
  max_failure_percent REAL NOT NULL, stage INTEGER NOT NULL, stages INTEGER NOT NULL, reason TEXT, ack_failures INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, created_by TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fw_jobs (
  id TEXT PRIMARY KEY, rollout TEXT NOT NULL, gateway TEXT NOT NULL, device TEXT NOT NULL, stage INTEGER NOT NULL, status TEXT NOT NULL,
  state TEXT, result INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL DEFAULT 0, bytes INTEGER, total INTEGER, version TEXT, error TEXT,
  offers INTEGER NOT NULL DEFAULT 0, offered_at INTEGER, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS fw_jobs_rollout ON fw_jobs(rollout, stage);
CREATE INDEX IF NOT EXISTS fw_jobs_gateway ON fw_jobs(gateway, status);
`;

type Row = Record<string, unknown>;
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function manifestOf(r: Row): ManifestRecord {
  return { id: String(r.id), sha256: String(r.sha256), model: String(r.model), version: String(r.version), size: Number(r.size), keyId: str(r.key_id), signed: JSON.parse(String(r.signed)) as SignedManifest, createdAt: Number(r.created_at), createdBy: String(r.created_by) };
}

function rolloutOf(r: Row): RolloutRecord {
  return {
    id: String(r.id), manifestId: String(r.manifest_id), state: r.state as RolloutState, target: JSON.parse(String(r.target)) as RolloutTarget, canary: Number(r.canary), waveSize: Number(r.wave_size),
    maxFailurePercent: Number(r.max_failure_percent), stage: Number(r.stage), stages: Number(r.stages), reason: str(r.reason), ackFailures: Number(r.ack_failures),
    seed: str(r.seed), canaryDevices: r.canary_devices === null || r.canary_devices === undefined ? null : (JSON.parse(String(r.canary_devices)) as string[]), createdAt: Number(r.created_at), createdBy: String(r.created_by), updatedAt: Number(r.updated_at),
  };
}

function jobOf(r: Row): JobRecord {
  return {
    id: String(r.id), rollout: String(r.rollout), gateway: String(r.gateway), device: String(r.device), stage: Number(r.stage), status: r.status as JobStatus,
    state: (str(r.state) as FirmwareState | null), result: Number(r.result), seq: Number(r.seq), bytes: r.bytes === null ? null : Number(r.bytes), total: r.total === null ? null : Number(r.total),
    version: str(r.version), error: r.error === null ? null : (JSON.parse(String(r.error)) as { code: string; message: string }), offers: Number(r.offers), offeredAt: r.offered_at === null ? null : Number(r.offered_at), updatedAt: Number(r.updated_at),
  };
}

/** The firmware database. */
export class FirmwareDb {
  private conn: SqliteDb | null = null;

  constructor(private readonly deps: { file: string; logger: Logger; clock?: () => number }) {}

  get db(): SqliteDb {
    if (!this.conn) throw new IocError('FW_ERR_STORE_IO', 'firmware database is closed');
    return this.conn;
  }

  now(): number {
    return (this.deps.clock ?? Date.now)();
  }

  async start(): Promise<void> {
    this.conn = await SqliteDb.open(this.deps.file);
    await this.conn.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; ${SCHEMA}`);
    // Columns added after release (issue 13): the seeded order and the operator's canaries.
    const have = new Set((await this.conn.all<Row>('PRAGMA table_info(fw_rollouts)')).map((c) => String(c.name)));
    for (const col of ['seed', 'canary_devices']) if (!have.has(col)) await this.conn.exec(`ALTER TABLE fw_rollouts ADD COLUMN ${col} TEXT`);
  }

  async stop(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    await c?.close();
  }

  async putImage(sha256: string, size: number, by: string): Promise<void> {
    const db = this.db;
    await db.exclusive(() => db.run('INSERT OR IGNORE INTO fw_images(sha256, size, uploaded_at, uploaded_by) VALUES (?,?,?,?)', [sha256, size, this.now(), by]));
  }

  async listImages(): Promise<Array<{ sha256: string; size: number; uploadedAt: number; uploadedBy: string }>> {
    const rows = await this.db.all<Row>('SELECT * FROM fw_images ORDER BY uploaded_at DESC');
    return rows.map((r) => ({ sha256: String(r.sha256), size: Number(r.size), uploadedAt: Number(r.uploaded_at), uploadedBy: String(r.uploaded_by) }));
  }

  /** Stores a manifest; an identical one (same id) is kept as it was. */
  async putManifest(m: Omit<ManifestRecord, 'createdAt'>): Promise<ManifestRecord> {
    const db = this.db;
    await db.exclusive(() => db.run('INSERT OR IGNORE INTO fw_manifests(id, sha256, model, version, size, key_id, signed, created_at, created_by) VALUES (?,?,?,?,?,?,?,?,?)',
      [m.id, m.sha256, m.model, m.version, m.size, m.keyId, JSON.stringify(m.signed), this.now(), m.createdBy]));
    return (await this.getManifest(m.id))!;
  }

  async getManifest(id: string): Promise<ManifestRecord | null> {
    const r = await this.db.get<Row>('SELECT * FROM fw_manifests WHERE id = ?', [id]);
    return r ? manifestOf(r) : null;
  }

  async listManifests(): Promise<ManifestRecord[]> {
    return (await this.db.all<Row>('SELECT * FROM fw_manifests ORDER BY created_at DESC, id')).map(manifestOf);
  }

  /** Creates a rollout with its jobs in one transaction. */
  async createRollout(r: Omit<RolloutRecord, 'createdAt' | 'updatedAt' | 'ackFailures'>, jobs: Array<Pick<JobRecord, 'id' | 'gateway' | 'device' | 'stage'>>): Promise<void> {
    const db = this.db;
    const now = this.now();
    await db.transaction(async () => {
      await db.run('INSERT INTO fw_rollouts(id, manifest_id, state, target, canary, wave_size, max_failure_percent, stage, stages, reason, seed, canary_devices, created_at, created_by, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
        [r.id, r.manifestId, r.state, JSON.stringify(r.target), r.canary, r.waveSize, r.maxFailurePercent, r.stage, r.stages, r.reason, r.seed, r.canaryDevices ? JSON.stringify(r.canaryDevices) : null, now, r.createdBy, now]);
      for (const j of jobs) {
        await db.run('INSERT INTO fw_jobs(id, rollout, gateway, device, stage, status, updated_at) VALUES (?,?,?,?,?,?,?)', [j.id, r.id, j.gateway, j.device, j.stage, 'pending', now]);
      }
    });
  }

  async getRollout(id: string): Promise<RolloutRecord | null> {
    const r = await this.db.get<Row>('SELECT * FROM fw_rollouts WHERE id = ?', [id]);
    return r ? rolloutOf(r) : null;
  }

  async listRollouts(q: { states?: RolloutState[] } = {}): Promise<RolloutRecord[]> {
    const where = q.states ? `WHERE state IN (${q.states.map(() => '?').join(',')})` : '';
    return (await this.db.all<Row>(`SELECT * FROM fw_rollouts ${where} ORDER BY created_at DESC, id`, q.states ?? [])).map(rolloutOf);
  }

  async updateRollout(id: string, change: Partial<Pick<RolloutRecord, 'state' | 'stage' | 'reason' | 'ackFailures'>>): Promise<void> {
    const db = this.db;
    await db.exclusive(() => db.run('UPDATE fw_rollouts SET state = coalesce(?, state), stage = coalesce(?, stage), reason = coalesce(?, reason), ack_failures = coalesce(?, ack_failures), updated_at = ? WHERE id = ?',
      [change.state ?? null, change.stage ?? null, change.reason ?? null, change.ackFailures ?? null, this.now(), id]));
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const r = await this.db.get<Row>('SELECT * FROM fw_jobs WHERE id = ?', [id]);
    return r ? jobOf(r) : null;
  }

  async listJobs(q: { rollout?: string; gateway?: string; statuses?: JobStatus[] }): Promise<JobRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.rollout !== undefined) {
      where.push('rollout = ?');
      params.push(q.rollout);
    }
    if (q.gateway !== undefined) {
      where.push('gateway = ?');
      params.push(q.gateway);
    }
    if (q.statuses) {
      where.push(`status IN (${q.statuses.map(() => '?').join(',')})`);
      params.push(...q.statuses);
    }
    return (await this.db.all<Row>(`SELECT * FROM fw_jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY stage, gateway, device`, params)).map(jobOf);
  }

  /** Marks jobs offered (once more). */
  async markOffered(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const db = this.db;
    const now = this.now();
    await db.exclusive(() => db.run(`UPDATE fw_jobs SET status = CASE WHEN status = 'pending' THEN 'offered' ELSE status END, offers = offers + 1, offered_at = ?, updated_at = ? WHERE id IN (${ids.map(() => '?').join(',')})`, [now, now, ...ids]));
  }

  /**
   * Applies a gateway's report if its seq is newer; false when it was stale or
   * the job is already final. A cancelled job still takes the reports of a
   * flash that had started before the cancel reached the gateway (a flash
   * always runs to its end), so the record says what the device runs.
   */
  async applyReport(id: string, r: { status: JobStatus; state: FirmwareState; result: number; seq: number; bytes?: number; total?: number; version?: string; error?: { code: string; message: string } }): Promise<boolean> {
    const db = this.db;
    const res = await db.exclusive(() => db.run(
      `UPDATE fw_jobs SET status = ?, state = ?, result = ?, seq = ?, bytes = coalesce(?, bytes), total = coalesce(?, total), version = coalesce(?, version), error = coalesce(?, error), updated_at = ?
       WHERE id = ? AND seq < ? AND (status NOT IN ('updated', 'failed', 'cancelled') OR (status = 'cancelled' AND ? IN ('updating', 'updated', 'failed')))`,
      [r.status, r.state, r.result, r.seq, r.bytes ?? null, r.total ?? null, r.version ?? null, r.error ? JSON.stringify(r.error) : null, this.now(), id, r.seq, r.state]));
    return res.changes === 1;
  }

  /** Cancels the jobs of a rollout that have not finished and are not flashing; returns those that had been offered (the gateways are told). */
  async cancelJobs(rollout: string): Promise<JobRecord[]> {
    const db = this.db;
    return db.transaction(async () => {
      const cond = "rollout = ? AND (status IN ('pending', 'offered') OR (status = 'active' AND coalesce(state, '') <> 'updating'))";
      const open = (await db.all<Row>(`SELECT * FROM fw_jobs WHERE ${cond}`, [rollout])).map(jobOf);
      await db.run(`UPDATE fw_jobs SET status = 'cancelled', updated_at = ? WHERE ${cond}`, [this.now(), rollout]);
      return open.filter((j) => j.status !== 'pending');
    });
  }
}
