/**
 * The gateway's firmware state in SQLite (`<dataDir>/firmware.sqlite`, WAL):
 * jobs with their signed manifest and last state, and the chunks received so
 * far, one row per chunk keyed by image hash and index. A chunk row exists
 * entirely or not at all, so after a crash or a restart the download asks
 * for exactly the chunks that have no row — it resumes where it stopped.
 * Chunks are shared by every job with the same image.
 *
 * `synchronous = NORMAL` in WAL mode: a power cut may lose the last chunks
 * written (they are fetched again), never corrupt the file.
 */
import { IocError, type FirmwareState, type SignedManifest } from '../contract/index.js';
import { SqliteDb } from '../lib/index.js';
import type { JobSnapshot } from './job-machine.js';

/** A job as stored. */
export interface StoredJob extends JobSnapshot {
  rollout: string;
  image: string;
  signed: SignedManifest;
  /** Highest `seq` the hub acknowledged (PUBACK). */
  reportedSeq: number;
  createdAt: number;
  updatedAt: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS fw_jobs (
  job TEXT PRIMARY KEY, device TEXT NOT NULL, rollout TEXT NOT NULL, image TEXT NOT NULL, signed TEXT NOT NULL,
  state TEXT NOT NULL, result INTEGER NOT NULL, seq INTEGER NOT NULL, reported_seq INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER, total INTEGER, version TEXT, error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fw_chunks (image TEXT NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (image, idx));
`;

function wrap(err: unknown, what: string): IocError {
  return new IocError('FW_ERR_STORE_IO', `firmware store: ${what}: ${(err as Error).message}`, { cause: err });
}

type Row = Record<string, unknown>;

function jobOf(r: Row): StoredJob {
  return {
    job: String(r.job), device: String(r.device), rollout: String(r.rollout), image: String(r.image), signed: JSON.parse(String(r.signed)) as SignedManifest,
    state: r.state as FirmwareState, result: Number(r.result), seq: Number(r.seq), reportedSeq: Number(r.reported_seq),
    ...(r.bytes !== null ? { bytes: Number(r.bytes) } : {}), ...(r.total !== null ? { total: Number(r.total) } : {}),
    ...(r.version !== null ? { version: String(r.version) } : {}), ...(r.error !== null ? { error: JSON.parse(String(r.error)) as { code: string; message: string } } : {}),
    createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
  };
}

/** Jobs and received chunks. */
export class DownloadStore {
  private db: SqliteDb | null = null;

  constructor(private readonly deps: { file: string; clock?: () => number }) {}

  private get sql(): SqliteDb {
    if (!this.db) throw new IocError('FW_ERR_STORE_IO', 'firmware store is closed');
    return this.db;
  }

  async start(): Promise<void> {
    try {
      this.db = await SqliteDb.open(this.deps.file);
      await this.db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; ${SCHEMA}`);
    } catch (err) {
      throw wrap(err, `cannot open ${this.deps.file}`);
    }
  }

  async stop(): Promise<void> {
    const db = this.db;
    this.db = null;
    await db?.close();
  }

  /** Inserts a new job; false when the job id is already stored (a repeated offer). */
  async addJob(j: Omit<StoredJob, 'createdAt' | 'updatedAt' | 'reportedSeq'>): Promise<boolean> {
    const now = (this.deps.clock ?? Date.now)();
    const db = this.sql;
    const res = await db.exclusive(() => db.run(
      `INSERT OR IGNORE INTO fw_jobs(job, device, rollout, image, signed, state, result, seq, reported_seq, bytes, total, version, error, created_at, updated_at)
       VALUES (?,?,?,?,?,?,?,?,0,?,?,?,?,?,?)`,
      [j.job, j.device, j.rollout, j.image, JSON.stringify(j.signed), j.state, j.result, j.seq, j.bytes ?? null, j.total ?? null, j.version ?? null, j.error ? JSON.stringify(j.error) : null, now, now],
    )).catch((err) => { throw wrap(err, 'cannot store a job'); });
    return res.changes === 1;
  }

  /** Saves a job's new state. */
  async saveState(s: JobSnapshot): Promise<void> {
    const db = this.sql;
    await db.exclusive(() => db.run(
      'UPDATE fw_jobs SET state = ?, result = ?, seq = ?, bytes = ?, total = ?, version = ?, error = ?, updated_at = ? WHERE job = ?',
      [s.state, s.result, s.seq, s.bytes ?? null, s.total ?? null, s.version ?? null, s.error ? JSON.stringify(s.error) : null, (this.deps.clock ?? Date.now)(), s.job],
    )).catch((err) => { throw wrap(err, 'cannot save a job state'); });
  }

  /** Records that the hub acknowledged the report with this seq. */
  async markReported(job: string, seq: number): Promise<void> {
    const db = this.sql;
    await db.exclusive(() => db.run('UPDATE fw_jobs SET reported_seq = max(reported_seq, ?) WHERE job = ?', [seq, job])).catch(() => undefined);
  }

  async getJob(job: string): Promise<StoredJob | null> {
    const r = await this.sql.get<Row>('SELECT * FROM fw_jobs WHERE job = ?', [job]);
    return r ? jobOf(r) : null;
  }

  /** Every job, oldest first. */
  async listJobs(): Promise<StoredJob[]> {
    return (await this.sql.all<Row>('SELECT * FROM fw_jobs ORDER BY created_at, job')).map(jobOf);
  }

  /** Indices of the chunks of `image` already stored. */
  async chunkIndices(image: string): Promise<Set<number>> {
    const rows = await this.sql.all<{ idx: number }>('SELECT idx FROM fw_chunks WHERE image = ?', [image]);
    return new Set(rows.map((r) => Number(r.idx)));
  }

  /** Stores one chunk (a repeated chunk is ignored). */
  async putChunk(image: string, index: number, data: Buffer): Promise<void> {
    const db = this.sql;
    await db.exclusive(() => db.run('INSERT OR IGNORE INTO fw_chunks(image, idx, data) VALUES (?,?,?)', [image, index, data]))
      .catch((err) => { throw wrap(err, `cannot store chunk ${index}`); });
  }

  /** The image assembled from its chunks in index order (missing chunks simply absent: the caller checks size and hash). */
  async assemble(image: string): Promise<Buffer> {
    const rows = await this.sql.all<{ data: Buffer }>('SELECT data FROM fw_chunks WHERE image = ? ORDER BY idx', [image]);
    return Buffer.concat(rows.map((r) => r.data));
  }

  /** Drops the chunks of an image (after it failed its check, or once no job needs it). */
  async dropChunks(image: string): Promise<void> {
    const db = this.sql;
    await db.exclusive(() => db.run('DELETE FROM fw_chunks WHERE image = ?', [image])).catch(() => undefined);
  }
}
