/**
 * Principals (MQTT accounts), one-time claims and API tokens on PostgreSQL
 * ({@link IdentityPort}); the SQLite one is hub/store/sqlite/identity-store.ts,
 * whose row mapping and redemption rules (`redeemPlan`) this file reuses.
 *
 * Cluster-safe: a redemption locks the claim's row (`SELECT … FOR UPDATE`)
 * before deciding, so of two hubs redeeming one claim at once the second
 * waits, then reads it used and is refused (or, for the same request
 * repeated, answered as a repeat). A new gateway's account is inserted with
 * ON CONFLICT DO NOTHING: two claims racing for one new gateway id cannot
 * both create it. The claim, the account, the registry row and the audit
 * entry commit in one transaction; locks are taken in the order claim,
 * account, registry row, audit chain.
 */
import type pg from 'pg';
import { IocError } from '../../../contract/index.js';
import { claim, principal, redeemPlan, token, type ApiRole, type ApiTokenRow, type ClaimRow, type PrincipalKind, type PrincipalRow, type Redemption } from '../model/identity.js';
import type { IdentityPort, RedeemRequest } from '../state-ports.js';
import { appendAuditPg, type PgStateDeps } from './pg-audit.js';

/** Principals, claims and API tokens in PostgreSQL. */
export class PgIdentity implements IdentityPort {
  private readonly clock: () => number;

  constructor(private readonly deps: PgStateDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  private get db() {
    return this.deps.db;
  }

  async getPrincipal(username: string): Promise<PrincipalRow | null> {
    const r = (await this.db.query('SELECT * FROM principals WHERE username = $1', [username])).rows[0];
    return r ? principal(r) : null;
  }

  async listPrincipals(kind?: PrincipalKind): Promise<PrincipalRow[]> {
    const rows = await this.db.query(`SELECT * FROM principals ${kind ? 'WHERE kind = $1' : ''} ORDER BY username`, kind ? [kind] : []);
    return rows.rows.map(principal);
  }

  /** See IdentityStore.putPrincipal. Race-free between hubs: the account row is locked, or inserted only if still absent. */
  async putPrincipal(p: { username: string; kind: PrincipalKind; secretHash: string; actor: string; replace?: boolean; rules?: string | null }): Promise<{ replaced: boolean }> {
    return this.db.transaction(async (c) => {
      // Two rounds at most: an insert that lost a race sees the winner's row on the second.
      for (let round = 0; ; round++) {
        const old = (await c.query<{ kind: string }>('SELECT kind FROM principals WHERE username = $1 FOR UPDATE', [p.username])).rows[0];
        if (old && (!p.replace || old.kind !== p.kind)) {
          throw new IocError(p.kind === 'gateway' ? 'HUB_ERR_GATEWAY_EXISTS' : 'HUB_ERR_BAD_REQUEST', `account '${p.username}' already exists (${old.kind})`);
        }
        const now = this.clock();
        if (old) {
          await c.query('UPDATE principals SET secret_hash = $2, created_at = $3, created_by = $4, revoked_at = NULL, revoked_by = NULL, rules = $5 WHERE username = $1', [p.username, p.secretHash, now, p.actor, p.rules ?? null]);
          return { replaced: true };
        }
        const ins = await c.query('INSERT INTO principals(username, kind, secret_hash, created_at, created_by, rules) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (username) DO NOTHING', [p.username, p.kind, p.secretHash, now, p.actor, p.rules ?? null]);
        if (ins.rowCount === 1) return { replaced: false };
        if (round > 0) throw new IocError('HUB_ERR_STORE_IO', `account '${p.username}' changed concurrently twice; try again`);
      }
    });
  }

  /** Marks an account revoked; false when it does not exist or already was. */
  async revokePrincipal(username: string, actor: string): Promise<boolean> {
    const res = await this.db.query('UPDATE principals SET revoked_at = $1, revoked_by = $2 WHERE username = $3 AND revoked_at IS NULL', [this.clock(), actor, username]);
    return res.rowCount === 1;
  }

  async rehashPrincipal(username: string, oldHash: string, newHash: string): Promise<boolean> {
    const res = await this.db.query('UPDATE principals SET secret_hash = $1 WHERE username = $2 AND secret_hash = $3', [newHash, username, oldHash]);
    return res.rowCount === 1;
  }

  async insertClaim(c: { id: string; secretHash: string; site: string; gatewayId: string | null; note: string | null; actor: string; expiresAt: number }): Promise<ClaimRow> {
    const res = await this.db.query(
      'INSERT INTO claims(id, secret_hash, site, gateway_id, note, created_at, created_by, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING *',
      [c.id, c.secretHash, c.site, c.gatewayId, c.note, this.clock(), c.actor, c.expiresAt],
    );
    return claim(res.rows[0]!);
  }

  async getClaim(id: string): Promise<ClaimRow | null> {
    const r = (await this.db.query('SELECT * FROM claims WHERE id = $1', [id])).rows[0];
    return r ? claim(r) : null;
  }

  async listClaims(opts: { includeInactive?: boolean; limit?: number } = {}): Promise<ClaimRow[]> {
    const rows = opts.includeInactive
      ? await this.db.query('SELECT * FROM claims ORDER BY created_at DESC LIMIT $1', [opts.limit ?? 1000])
      : await this.db.query('SELECT * FROM claims WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 ORDER BY created_at DESC LIMIT $2', [this.clock(), opts.limit ?? 1000]);
    return rows.rows.map(claim);
  }

  /** Revokes an unused claim; throws HUB_ERR_NOT_FOUND or HUB_ERR_CLAIM_USED. Idempotent for revoked claims. */
  async revokeClaim(id: string, actor: string): Promise<ClaimRow> {
    return this.db.transaction(async (c) => {
      const r = (await c.query('SELECT * FROM claims WHERE id = $1 FOR UPDATE', [id])).rows[0];
      if (!r) throw new IocError('HUB_ERR_NOT_FOUND', `no claim '${id}'`);
      const row = claim(r);
      if (row.usedAt !== null) throw new IocError('HUB_ERR_CLAIM_USED', `claim '${id}' was already used by gateway '${row.usedBy}'; revoke the gateway instead`);
      if (row.revokedAt !== null) return row;
      return claim((await c.query('UPDATE claims SET revoked_at = $1, revoked_by = $2 WHERE id = $3 RETURNING *', [this.clock(), actor, id])).rows[0]!);
    });
  }

  /** See IdentityStore.redeemClaim; one transaction with the claim's row locked first. */
  async redeemClaim(r: RedeemRequest): Promise<Redemption> {
    return this.db.transaction(async (c) => {
      const now = this.clock();
      const raw = (await c.query('SELECT * FROM claims WHERE id = $1 FOR UPDATE', [r.claimId])).rows[0];
      const cl = raw ? claim(raw) : null;
      const ex = (await c.query('SELECT kind, created_by, revoked_at FROM principals WHERE username = $1 FOR UPDATE', [r.gatewayId])).rows[0];
      const plan = redeemPlan(cl, (raw?.used_transaction as string | null) ?? null, ex ? { kind: String(ex.kind), createdBy: String(ex.created_by), revokedAt: ex.revoked_at === null ? null : Number(ex.revoked_at) } : null, r, now);
      const claimRow = cl!; // redeemPlan refused a missing claim
      if (plan === 'repeat') {
        await c.query('UPDATE principals SET secret_hash = $1, created_at = $2 WHERE username = $3', [r.secretHash, now, r.gatewayId]);
        await c.query('UPDATE registry_gateways SET updated_at = $1 WHERE id = $2', [now, r.gatewayId]);
        const again: Redemption = { claim: claimRow, replaced: true, repeated: true };
        await appendAuditPg(c, r.audit(again), now);
        return again;
      }
      const actor = `claim:${claimRow.id}`;
      await c.query('UPDATE claims SET used_at = $1, used_by = $2, used_transaction = $3 WHERE id = $4', [now, r.gatewayId, r.transaction, claimRow.id]);
      await this.writeGatewayAccount(c, plan, r, actor, now);
      const g = r.registry;
      await c.query(
        `INSERT INTO registry_gateways(id, site, location, version, firmware, hostname, registered_at, registered_by, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$7)
         ON CONFLICT (id) DO UPDATE SET site = excluded.site, location = coalesce(excluded.location, registry_gateways.location),
           version = coalesce(excluded.version, registry_gateways.version), firmware = coalesce(excluded.firmware, registry_gateways.firmware),
           hostname = coalesce(excluded.hostname, registry_gateways.hostname),
           registered_at = excluded.registered_at, registered_by = excluded.registered_by, updated_at = excluded.updated_at`,
        [r.gatewayId, claimRow.site, g.location ?? null, g.version ?? null, g.firmware ?? null, g.hostname ?? null, now, actor],
      );
      const done: Redemption = { claim: { ...claimRow, usedAt: now, usedBy: r.gatewayId }, replaced: plan === 'replace', repeated: false };
      await appendAuditPg(c, r.audit(done), now);
      return done;
    });
  }

  /** The redeemed gateway's account: replaced (its row is locked), or created unless another hub created it a moment ago. */
  private async writeGatewayAccount(c: pg.PoolClient, plan: 'create' | 'replace', r: RedeemRequest, actor: string, now: number): Promise<void> {
    if (plan === 'replace') {
      await c.query('UPDATE principals SET secret_hash = $2, created_at = $3, created_by = $4, revoked_at = NULL, revoked_by = NULL WHERE username = $1', [r.gatewayId, r.secretHash, now, actor]);
      return;
    }
    const ins = await c.query("INSERT INTO principals(username, kind, secret_hash, created_at, created_by) VALUES ($1, 'gateway', $2, $3, $4) ON CONFLICT (username) DO NOTHING", [r.gatewayId, r.secretHash, now, actor]);
    if (ins.rowCount !== 1) {
      throw new IocError('HUB_ERR_GATEWAY_EXISTS', `'${r.gatewayId}' was registered by another request at the same moment; to replace that gateway an operator must create a claim bound to it (--gateway ${r.gatewayId})`);
    }
  }

  async insertToken(t: { id: string; name: string; role: ApiRole; secretHash: string; actor: string }): Promise<ApiTokenRow> {
    const res = await this.db.query('INSERT INTO api_tokens(id, name, role, secret_hash, created_at, created_by) VALUES ($1,$2,$3,$4,$5,$6) RETURNING *', [t.id, t.name, t.role, t.secretHash, this.clock(), t.actor]);
    return token(res.rows[0]!);
  }

  async getToken(id: string): Promise<ApiTokenRow | null> {
    const r = (await this.db.query('SELECT * FROM api_tokens WHERE id = $1', [id])).rows[0];
    return r ? token(r) : null;
  }

  async listTokens(): Promise<ApiTokenRow[]> {
    return (await this.db.query('SELECT * FROM api_tokens ORDER BY created_at')).rows.map(token);
  }

  async revokeToken(id: string, actor: string): Promise<boolean> {
    const res = await this.db.query('UPDATE api_tokens SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL', [this.clock(), actor, id]);
    return res.rowCount === 1;
  }
}
