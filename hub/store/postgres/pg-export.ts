/**
 * The PostgreSQL hub read and written for export/import (issue 15 item 5).
 * Export reads every table inside one REPEATABLE READ READ ONLY
 * transaction (one consistent snapshot) through server-side cursors, a
 * chunk at a time, so no table is ever held whole in memory. Import writes
 * each chunk in its own transaction with multi-row INSERTs; identity
 * columns keep the archive's numbers (OVERRIDING SYSTEM VALUE) and their
 * sequences are moved past them at the end. Readings: the day partitions
 * of the window are created as the hub would (partitions.ts), older days
 * go to the default partition. The dedupe record: one `batch_seqs` row per
 * gateway epoch, its multirange written as the archive's JSON ranges.
 */
import type pg from 'pg';
import { IocError } from '../../../contract/index.js';
import type { Logger } from '../../../lib/index.js';
import { CHUNK_ROWS, fromB64, ImageAssembler, TABLE, TABLES, toB64, type ArchiveSource, type ArchiveTarget, type ImportCheckpoint, type Row } from '../archive.js';
import { checkVersion, migrate } from './migrations.js';
import { Partitions } from './partitions.js';
import { importUnfinished } from '../import-guard.js';
import { PgImageStore } from './pg-firmware.js';
import { isUnavailable, parseStoreUrl, PgPool } from './pg-pool.js';

/** Where a PostgreSQL hub keeps its state. */
export interface PgLocation {
  /** `postgres://…?schema=name` as `--store` gives it. */
  url: string;
  logger: Logger;
}

/** PostgreSQL table of an archive table. */
const PG_TABLE: Record<string, string> = { dedupe: 'batch_seqs', image_bytes: 'fw_image_data' };
const pgName = (t: string): string => PG_TABLE[t] ?? t;
/** Identity columns (GENERATED ALWAYS): written with the archive's numbers, sequence moved after. */
const IDENTITY: Record<string, string> = { series: 'id', alarms: 'n', quarantine: 'n', config_events: 'n' };
/** Read order of each table (a stable order for equal archives; none for readings: a plain scan). */
const ORDER: Record<string, string> = {
  registry_gateways: 'id', registry_devices: 'gateway, id', principals: 'username', claims: 'id', api_tokens: 'id', audit: 'n',
  config_versions: 'gateway, version', config_reported: 'gateway', config_events: 'n', fw_images: 'sha256', fw_manifests: 'id',
  fw_rollouts: 'id', fw_jobs: 'id', gateways: 'id', series: 'id', latest: 'series', events: 'gateway, id', alarms: 'n', quarantine: 'n',
  rollups: 'series, bucket_ms, ts',
};

/**
 * A pool for an export or import. Its sessions show in pg_stat_activity as `APP:SCHEMA` (`ioc-edge-hub-import:ioc_edge`):
 * an operator sees which deployment an import is writing, and a test cuts only its own import's connection.
 */
function open(url: string, logger: Logger, app: string): PgPool {
  const parsed = parseStoreUrl(url);
  const schema = parsed.kind === 'postgres' ? parsed.schema : '';
  return new PgPool({ url, max: 2, applicationName: `${app}:${schema}`, statementTimeoutMs: 600_000 }, logger);
}

const unreachable = (db: PgPool, err: unknown): unknown =>
  isUnavailable(err) ? new IocError('HUB_ERR_STORE_UNAVAILABLE', `PostgreSQL at ${db.where} unreachable: ${(err as Error).message}`, { cause: err }) : err;

/** The SELECT of a table, giving archive columns (readings: value or svalue as one value). */
function selectOf(table: string): string {
  const spec = TABLE.get(table)!;
  if (table === 'readings' || table === 'latest') return `SELECT ${spec.columns[0]}, ts, value, svalue, flags FROM ${table}${ORDER[table] ? ` ORDER BY ${ORDER[table]}` : ''}`;
  if (table === 'dedupe') return "SELECT gateway, epoch, coalesce((SELECT json_agg(json_build_array(lower(r), upper(r) - 1) ORDER BY lower(r)) FROM unnest(seqs) AS r)::text, '[]') AS ranges, updated_at FROM batch_seqs ORDER BY gateway, epoch";
  if (table === 'image_bytes') return 'SELECT c.sha256, c.n, d.pieces, c.data FROM fw_image_chunks c JOIN fw_image_data d USING (sha256) ORDER BY c.sha256, c.n';
  return `SELECT ${spec.columns.join(', ')} FROM ${table} ORDER BY ${ORDER[table]}`;
}

function toArchive(table: string, r: Record<string, unknown>): Row {
  if (table === 'readings' || table === 'latest') return [r.series, r.ts, r.svalue ?? r.value ?? null, r.flags];
  // PostgreSQL's JSON text has spaces; the archive keeps seq-ranges.ts' compact form, whichever store wrote it.
  if (table === 'dedupe') return [r.gateway, r.epoch, JSON.stringify(JSON.parse(r.ranges as string)), r.updated_at];
  const spec = TABLE.get(table)!;
  return spec.columns.map((c) => (spec.bytes?.includes(c) ? toB64(r[c] as Buffer | null) : (r[c] ?? null)));
}

/** Whether this PostgreSQL store (the pool's schema) holds an unfinished import's checkpoint table (import-guard.ts). */
export async function pgHasCheckpoint(db: PgPool): Promise<boolean> {
  return Boolean((await db.query<{ t: string | null }>("SELECT to_regclass('import_progress')::text AS t")).rows[0]?.t);
}

/** Opens a PostgreSQL hub as an export source (its schema must exist and not be newer than this code). */
export async function openPgSource(loc: PgLocation): Promise<ArchiveSource> {
  const db = open(loc.url, loc.logger, 'ioc-edge-hub-export');
  let client: pg.PoolClient;
  let version: number;
  try {
    version = await checkVersion(db);
    if (version === 0) throw new IocError('HUB_ERR_STORE_SCHEMA', `PostgreSQL schema '${db.schema}' at ${db.where} holds no hub (no schema version): check --store`);
    if (await pgHasCheckpoint(db)) throw importUnfinished(`schema ${db.schema}`);
    client = await db.pool.connect();
    // Checked out, a client has no error listener: a dying link would be an uncaught event; the next FETCH fails instead.
    client.on('error', () => undefined);
    // One snapshot for the whole export: the archive is consistent even if a hub still writes.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  } catch (err) {
    await db.end();
    throw unreachable(db, err);
  }
  const c = client;
  let cursors = 0;
  return {
    kind: 'postgres',
    async schema() {
      return `postgres-${version}`;
    },
    async count(table) {
      const sql = table === 'image_bytes' ? 'SELECT count(*) AS n FROM fw_image_chunks' : `SELECT count(*) AS n FROM ${pgName(table)}`;
      return Number((await c.query<{ n: number }>(sql)).rows[0]?.n ?? 0);
    },
    async *read(table) {
      const name = `export_${cursors++}`;
      await c.query(`DECLARE ${name} NO SCROLL CURSOR FOR ${selectOf(table)}`);
      try {
        for (;;) {
          const r = await c.query<Record<string, unknown>>(`FETCH ${table === 'image_bytes' ? 1 : CHUNK_ROWS} FROM ${name}`);
          if (r.rows.length > 0) yield r.rows.map((x) => toArchive(table, x));
          if (r.rows.length < (table === 'image_bytes' ? 1 : CHUNK_ROWS)) break;
        }
      } finally {
        await c.query(`CLOSE ${name}`).catch(() => undefined);
      }
    },
    async close() {
      await c.query('COMMIT').catch(() => undefined);
      c.release();
      await db.end();
    },
  };
}

/** PostgreSQL's bind-parameter limit is 65,535 per statement. */
const MAX_PARAMS = 60_000;

/** Opens a PostgreSQL hub as an import target (creates/migrates its schema). */
export async function openPgTarget(loc: PgLocation): Promise<ArchiveTarget> {
  const db = open(loc.url, loc.logger, 'ioc-edge-hub-import');
  try {
    await migrate(db);
  } catch (err) {
    await db.end();
    throw unreachable(db, err);
  }
  const partitions = new Partitions(db, loc.logger);
  const images = new PgImageStore({ db });
  const assembler = new ImageAssembler();
  const tables = TABLES.map((s) => s.name);
  // The checkpoint (archive.ts ImportCheckpoint): one row, updated in each write's transaction; the
  // table exists only while an import is under way (not part of the hub's schema).
  const forget = async (): Promise<void> => {
    await db.query('DROP TABLE IF EXISTS import_progress');
  };
  const mark = (c: pg.PoolClient, at: ImportCheckpoint): Promise<unknown> => c.query('UPDATE import_progress SET archive = $1, rows = $2 WHERE id = 1', [at.archive, at.rows]);
  return {
    kind: 'postgres',
    async nonEmpty() {
      for (const t of tables) if ((await db.query(`SELECT 1 FROM ${pgName(t)} LIMIT 1`)).rowCount) return t;
      return null;
    },
    async progress() {
      if (!(await pgHasCheckpoint(db))) return null;
      const r = (await db.query<{ archive: string; rows: string }>('SELECT archive, rows FROM import_progress WHERE id = 1')).rows[0];
      return r ? { archive: r.archive, rows: Number(r.rows) } : null;
    },
    async begin(archive) {
      await db.transaction(async (c) => {
        await c.query('CREATE TABLE IF NOT EXISTS import_progress (id integer PRIMARY KEY CHECK (id = 1), archive text NOT NULL, rows bigint NOT NULL)');
        await c.query('INSERT INTO import_progress (id, archive, rows) VALUES (1, $1, 0) ON CONFLICT (id) DO UPDATE SET archive = excluded.archive, rows = 0', [archive]);
      });
    },
    async clear() {
      await db.query(`TRUNCATE ${[...new Set(tables.map(pgName)), 'fw_image_chunks'].join(', ')} RESTART IDENTITY`);
      await forget();
    },
    done: forget,
    async write(table, rows, at) {
      if (table === 'image_bytes') {
        await assembler.store(rows, images);
        return;
      }
      if (table === 'dedupe') {
        // One row per range (an epoch without any: one row without a range), folded back into a multirange per epoch.
        const g: string[] = [], e: string[] = [], lo: Array<number | null> = [], hi: Array<number | null> = [], when: number[] = [];
        for (const [gateway, epoch, ranges, updated] of rows as Array<[string, string, string, number]>) {
          const list = JSON.parse(ranges) as Array<[number, number]>;
          for (const [a, b] of list.length > 0 ? list : [[null, null] as const]) {
            g.push(gateway), e.push(epoch), lo.push(a), hi.push(b), when.push(updated);
          }
        }
        await db.transaction(async (c) => {
          await c.query(
            `INSERT INTO batch_seqs AS t (gateway, epoch, seqs, added, updated_at)
             SELECT u.g, u.e, coalesce(range_agg(int8range(u.lo, u.hi, '[]')) FILTER (WHERE u.lo IS NOT NULL), '{}'), '{}', max(u.at)
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(g, e, lo, hi, at) GROUP BY u.g, u.e
             ON CONFLICT (gateway, epoch) DO UPDATE SET seqs = t.seqs + excluded.seqs, updated_at = greatest(t.updated_at, excluded.updated_at)`,
            [g, e, lo, hi, when],
          );
          await mark(c, at);
        });
        return;
      }
      let cols = TABLE.get(table)!.columns;
      let values: unknown[][];
      if (table === 'readings' || table === 'latest') {
        cols = [cols[0]!, 'ts', 'value', 'svalue', 'flags'];
        values = rows.map(([s, ts, v, flags]) => [s, ts, typeof v === 'string' ? null : v, typeof v === 'string' ? v : null, flags]);
      } else {
        const spec = TABLE.get(table)!;
        values = rows.map((r) => r.map((v, i) => (spec.bytes?.includes(spec.columns[i]!) ? fromB64(v) : v)));
      }
      if (table === 'readings' && values.length > 0) {
        let min = Infinity, max = -Infinity;
        for (const r of values) (min = Math.min(min, r[1] as number)), (max = Math.max(max, r[1] as number));
        await partitions.ensureFor(min, max);
      }
      if (table === 'readings') {
        // The hot table: one statement of five arrays, as the telemetry commit does (pg-commit.ts).
        const col = (i: number): unknown[] => values.map((r) => r[i]);
        await db.transaction(async (c) => {
          await c.query('INSERT INTO readings(series, ts, value, svalue, flags) SELECT * FROM unnest($1::int[], $2::bigint[], $3::float8[], $4::text[], $5::int2[])', [col(0), col(1), col(2), col(3), col(4)]);
          await mark(c, at);
        });
        return;
      }
      const per = Math.max(1, Math.floor(MAX_PARAMS / cols.length));
      const override = IDENTITY[table] ? ' OVERRIDING SYSTEM VALUE' : '';
      await db.transaction(async (c) => {
        for (let i = 0; i < values.length; i += per) {
          const part = values.slice(i, i + per);
          const params: unknown[] = [];
          const tuples = part.map((r) => `(${r.map((v) => `$${params.push(v)}`).join(',')})`);
          await c.query(`INSERT INTO ${table} (${cols.join(', ')})${override} VALUES ${tuples.join(',')}`, params);
        }
        await mark(c, at);
      });
    },
    async finish() {
      for (const [t, col] of Object.entries(IDENTITY)) {
        await db.query(`SELECT setval(pg_get_serial_sequence('${t}', '${col}'), coalesce((SELECT max(${col}) FROM ${t}), 0) + 1, false)`);
      }
      await partitions.ensureAhead();
    },
    close: () => db.end(),
  };
}
