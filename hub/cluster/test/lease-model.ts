/**
 * Test helper for the lease tests: a stand-in for a rollout driven in waves,
 * kept only in PostgreSQL so a successor can re-drive it from database state
 * (as the firmware service's rollouts are). Each stage offers its targets
 * (idempotent inserts: a re-offer after a takeover is harmless) and then
 * advances the stage in a fenced transaction that also logs the step; "the
 * work happens once" means one log row per stage.
 */
import type pg from 'pg';
import type { SingletonContext } from '../lease.js';
import { sleep } from '../lease.js';
import type { PgPool } from '../../store/postgres/pg-pool.js';

export const WAVE_DDL = `
CREATE TABLE wave_rollout (id text PRIMARY KEY, stage integer NOT NULL, stages integer NOT NULL);
CREATE TABLE wave_offers (rollout text NOT NULL, stage integer NOT NULL, target text NOT NULL, holder text NOT NULL, PRIMARY KEY (rollout, stage, target));
CREATE TABLE wave_log (rollout text NOT NULL, from_stage integer NOT NULL, to_stage integer NOT NULL, holder text NOT NULL, epoch bigint NOT NULL);`;

/** Hooks a test uses to stop a holder at a chosen point. */
export interface WaveHooks {
  /** After the offers of `stage` went out, before the stage advances. */
  afterOffer?: (stage: number) => Promise<void>;
  /** Skip the signal check before the fenced advance (a holder that does not notice it was paused). */
  careless?: boolean;
}

/** Drives rollout `id` to its last stage from what the database says; returns when done or aborted. */
export async function driveWaves(db: PgPool, fence: SingletonContext['fence'], ctx: SingletonContext, id: string, hooks: WaveHooks = {}): Promise<void> {
  const holder = ctx.lease?.holder ?? 'local';
  while (!ctx.signal.aborted) {
    const r = (await db.query<{ stage: number; stages: number }>('SELECT stage, stages FROM wave_rollout WHERE id = $1', [id])).rows[0];
    if (!r || r.stage >= r.stages) return;
    for (const target of ['a', 'b', 'c']) {
      await db.query('INSERT INTO wave_offers(rollout, stage, target, holder) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [id, r.stage, target, holder]);
    }
    await hooks.afterOffer?.(r.stage);
    if (!hooks.careless && ctx.signal.aborted) return;
    await db.transaction(async (c: pg.PoolClient) => {
      await fence(c);
      const now = (await c.query<{ stage: number }>('SELECT stage FROM wave_rollout WHERE id = $1 FOR UPDATE', [id])).rows[0]!;
      if (now.stage !== r.stage) return; // advanced meanwhile
      await c.query('UPDATE wave_rollout SET stage = stage + 1 WHERE id = $1', [id]);
      await c.query('INSERT INTO wave_log(rollout, from_stage, to_stage, holder, epoch) VALUES ($1, $2, $3, $4, $5)', [id, r.stage, r.stage + 1, holder, ctx.lease?.epoch ?? 0]);
    });
    await sleep(30, ctx.signal);
  }
}

/** Singleton work: drive the rollout whenever there is something to do, until aborted. */
export function waveWork(db: PgPool, id: string, hooks: WaveHooks = {}): (ctx: SingletonContext) => Promise<void> {
  return async (ctx) => {
    while (!ctx.signal.aborted) {
      await driveWaves(db, (c) => ctx.fence(c), ctx, id, hooks);
      await sleep(50, ctx.signal);
    }
  };
}
