/**
 * SQL for principals (MQTT accounts), claims and API tokens in the registry
 * database. Every write runs through the connection's exclusive queue; claim
 * redemption is one transaction, so a claim can be used once even when two
 * gateways race with it.
 */
import { IocError } from '../../../contract/index.js';
import type { RegistryDb } from './registry-db.js';
import type { RedeemRequest } from '../state-ports.js';
import { appendAuditRow } from './audit-log.js';
import { type ApiRole, type ApiTokenRow, claim, CLAIM_RETRY_MS, type ClaimRow, type ExistingAccount, principal, type PrincipalKind, type PrincipalRow, redeemPlan, type Redemption, token, num, str, type Raw } from '../model/identity.js';


/** Principals, claims and API tokens. */
export class IdentityStore {
  constructor(private readonly deps: { db: RegistryDb }) {}

  private get db() {
    return this.deps.db.db;
  }

  private now(): number {
    return this.deps.db.clock();
  }

  async getPrincipal(username: string): Promise<PrincipalRow | null> {
    const r = await this.db.get<Raw>('SELECT * FROM principals WHERE username = ?', [username]);
    return r ? principal(r) : null;
  }

  async listPrincipals(kind?: PrincipalKind): Promise<PrincipalRow[]> {
    const rows = await this.db.all<Raw>(`SELECT * FROM principals ${kind ? 'WHERE kind = ?' : ''} ORDER BY username`, kind ? [kind] : []);
    return rows.map(principal);
  }

  /**
   * Creates an account, or with `replace` gives an existing one of the same
   * kind a new secret (and lifts a revocation). Refuses a name taken by
   * another kind or, without `replace`, any taken name.
   */
  async putPrincipal(p: { username: string; kind: PrincipalKind; secretHash: string; actor: string; replace?: boolean; rules?: string | null }): Promise<{ replaced: boolean }> {
    const db = this.db;
    return db.transaction(async () => {
      const old = await db.get<Raw>('SELECT kind FROM principals WHERE username = ?', [p.username]);
      if (old && (!p.replace || old.kind !== p.kind)) {
        throw new IocError(p.kind === 'gateway' ? 'HUB_ERR_GATEWAY_EXISTS' : 'HUB_ERR_BAD_REQUEST', `account '${p.username}' already exists (${String(old.kind)})`);
      }
      await db.run(
        `INSERT INTO principals(username, kind, secret_hash, created_at, created_by, rules) VALUES (?,?,?,?,?,?)
         ON CONFLICT(username) DO UPDATE SET secret_hash = excluded.secret_hash, created_at = excluded.created_at, created_by = excluded.created_by, revoked_at = NULL, revoked_by = NULL, rules = excluded.rules`,
        [p.username, p.kind, p.secretHash, this.now(), p.actor, p.rules ?? null],
      );
      return { replaced: old !== undefined };
    });
  }

  /** Marks an account revoked; false when it does not exist or already was. */
  async revokePrincipal(username: string, actor: string): Promise<boolean> {
    const res = await this.db.exclusive(() => this.db.run('UPDATE principals SET revoked_at = ?, revoked_by = ? WHERE username = ? AND revoked_at IS NULL', [this.now(), actor, username]));
    return res.changes === 1;
  }

  async rehashPrincipal(username: string, oldHash: string, newHash: string): Promise<boolean> {
    const res = await this.db.exclusive(() => this.db.run('UPDATE principals SET secret_hash = ? WHERE username = ? AND secret_hash = ?', [newHash, username, oldHash]));
    return res.changes === 1;
  }

  async insertClaim(c: { id: string; secretHash: string; site: string; gatewayId: string | null; note: string | null; actor: string; expiresAt: number }): Promise<ClaimRow> {
    await this.db.exclusive(() =>
      this.db.run('INSERT INTO claims(id, secret_hash, site, gateway_id, note, created_at, created_by, expires_at) VALUES (?,?,?,?,?,?,?,?)', [c.id, c.secretHash, c.site, c.gatewayId, c.note, this.now(), c.actor, c.expiresAt]),
    );
    return (await this.getClaim(c.id))!;
  }

  async getClaim(id: string): Promise<ClaimRow | null> {
    const r = await this.db.get<Raw>('SELECT * FROM claims WHERE id = ?', [id]);
    return r ? claim(r) : null;
  }

  async listClaims(opts: { includeInactive?: boolean; limit?: number } = {}): Promise<ClaimRow[]> {
    const where = opts.includeInactive ? '' : 'WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > ?';
    const rows = await this.db.all<Raw>(`SELECT * FROM claims ${where} ORDER BY created_at DESC LIMIT ?`, opts.includeInactive ? [opts.limit ?? 1000] : [this.now(), opts.limit ?? 1000]);
    return rows.map(claim);
  }

  /** Revokes an unused claim; throws HUB_ERR_NOT_FOUND or HUB_ERR_CLAIM_USED. Idempotent for revoked claims. */
  async revokeClaim(id: string, actor: string): Promise<ClaimRow> {
    const db = this.db;
    return db.transaction(async () => {
      const r = await db.get<Raw>('SELECT * FROM claims WHERE id = ?', [id]);
      if (!r) throw new IocError('HUB_ERR_NOT_FOUND', `no claim '${id}'`);
      const c = claim(r);
      if (c.usedAt !== null) throw new IocError('HUB_ERR_CLAIM_USED', `claim '${id}' was already used by gateway '${c.usedBy}'; revoke the gateway instead`);
      if (c.revokedAt === null) await db.run('UPDATE claims SET revoked_at = ?, revoked_by = ? WHERE id = ?', [this.now(), actor, id]);
      return claim((await db.get<Raw>('SELECT * FROM claims WHERE id = ?', [id]))!);
    });
  }

  /**
   * Uses a claim to register `gatewayId` with `secretHash`, atomically: the
   * claim must be unused, unrevoked and unexpired; a claim bound to a gateway
   * id registers only that id; an id that is already registered (also a
   * revoked one) is re-provisioned only by a claim bound to it.
   *
   * A used claim answers again only the same request repeated (same gateway,
   * same `transaction`, within {@link CLAIM_RETRY_MS} of its use and before
   * it expires, while the credential it issued is still the gateway's and not
   * revoked): the answer to the first one was lost, so the gateway gets a
   * fresh secret, which replaces the lost one.
   *
   * The audit entry `r.audit(result)` is appended to the chain in the same
   * transaction (audit and identities share registry.sqlite).
   */
  async redeemClaim(r: RedeemRequest): Promise<Redemption> {
    const db = this.db;
    const now = this.now();
    return db.transaction(async () => {
      const raw = await db.get<Raw>('SELECT * FROM claims WHERE id = ?', [r.claimId]);
      const c = raw ? claim(raw) : null;
      const ex = await db.get<Raw>('SELECT kind, created_by, revoked_at FROM principals WHERE username = ?', [r.gatewayId]);
      const plan = redeemPlan(c, str(raw?.used_transaction), ex ? { kind: String(ex.kind), createdBy: String(ex.created_by), revokedAt: num(ex.revoked_at) } : null, r, now);
      const cl = c!; // redeemPlan refused a missing claim
      if (plan === 'repeat') {
        await db.run('UPDATE principals SET secret_hash = ?, created_at = ? WHERE username = ?', [r.secretHash, now, r.gatewayId]);
        await db.run('UPDATE registry_gateways SET updated_at = ? WHERE id = ?', [now, r.gatewayId]);
        const again: Redemption = { claim: cl, replaced: true, repeated: true };
        await appendAuditRow(db, r.audit(again), now);
        return again;
      }
      const actor = `claim:${cl.id}`;
      await db.run('UPDATE claims SET used_at = ?, used_by = ?, used_transaction = ? WHERE id = ?', [now, r.gatewayId, r.transaction, cl.id]);
      await db.run(
        `INSERT INTO principals(username, kind, secret_hash, created_at, created_by) VALUES (?, 'gateway', ?, ?, ?)
         ON CONFLICT(username) DO UPDATE SET secret_hash = excluded.secret_hash, created_at = excluded.created_at, created_by = excluded.created_by, revoked_at = NULL, revoked_by = NULL`,
        [r.gatewayId, r.secretHash, now, actor],
      );
      const g = r.registry;
      await db.run(
        `INSERT INTO registry_gateways(id, site, location, version, firmware, hostname, registered_at, registered_by, updated_at) VALUES (?,?,?,?,?,?,?,?,?)
         ON CONFLICT(id) DO UPDATE SET site = excluded.site, location = coalesce(excluded.location, location), version = coalesce(excluded.version, version),
           firmware = coalesce(excluded.firmware, firmware), hostname = coalesce(excluded.hostname, hostname),
           registered_at = excluded.registered_at, registered_by = excluded.registered_by, updated_at = excluded.updated_at`,
        [r.gatewayId, cl.site, g.location ?? null, g.version ?? null, g.firmware ?? null, g.hostname ?? null, now, actor, now],
      );
      const done: Redemption = { claim: { ...cl, usedAt: now, usedBy: r.gatewayId }, replaced: plan === 'replace', repeated: false };
      await appendAuditRow(db, r.audit(done), now);
      return done;
    });
  }

  async insertToken(t: { id: string; name: string; role: ApiRole; secretHash: string; actor: string }): Promise<ApiTokenRow> {
    await this.db.exclusive(() => this.db.run('INSERT INTO api_tokens(id, name, role, secret_hash, created_at, created_by) VALUES (?,?,?,?,?,?)', [t.id, t.name, t.role, t.secretHash, this.now(), t.actor]));
    return (await this.getToken(t.id))!;
  }

  async getToken(id: string): Promise<ApiTokenRow | null> {
    const r = await this.db.get<Raw>('SELECT * FROM api_tokens WHERE id = ?', [id]);
    return r ? token(r) : null;
  }

  async listTokens(): Promise<ApiTokenRow[]> {
    return (await this.db.all<Raw>('SELECT * FROM api_tokens ORDER BY created_at')).map(token);
  }

  async revokeToken(id: string, actor: string): Promise<boolean> {
    const res = await this.db.exclusive(() => this.db.run('UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL', [this.now(), actor, id]));
    return res.changes === 1;
  }
}
