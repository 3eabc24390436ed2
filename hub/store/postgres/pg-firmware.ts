/**
 * Firmware on PostgreSQL: the {@link FirmwarePort} of
 * hub/firmware/firmware-port.ts (`PgFirmwareDb`) and the image bytes
 * (`PgImageStore`, firmware-bridge `ImageBytes`) over the tables of schema
 * version 3 (schema-v3-config-firmware.ts). The SQLite twins are
 * hub/store/sqlite/firmware-db.ts and the image folder (hub/store/sqlite/disk-images.ts);
 * all run hub/store/test/state-conformance-config.ts.
 *
 * Images live in the database, cut into pieces of 256 KiB (`bytea`, stored
 * uncompressed: images are usually compressed already), so a hub node that
 * never saw the upload serves any chunk a gateway asks for. An image is
 * stored in one transaction; its `fw_image_data` row says it is whole.
 */
import { IocError } from '../../../contract/index.js';
import { sha256Hex, type ImageBytes } from '../../../firmware-bridge/index.js';
import { CANCELLABLE, type FirmwareImage, type FirmwarePort, type JobRecord, type JobReport, type JobStatus, type ManifestRecord, type RolloutRecord, type RolloutState } from '../../firmware/firmware-port.js';
import { jobOf, manifestOf, rolloutOf, type Row } from '../../firmware/firmware-rows.js';
import type { PgPool } from './pg-pool.js';

/** Dependencies of the PostgreSQL firmware stores. */
export interface PgFirmwareDeps {
  /** The state pool (migrated to version 3 or later). */
  db: PgPool;
  /** Times of uploads, offers, changes (default Date.now). */
  clock?: () => number;
}

/** Firmware records in PostgreSQL. */
export class PgFirmwareDb implements FirmwarePort {
  constructor(private readonly deps: PgFirmwareDeps) {}

  private get db(): PgPool {
    return this.deps.db;
  }

  private now(): number {
    return (this.deps.clock ?? Date.now)();
  }

  /** Nothing to open: the pool's owner migrated the schema. */
  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  async putImage(sha256: string, size: number, by: string): Promise<void> {
    await this.db.query('INSERT INTO fw_images(sha256, size, uploaded_at, uploaded_by) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING', [sha256, size, this.now(), by]);
  }

  async listImages(): Promise<FirmwareImage[]> {
    const r = await this.db.query<Row>('SELECT sha256, size, uploaded_at, uploaded_by FROM fw_images ORDER BY uploaded_at DESC, sha256');
    return r.rows.map((x) => ({ sha256: String(x.sha256), size: Number(x.size), uploadedAt: Number(x.uploaded_at), uploadedBy: String(x.uploaded_by) }));
  }

  async putManifest(m: Omit<ManifestRecord, 'createdAt'>): Promise<ManifestRecord> {
    await this.db.query('INSERT INTO fw_manifests(id, sha256, model, version, size, key_id, signed, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING',
      [m.id, m.sha256, m.model, m.version, m.size, m.keyId, JSON.stringify(m.signed), this.now(), m.createdBy]);
    return (await this.getManifest(m.id))!;
  }

  async getManifest(id: string): Promise<ManifestRecord | null> {
    const r = await this.db.query<Row>('SELECT * FROM fw_manifests WHERE id = $1', [id]);
    return r.rows[0] ? manifestOf(r.rows[0]) : null;
  }

  async listManifests(): Promise<ManifestRecord[]> {
    return (await this.db.query<Row>('SELECT * FROM fw_manifests ORDER BY created_at DESC, id')).rows.map(manifestOf);
  }

  async createRollout(r: Omit<RolloutRecord, 'createdAt' | 'updatedAt' | 'ackFailures'>, jobs: Array<Pick<JobRecord, 'id' | 'gateway' | 'device' | 'stage'>>): Promise<void> {
    const now = this.now();
    await this.db.transaction(async (c) => {
      await c.query('INSERT INTO fw_rollouts(id, manifest_id, state, target, canary, wave_size, max_failure_percent, stage, stages, reason, seed, canary_devices, created_at, created_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13)',
        [r.id, r.manifestId, r.state, JSON.stringify(r.target), r.canary, r.waveSize, r.maxFailurePercent, r.stage, r.stages, r.reason, r.seed, r.canaryDevices ? JSON.stringify(r.canaryDevices) : null, now, r.createdBy]);
      // All jobs in one statement (a rollout may target thousands of devices).
      await c.query(`INSERT INTO fw_jobs(id, rollout, gateway, device, stage, status, updated_at)
        SELECT u.id, $1, u.gateway, u.device, u.stage, 'pending', $2 FROM unnest($3::text[], $4::text[], $5::text[], $6::int[]) AS u(id, gateway, device, stage)`,
      [r.id, now, jobs.map((j) => j.id), jobs.map((j) => j.gateway), jobs.map((j) => j.device), jobs.map((j) => j.stage)]);
    });
  }

  async getRollout(id: string): Promise<RolloutRecord | null> {
    const r = await this.db.query<Row>('SELECT * FROM fw_rollouts WHERE id = $1', [id]);
    return r.rows[0] ? rolloutOf(r.rows[0]) : null;
  }

  async listRollouts(q: { states?: RolloutState[] } = {}): Promise<RolloutRecord[]> {
    const r = q.states
      ? await this.db.query<Row>('SELECT * FROM fw_rollouts WHERE state = ANY($1::text[]) ORDER BY created_at DESC, id', [q.states])
      : await this.db.query<Row>('SELECT * FROM fw_rollouts ORDER BY created_at DESC, id');
    return r.rows.map(rolloutOf);
  }

  /** See FirmwarePort.updateRollout: with `expect`, one conditional UPDATE (the row lock makes it atomic between nodes). */
  async updateRollout(id: string, change: Partial<Pick<RolloutRecord, 'state' | 'stage' | 'reason' | 'ackFailures'>>, expect?: Pick<RolloutRecord, 'state' | 'stage'>): Promise<boolean> {
    const res = await this.db.query(`UPDATE fw_rollouts SET state = coalesce($1, state), stage = coalesce($2, stage), reason = coalesce($3, reason), ack_failures = coalesce($4, ack_failures), updated_at = $5 WHERE id = $6${expect ? ' AND state = $7 AND stage = $8' : ''}`,
      [change.state ?? null, change.stage ?? null, change.reason ?? null, change.ackFailures ?? null, this.now(), id, ...(expect ? [expect.state, expect.stage] : [])]);
    return res.rowCount === 1;
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const r = await this.db.query<Row>('SELECT * FROM fw_jobs WHERE id = $1', [id]);
    return r.rows[0] ? jobOf(r.rows[0]) : null;
  }

  async listJobs(q: { rollout?: string; gateway?: string; statuses?: JobStatus[] }): Promise<JobRecord[]> {
    // Each criterion is either given or NULL (then it matches everything): one statement, always parameterised.
    const r = await this.db.query<Row>(`SELECT * FROM fw_jobs WHERE ($1::text IS NULL OR rollout = $1) AND ($2::text IS NULL OR gateway = $2) AND ($3::text[] IS NULL OR status = ANY($3::text[]))
      ORDER BY stage, gateway, device`, [q.rollout ?? null, q.gateway ?? null, q.statuses ?? null]);
    return r.rows.map(jobOf);
  }

  async markOffered(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const now = this.now();
    await this.db.query("UPDATE fw_jobs SET status = CASE WHEN status = 'pending' THEN 'offered' ELSE status END, offers = offers + 1, offered_at = $1, updated_at = $1 WHERE id = ANY($2::text[])", [now, ids]);
  }

  async applyReport(id: string, r: JobReport): Promise<boolean> {
    const res = await this.db.query(
      `UPDATE fw_jobs SET status = $1, state = $2, result = $3, seq = $4, bytes = coalesce($5, bytes), total = coalesce($6, total), version = coalesce($7, version), error = coalesce($8, error), updated_at = $9
       WHERE id = $10 AND seq < $4 AND (status NOT IN ('updated', 'failed', 'cancelled') OR (status = 'cancelled' AND $2::text IN ('updating', 'updated', 'failed')))`,
      [r.status, r.state, r.result, r.seq, r.bytes ?? null, r.total ?? null, r.version ?? null, r.error ? JSON.stringify(r.error) : null, this.now(), id]);
    return res.rowCount === 1;
  }

  async cancelJobs(rollout: string): Promise<JobRecord[]> {
    // One statement: the rows as they were before (to tell which had been offered), locked, then cancelled.
    const r = await this.db.query<Row>(`WITH open AS (SELECT * FROM fw_jobs WHERE rollout = $1 AND ${CANCELLABLE} FOR UPDATE)
      UPDATE fw_jobs j SET status = 'cancelled', updated_at = $2 FROM open WHERE j.id = open.id RETURNING open.*`, [rollout, this.now()]);
    return r.rows.map(jobOf).filter((j) => j.status !== 'pending').sort((a, b) => a.stage - b.stage || a.gateway.localeCompare(b.gateway) || a.device.localeCompare(b.device));
  }
}

/** Bytes per stored piece of an image (pieces are independent of the transfer's chunk size). */
export const IMAGE_PIECE_BYTES = 256 * 1024;
/** Pieces written per statement (4 MiB). */
const PIECES_PER_INSERT = 16;

/** Firmware image bytes in PostgreSQL, by SHA-256. */
export class PgImageStore implements ImageBytes {
  constructor(private readonly deps: PgFirmwareDeps & { pieceBytes?: number }) {}

  private get db(): PgPool {
    return this.deps.db;
  }

  async put(image: Buffer): Promise<{ sha256: string; size: number; created: boolean }> {
    const sha256 = sha256Hex(image);
    const piece = this.deps.pieceBytes ?? IMAGE_PIECE_BYTES;
    const pieces = Math.ceil(image.length / piece);
    try {
      const created = await this.db.transaction(async (c) => {
        // A concurrent upload of the same bytes waits here on the key and then finds it stored.
        const ins = await c.query('INSERT INTO fw_image_data(sha256, size, piece_bytes, pieces, stored_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING',
          [sha256, image.length, piece, pieces, (this.deps.clock ?? Date.now)()]);
        if (ins.rowCount !== 1) return false;
        for (let first = 0; first < pieces; first += PIECES_PER_INSERT) {
          const ns: number[] = [];
          const data: Buffer[] = [];
          for (let n = first; n < Math.min(pieces, first + PIECES_PER_INSERT); n++) {
            ns.push(n);
            data.push(image.subarray(n * piece, Math.min(image.length, (n + 1) * piece)));
          }
          await c.query('INSERT INTO fw_image_chunks(sha256, n, data) SELECT $1, u.n, u.data FROM unnest($2::int[], $3::bytea[]) AS u(n, data)', [sha256, ns, data]);
        }
        return true;
      });
      return { sha256, size: image.length, created };
    } catch (err) {
      if (err instanceof IocError) throw err;
      throw new IocError('FW_ERR_STORE_IO', `cannot store firmware image ${sha256} in PostgreSQL at ${this.db.where}: ${(err as Error).message}`, { cause: err });
    }
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.db.query('SELECT 1 FROM fw_image_data WHERE sha256 = $1', [sha256])).rowCount === 1;
  }

  async size(sha256: string): Promise<number> {
    const r = await this.db.query<Row>('SELECT size FROM fw_image_data WHERE sha256 = $1', [sha256]);
    if (!r.rows[0]) throw notFound(sha256);
    return Number(r.rows[0].size);
  }

  async read(sha256: string): Promise<Buffer> {
    const head = (await this.db.query<Row>('SELECT size, pieces FROM fw_image_data WHERE sha256 = $1', [sha256])).rows[0];
    if (!head) throw notFound(sha256);
    const r = await this.db.query<{ n: number; data: Buffer }>('SELECT n, data FROM fw_image_chunks WHERE sha256 = $1 ORDER BY n', [sha256]);
    const out = Buffer.concat(r.rows.map((x) => x.data));
    if (r.rows.length !== Number(head.pieces) || out.length !== Number(head.size)) {
      throw new IocError('FW_ERR_STORE_IO', `firmware image ${sha256} in PostgreSQL is incomplete: ${r.rows.length} of ${Number(head.pieces)} pieces, ${out.length} of ${Number(head.size)} bytes; upload it again`);
    }
    return out;
  }
}

function notFound(sha256: string): IocError {
  return new IocError('FW_ERR_IMAGE_NOT_FOUND', `firmware image ${sha256} is not stored`, { context: { image: sha256 } });
}
