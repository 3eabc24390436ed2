/**
 * The hub's firmware records in SQLite (`<dataDir>/firmware.sqlite`): image
 * metadata (the bytes live content-addressed on disk, disk-images.ts),
 * signed manifests, rollouts and one job per targeted device. The SQLite
 * backend of {@link FirmwarePort} (firmware-port.ts); the PostgreSQL one is
 * hub/store/postgres/pg-firmware.ts.
 */
import { IocError } from '../../../contract/index.js';
import { CANCELLABLE, type FirmwareImage, type FirmwarePort, type JobRecord, type JobReport, type JobStatus, type ManifestRecord, type RolloutRecord, type RolloutState } from '../../firmware/firmware-port.js';
import { jobOf, manifestOf, rolloutOf } from '../../firmware/firmware-rows.js';
import { SqliteDb, type Logger } from '../../../lib/index.js';

export { FINAL_JOB } from '../../firmware/firmware-port.js';
export type { FirmwarePort, FirmwareImage, JobRecord, JobReport, JobStatus, ManifestRecord, RolloutRecord, RolloutState, RolloutTarget } from '../../firmware/firmware-port.js';

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

/** The firmware database (SQLite backend of {@link FirmwarePort}). */
export class FirmwareDb implements FirmwarePort {
  private conn: SqliteDb | null = null;

  constructor(private readonly deps: { file: string; logger: Logger; clock?: () => number }) {}

  private get db(): SqliteDb {
    if (!this.conn) throw new IocError('FW_ERR_STORE_IO', 'firmware database is closed');
    return this.conn;
  }

  private now(): number {
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

  async listImages(): Promise<FirmwareImage[]> {
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

  async updateRollout(id: string, change: Partial<Pick<RolloutRecord, 'state' | 'stage' | 'reason' | 'ackFailures'>>, expect?: Pick<RolloutRecord, 'state' | 'stage'>): Promise<boolean> {
    const db = this.db;
    const res = await db.exclusive(() => db.run(`UPDATE fw_rollouts SET state = coalesce(?, state), stage = coalesce(?, stage), reason = coalesce(?, reason), ack_failures = coalesce(?, ack_failures), updated_at = ? WHERE id = ?${expect ? ' AND state = ? AND stage = ?' : ''}`,
      [change.state ?? null, change.stage ?? null, change.reason ?? null, change.ackFailures ?? null, this.now(), id, ...(expect ? [expect.state, expect.stage] : [])]));
    return res.changes === 1;
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

  /** See {@link FirmwarePort.applyReport}. */
  async applyReport(id: string, r: JobReport): Promise<boolean> {
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
      const cond = `rollout = ? AND ${CANCELLABLE}`;
      const open = (await db.all<Row>(`SELECT * FROM fw_jobs WHERE ${cond}`, [rollout])).map(jobOf);
      await db.run(`UPDATE fw_jobs SET status = 'cancelled', updated_at = ? WHERE ${cond}`, [this.now(), rollout]);
      return open.filter((j) => j.status !== 'pending');
    });
  }
}
