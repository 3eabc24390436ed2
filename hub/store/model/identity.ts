/**
 * Principals (MQTT accounts), claims and API tokens as records, and the redemption decision: the model both store backends share.
 */
import { IocError } from '../../../contract/index.js';

/** Kinds of MQTT account. Claims are not principals: they live in their own table. */
export type PrincipalKind = 'gateway' | 'consumer' | 'service' | 'integration';

/** An MQTT account. */
export interface PrincipalRow {
  username: string;
  kind: PrincipalKind;
  secretHash: string;
  createdAt: number;
  createdBy: string;
  revokedAt: number | null;
  revokedBy: string | null;
  /** An integration account's client id and topic patterns (JSON of IntegrationRules); null for other kinds. */
  rules: string | null;
}

/** A claim token's record (its secret only as a hash). */
export interface ClaimRow {
  id: string;
  secretHash: string;
  site: string;
  gatewayId: string | null;
  note: string | null;
  createdAt: number;
  createdBy: string;
  expiresAt: number;
  usedAt: number | null;
  usedBy: string | null;
  revokedAt: number | null;
  revokedBy: string | null;
}

/** API roles, each including the rights of the ones before it. */
export type ApiRole = 'viewer' | 'operator' | 'admin';

/** An API token's record. */
export interface ApiTokenRow {
  id: string;
  name: string;
  role: ApiRole;
  secretHash: string;
  createdAt: number;
  createdBy: string;
  revokedAt: number | null;
  revokedBy: string | null;
}

/** What a successful redemption registered. */
export interface Redemption {
  claim: ClaimRow;
  replaced: boolean;
  /** The same request asked again (its answer was lost): a fresh secret replaced the one issued first. */
  repeated: boolean;
}

/** How long after its use a claim still answers the same request again (a lost answer). */
export const CLAIM_RETRY_MS = 60 * 60_000;

/** A database row, either backend. */
export type Raw = Record<string, unknown>;

/** A nullable column as a number. */
export const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
/** A nullable column as a string. */
export const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** A `principals` row (either backend) as a record. */
export function principal(r: Raw): PrincipalRow {
  return { username: String(r.username), kind: r.kind as PrincipalKind, secretHash: String(r.secret_hash), createdAt: Number(r.created_at), createdBy: String(r.created_by), revokedAt: num(r.revoked_at), revokedBy: str(r.revoked_by), rules: str(r.rules) };
}

/** A `claims` row (either backend) as a record. */
export function claim(r: Raw): ClaimRow {
  return {
    id: String(r.id), secretHash: String(r.secret_hash), site: String(r.site), gatewayId: str(r.gateway_id), note: str(r.note),
    createdAt: Number(r.created_at), createdBy: String(r.created_by), expiresAt: Number(r.expires_at),
    usedAt: num(r.used_at), usedBy: str(r.used_by), revokedAt: num(r.revoked_at), revokedBy: str(r.revoked_by),
  };
}

/** An `api_tokens` row (either backend) as a record. */
export function token(r: Raw): ApiTokenRow {
  return { id: String(r.id), name: String(r.name), role: r.role as ApiRole, secretHash: String(r.secret_hash), createdAt: Number(r.created_at), createdBy: String(r.created_by), revokedAt: num(r.revoked_at), revokedBy: str(r.revoked_by) };
}

/** The gateway's existing account, as a redemption sees it. */
export interface ExistingAccount {
  kind: string;
  createdBy: string;
  revokedAt: number | null;
}

/**
 * Decides a redemption from the rows read inside its transaction (both
 * backends): `repeat` (the same request again, see
 * {@link IdentityStore.redeemClaim}), `create` (a new gateway) or `replace`
 * (re-provisioning by a claim bound to it). Throws the IocError that refuses
 * it otherwise; checks in this order: unknown, revoked, used, expired,
 * bound to another id, id taken.
 */
export function redeemPlan(c: ClaimRow | null, usedTransaction: string | null, existing: ExistingAccount | null, r: { claimId: string; gatewayId: string; transaction: string }, now: number): 'repeat' | 'create' | 'replace' {
  if (!c) throw new IocError('HUB_ERR_CLAIM_INVALID', `no claim '${r.claimId}'`);
  if (c.revokedAt !== null) throw new IocError('HUB_ERR_CLAIM_REVOKED', `claim '${c.id}' was revoked by ${c.revokedBy} at ${new Date(c.revokedAt).toISOString()}; ask an operator for a new one`);
  if (c.usedAt !== null) {
    const repeat = c.usedBy === r.gatewayId && usedTransaction === r.transaction && now - c.usedAt <= CLAIM_RETRY_MS && now < c.expiresAt
      && existing !== null && existing.createdBy === `claim:${c.id}` && existing.revokedAt === null;
    if (!repeat) throw new IocError('HUB_ERR_CLAIM_USED', `claim '${c.id}' was already used at ${new Date(c.usedAt).toISOString()}; a claim works once (a lost answer can be asked for again from the same gateway for ${CLAIM_RETRY_MS / 60_000} minutes) — ask an operator for a new one`);
    return 'repeat';
  }
  if (c.expiresAt <= now) throw new IocError('HUB_ERR_CLAIM_EXPIRED', `claim '${c.id}' expired at ${new Date(c.expiresAt).toISOString()}; ask an operator for a new one`);
  if (c.gatewayId !== null && c.gatewayId !== r.gatewayId) throw new IocError('HUB_ERR_CLAIM_INVALID', `claim '${c.id}' is for gateway '${c.gatewayId}', not '${r.gatewayId}'`);
  if (existing && (existing.kind !== 'gateway' || c.gatewayId !== r.gatewayId)) {
    throw new IocError('HUB_ERR_GATEWAY_EXISTS', `'${r.gatewayId}' is already registered; to replace that gateway an operator must create a claim bound to it (--gateway ${r.gatewayId})`);
  }
  return existing ? 'replace' : 'create';
}
