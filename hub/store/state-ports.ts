/**
 * The rest of the hub's durable state as storage ports (issue 15, item 1):
 * registry, identities (principals, claims, API tokens), the audit chain,
 * configuration versions and reports, firmware manifests, images and
 * rollouts. The SQLite classes named on each interface satisfy them
 * structurally (checked by hub/store/test/state-ports.test.ts at type-check
 * time); the PostgreSQL ones live in hub/store/postgres/. Services depend on
 * these interfaces only; hub/store/state.ts opens one backend's set.
 *
 * Work spanning several stores is one port operation, one transaction in
 * each backend, never a shared connection: claim redemption
 * ({@link IdentityPort.redeemClaim}) writes the claim, the principal, the
 * registry row and the audit entry together. Registry, identity and audit
 * of one backend therefore share one database (registry.sqlite, or the
 * PostgreSQL schema).
 */
import type { GatewayStatus } from '../../contract/index.js';
import type { AuditEntry, AuditRecord, AuditVerification } from './model/audit.js';
import type { ApiRole, ApiTokenRow, ClaimRow, PrincipalKind, PrincipalRow, Redemption } from './model/identity.js';
import type { RegistryDevice, RegistryGateway } from './model/registry.js';

/** What {@link IdentityPort.redeemClaim} is asked. */
export interface RedeemRequest {
  claimId: string;
  gatewayId: string;
  /** The gateway's provisioning transaction id: the same request repeated (a lost answer) is recognised by it. */
  transaction: string;
  secretHash: string;
  registry: { location?: string; version?: string; firmware?: string; hostname?: string };
  /** The audit entry of a successful redemption, written in the same transaction. */
  audit: (r: Redemption) => AuditRecord;
}

/** Gateways' site, location and versions; field devices (SQLite: `RegistryStore`, PostgreSQL: `PgRegistry`). */
export interface RegistryPort {
  getGateway(id: string): Promise<RegistryGateway | null>;
  listGateways(): Promise<RegistryGateway[]>;
  register(id: string, r: { site: string | null; actor: string }): Promise<void>;
  updateGateway(id: string, change: { site?: string; location?: string }): Promise<RegistryGateway>;
  recordStatus(gw: string, status: GatewayStatus): Promise<void>;
  listDevices(q?: { gateway?: string; includeRemoved?: boolean }): Promise<RegistryDevice[]>;
}

/** Principals with hashed secrets, one-time claims, API tokens (SQLite: `IdentityStore`, PostgreSQL: `PgIdentity`). Only hashes are stored. */
export interface IdentityPort {
  getPrincipal(username: string): Promise<PrincipalRow | null>;
  listPrincipals(kind?: PrincipalKind): Promise<PrincipalRow[]>;
  putPrincipal(p: { username: string; kind: PrincipalKind; secretHash: string; actor: string; replace?: boolean; rules?: string | null }): Promise<{ replaced: boolean }>;
  revokePrincipal(username: string, actor: string): Promise<boolean>;
  /** Replaces the secret hash only while it is still `oldHash` (a hash-scheme upgrade at login: same secret, not a re-key); true when replaced. */
  rehashPrincipal(username: string, oldHash: string, newHash: string): Promise<boolean>;
  insertClaim(c: { id: string; secretHash: string; site: string; gatewayId: string | null; note: string | null; actor: string; expiresAt: number }): Promise<ClaimRow>;
  getClaim(id: string): Promise<ClaimRow | null>;
  listClaims(opts?: { includeInactive?: boolean; limit?: number }): Promise<ClaimRow[]>;
  revokeClaim(id: string, actor: string): Promise<ClaimRow>;
  /**
   * One transaction: the claim used, the gateway's principal and registry
   * row written, and the audit entry `audit(redemption)` appended to the
   * chain — all or nothing, exactly once per claim, also between hubs. A
   * refusal throws its IocError and writes nothing (the caller audits it).
   */
  redeemClaim(r: RedeemRequest): Promise<Redemption>;
  insertToken(t: { id: string; name: string; role: ApiRole; secretHash: string; actor: string }): Promise<ApiTokenRow>;
  getToken(id: string): Promise<ApiTokenRow | null>;
  listTokens(): Promise<ApiTokenRow[]>;
  revokeToken(id: string, actor: string): Promise<boolean>;
}

/**
 * The tamper-evident audit chain (SQLite: `AuditLog`, PostgreSQL: `PgAudit`).
 * Appends are serialised, also between hub processes on one database: each
 * entry's hash covers the one before, and the chain never forks.
 */
export interface AuditPort {
  record(e: AuditRecord): Promise<void>;
  list(q?: { actor?: string; action?: string; since?: number; limit?: number }): Promise<AuditEntry[]>;
  verify(expect?: { n: number; hash: string }): Promise<AuditVerification>;
}

/**
 * Configuration (SQLite: `ConfigStore`, PostgreSQL: `PgConfigStore`) and
 * firmware (SQLite: `FirmwareDb`, PostgreSQL: `PgFirmwareDb`) are defined
 * beside their services, with every method those services call:
 * hub/config/config-port.ts and hub/firmware/firmware-port.ts.
 */
export type { ConfigPort } from '../config/config-port.js';
export type { FirmwarePort } from '../firmware/firmware-port.js';
