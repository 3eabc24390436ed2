/**
 * Identity: who may connect and act. Issues and checks every secret (gateway
 * credentials, claims, consumer and service accounts, API tokens), keeps
 * only their hashes (secret-hash.ts), and writes an audit entry for every change.
 *
 * Verification cost: a successful check is remembered in memory as
 * (stored hash, SHA-256 of the secret) per account, so a gateway that
 * reconnects costs one store read and one SHA-256, not another scrypt.
 * A login whose stored hash is of an older scheme (scrypt, before the fast
 * hash) replaces it with the current one, compare-and-set on the old hash.
 * It sees its state only through the ports (hub/store/state-ports.ts). A new
 * secret changes the stored hash and so invalidates the entry by itself.
 */
import { timingSafeEqual } from 'node:crypto';
import { CLAIM_ID_LENGTH, CLAIM_SECRET_LENGTH, CLAIM_USERNAME, claimClientId, formatClaimToken, IocError, isValidId, parseClaimToken, type ErrorCode, type IssuedCredential, type ProvisionRequest } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { AuditPort, IdentityPort, RegistryPort } from '../store/state-ports.js';
import { integrationPatternAllowed, type Identity } from './acl.js';
import { ClaimGate } from './claim-gate.js';
import { clientIdAllowed, parseStoredRules, validateRules, type IntegrationRules } from './integration-rules.js';
import type { ApiRole, ApiTokenRow, ClaimRow, PrincipalKind } from '../store/model/identity.js';
import { fingerprint, generateSecret, hashOutdated, hashSecret, randomBase32, verifySecret, type ScryptParams } from './secret-hash.js';

/** Dependencies of {@link IdentityService}. */
export interface IdentityServiceDeps {
  logger: Logger;
  /** Principals, claims, API tokens (SQLite or PostgreSQL, hub/store/state.ts). */
  store: IdentityPort;
  registry: RegistryPort;
  audit: AuditPort;
  /** Claim expiry and issue times (ms; default Date.now). The stores stamp rows with their own clock: give both the same. */
  clock?: () => number;
  /** Hash new secrets with scrypt at this cost; default: the fast `sha256$` scheme (secret-hash.ts). */
  scrypt?: ScryptParams;
  /** Closes the MQTT connection of this client id at once, if there is one. */
  disconnect: (clientId: string, reason: string) => void;
}

/** Outcome of an MQTT login check. `returnCode` is the CONNACK code (MQTT 3.1.1 §3.2.2.3). */
export type LoginResult =
  | { ok: true; identity: Identity }
  | { ok: false; code: ErrorCode; returnCode: 2 | 4 | 5; reason: string; guess: boolean };

/** A claim as the API shows it (never its secret). */
export interface ClaimView {
  id: string;
  site: string;
  gatewayId: string | null;
  note: string | null;
  createdAt: number;
  createdBy: string;
  expiresAt: number;
  state: 'active' | 'used' | 'expired' | 'revoked';
  usedAt: number | null;
  usedBy: string | null;
  revokedAt: number | null;
}

/** The context of a change: who, from where. */
export interface Actor {
  actor: string;
  source?: string | null;
}

/** Default claim lifetime: 7 days; at most 90. */
export const DEFAULT_CLAIM_TTL_S = 7 * 24 * 3600;
export const MAX_CLAIM_TTL_S = 90 * 24 * 3600;

const TOKEN_PREFIX = 'iet_';
const CACHE_MAX = 200_000;
const API_ROLES: readonly ApiRole[] = ['viewer', 'operator', 'admin'];

/** Issues, checks and revokes identities. */
export class IdentityService {
  private readonly verified = new Map<string, { hash: string; fp: Buffer }>();
  /** Bumped on every revocation or re-key, so a login that raced with one fails. */
  private readonly epochs = new Map<string, number>();
  private dummyHash: string | null = null;
  private readonly scrypt: ScryptParams | undefined;
  private readonly clock: () => number;
  /** Dead claims refused before hashing (issue 13 item 4). */
  readonly claimGate: ClaimGate;
  /** Secret checks that missed the cache (a stored hash computed again), and stored hashes upgraded at login; for tests and metrics. */
  readonly counters = { scryptChecks: 0, hashChecks: 0, hashUpgrades: 0 };

  constructor(private readonly deps: IdentityServiceDeps) {
    this.scrypt = deps.scrypt;
    this.clock = deps.clock ?? Date.now;
    this.claimGate = new ClaimGate({ audit: deps.audit, clock: this.clock });
  }

  /** Precomputes the hash used to spend equal time on unknown usernames. */
  async start(): Promise<void> {
    this.dummyHash = await hashSecret(generateSecret(), this.scrypt);
  }

  async stop(): Promise<void> {
    this.verified.clear();
  }

  private now(): number {
    return this.clock();
  }

  /** Current epoch of an account (see {@link stillValid}). */
  epoch(key: string): number {
    return this.epochs.get(key) ?? 0;
  }

  private bump(key: string): void {
    this.epochs.set(key, this.epoch(key) + 1);
    this.verified.delete(key);
  }

  /** True when nothing was revoked or re-keyed for `key` since `epoch` was read. */
  stillValid(key: string, epoch: number): boolean {
    return this.epoch(key) === epoch;
  }

  private async check(cacheKey: string, hash: string, secret: string): Promise<boolean> {
    const fp = fingerprint(secret);
    const hit = this.verified.get(cacheKey);
    if (hit && hit.hash === hash && timingSafeEqual(hit.fp, fp)) return true;
    this.counters.hashChecks++;
    if (hash.startsWith('scrypt$')) this.counters.scryptChecks++;
    if (!(await verifySecret(secret, hash))) return false;
    if (this.verified.size >= CACHE_MAX) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(cacheKey, { hash, fp });
    return true;
  }

  /**
   * True when `secret` is the one this process last verified for `username`
   * (memory only, cleared on revocation or re-key). The failed-login lockout
   * lets such a login through to the full check: a gateway that briefly
   * tried a wrong secret (a rolled-back credential push) is not locked out of
   * its own, known-good one, while a guesser still is.
   */
  knownGood(username: string | undefined, secret: string | undefined): boolean {
    if (!username || secret === undefined) return false;
    const hit = this.verified.get(username);
    return !!hit && timingSafeEqual(hit.fp, fingerprint(secret));
  }

  private async burn(secret: string): Promise<void> {
    if (this.dummyHash) await verifySecret(secret, this.dummyHash);
  }

  /**
   * Checks an MQTT login: credentials, revocation, and that the client id is
   * the identity's own (a gateway's id exactly; `{account}` or
   * `{account}:{suffix}` for consumers and services; `prov-{claimId}` for a
   * claim). `guess` says whether the failure should count against the source
   * address (a wrong secret does; a revoked but correct one does not).
   */
  async verifyLogin(username: string | undefined, password: Buffer | undefined, clientId: string, source: string | null = null): Promise<LoginResult> {
    const bad = (reason: string): LoginResult => ({ ok: false, code: 'HUB_ERR_UNAUTHORIZED', returnCode: 4, reason, guess: true });
    if (!username || !password) return bad('no username or password');
    const secret = password.toString('utf8');
    if (username === CLAIM_USERNAME) {
      const parsed = parseClaimToken(secret);
      const row = parsed ? await this.deps.store.getClaim(parsed.claimId) : null;
      if (!parsed || !row) {
        await this.burn(secret);
        return bad('unknown claim');
      }
      const key = `claim:${row.id}`;
      const epoch = this.epoch(key);
      // A revoked, expired or long-used claim is refused from its row: no scrypt, aggregated audit (claim-gate.ts).
      const dead = this.claimGate.check(row);
      if (dead) {
        await this.claimGate.refused(row.id, dead, source);
        return { ok: false, code: dead.code, returnCode: 5, reason: dead.reason, guess: false };
      }
      if (!(await this.check(key, row.secretHash, parsed.secret))) return bad('wrong claim secret');
      if (clientId !== claimClientId(row.id)) return { ok: false, code: 'HUB_ERR_IDENTIFIER_REJECTED', returnCode: 2, reason: `a claim session must use client id '${claimClientId(row.id)}'`, guess: false };
      if (!this.stillValid(key, epoch)) return { ok: false, code: 'HUB_ERR_CLAIM_REVOKED', returnCode: 5, reason: 'claim revoked during login', guess: false };
      return { ok: true, identity: { kind: 'claim', claimId: row.id } };
    }
    const epoch = this.epoch(username);
    const row = await this.deps.store.getPrincipal(username);
    if (!row) {
      await this.burn(secret);
      return bad('unknown account');
    }
    if (!(await this.check(username, row.secretHash, secret))) return bad('wrong secret');
    if (row.revokedAt !== null || !this.stillValid(username, epoch)) {
      return { ok: false, code: 'HUB_ERR_GATEWAY_REVOKED', returnCode: 5, reason: `${row.kind} '${username}' was revoked`, guess: false };
    }
    if (hashOutdated(row.secretHash, this.scrypt)) void this.upgradeHash(username, row.secretHash, secret);
    // An integration account's client ids are the admin's globs (integration-rules.ts).
    const rules = row.kind === 'integration' ? parseStoredRules(row.rules) : null;
    if (row.kind === 'integration' && !rules) return { ok: false, code: 'HUB_ERR_STORE_IO', returnCode: 5, reason: `integration account '${username}' has no readable rules; re-create it`, guess: false };
    const idOk = row.kind === 'gateway' ? clientId === username : rules ? clientIdAllowed(rules, clientId) : clientId === username || clientId.startsWith(`${username}:`);
    if (!idOk) {
      return { ok: false, code: 'HUB_ERR_IDENTIFIER_REJECTED', returnCode: 2, reason: `client id '${clientId}' is not the identity of account '${username}'`, guess: false };
    }
    if (rules) return { ok: true, identity: { kind: 'integration', id: username, rules } };
    return { ok: true, identity: { kind: row.kind, id: username } as Identity };
  }

  /**
   * Replaces an account's stored hash of an older scheme by the current one
   * after a successful login (the plaintext is known only then). Runs beside
   * the login, never delays it; compare-and-set on the old hash, so a re-key
   * or revocation in between is never undone. A failure only leaves the old
   * hash, which still verifies: logged, retried at the next login.
   */
  private async upgradeHash(username: string, oldHash: string, secret: string): Promise<void> {
    try {
      const newHash = await hashSecret(secret, this.scrypt);
      if (!(await this.deps.store.rehashPrincipal(username, oldHash, newHash))) return;
      this.counters.hashUpgrades++;
      const hit = this.verified.get(username);
      if (hit?.hash === oldHash) this.verified.set(username, { hash: newHash, fp: hit.fp });
      this.deps.logger.debug({ account: username, scheme: newHash.slice(0, newHash.indexOf('$')) }, 'stored secret hash upgraded');
    } catch (err) {
      this.deps.logger.warn({ err, account: username }, 'could not upgrade the stored secret hash (the old one still verifies; retried at the next login)');
    }
  }

  /** Creates a one-time claim for a site; the token is returned once and stored only hashed. */
  async createClaim(c: { site: string; gatewayId?: string; ttlS?: number; note?: string }, by: Actor): Promise<{ claim: ClaimView; token: string }> {
    const ttl = c.ttlS ?? DEFAULT_CLAIM_TTL_S;
    if (!Number.isInteger(ttl) || ttl < 60 || ttl > MAX_CLAIM_TTL_S) throw new IocError('HUB_ERR_BAD_REQUEST', `claim lifetime must be 60–${MAX_CLAIM_TTL_S} s, got ${ttl}`);
    if (!c.site.trim()) throw new IocError('HUB_ERR_BAD_REQUEST', 'a claim needs a site');
    if (c.gatewayId !== undefined && (!isValidId(c.gatewayId) || c.gatewayId === CLAIM_USERNAME)) throw new IocError('HUB_ERR_BAD_REQUEST', `'${c.gatewayId}' is not a valid gateway id`);
    const id = randomBase32(CLAIM_ID_LENGTH);
    const secret = randomBase32(CLAIM_SECRET_LENGTH);
    const row = await this.deps.store.insertClaim({ id, secretHash: await hashSecret(secret, this.scrypt), site: c.site, gatewayId: c.gatewayId ?? null, note: c.note ?? null, actor: by.actor, expiresAt: this.now() + ttl * 1000 });
    await this.deps.audit.record({ actor: by.actor, source: by.source ?? null, action: 'claim.create', target: `claim:${id}`, outcome: 'ok', detail: { site: c.site, gatewayId: c.gatewayId ?? null, expiresAt: row.expiresAt } });
    return { claim: this.view(row), token: formatClaimToken(id, secret) };
  }

  /** A claim without its secret, with its state now. */
  view(c: ClaimRow): ClaimView {
    const state = c.revokedAt !== null ? 'revoked' : c.usedAt !== null ? 'used' : c.expiresAt <= this.now() ? 'expired' : 'active';
    return { id: c.id, site: c.site, gatewayId: c.gatewayId, note: c.note, createdAt: c.createdAt, createdBy: c.createdBy, expiresAt: c.expiresAt, state, usedAt: c.usedAt, usedBy: c.usedBy, revokedAt: c.revokedAt };
  }

  async listClaims(opts: { all?: boolean } = {}): Promise<ClaimView[]> {
    return (await this.deps.store.listClaims({ includeInactive: opts.all ?? false })).map((c) => this.view(c));
  }

  /** Revokes an unused claim and ends its provisioning session, if one is connected. */
  async revokeClaim(id: string, by: Actor): Promise<ClaimView> {
    const row = await this.deps.store.revokeClaim(id, by.actor);
    this.bump(`claim:${id}`);
    this.deps.disconnect(claimClientId(id), 'claim revoked');
    await this.deps.audit.record({ actor: by.actor, source: by.source ?? null, action: 'claim.revoke', target: `claim:${id}`, outcome: 'ok' });
    return this.view(row);
  }

  /**
   * Uses a claim (see {@link IdentityPort.redeemClaim}: claim, principal,
   * registry row and audit entry in one transaction) and returns the
   * gateway's new credential. A re-provisioned gateway's old connection is
   * closed: its old secret no longer exists.
   */
  async redeemClaim(claimId: string, req: ProvisionRequest, source: string | null): Promise<IssuedCredential> {
    const actor = `claim:${claimId}`;
    try {
      if (req.gatewayId === CLAIM_USERNAME) throw new IocError('HUB_ERR_CLAIM_INVALID', `'${CLAIM_USERNAME}' is reserved and cannot be a gateway id`);
      const password = generateSecret(32);
      const red = await this.deps.store.redeemClaim({
        claimId, gatewayId: req.gatewayId, transaction: req.transaction, secretHash: await hashSecret(password, this.scrypt),
        registry: { ...(req.location !== undefined ? { location: req.location } : {}), ...(req.version !== undefined ? { version: req.version } : {}), ...(req.firmware !== undefined ? { firmware: req.firmware } : {}), ...(req.hostname !== undefined ? { hostname: req.hostname } : {}) },
        audit: (red) => ({ actor, source, action: 'gateway.provision', target: `gateway:${req.gatewayId}`, outcome: 'ok', detail: { site: red.claim.site, replaced: red.replaced, repeated: red.repeated, version: req.version ?? null } }),
      });
      this.bump(req.gatewayId);
      if (red.replaced) this.deps.disconnect(req.gatewayId, red.repeated ? 'provisioning request repeated: the first answer was lost, its secret is replaced' : 're-provisioned with a new credential');
      return { gatewayId: req.gatewayId, site: red.claim.site, username: req.gatewayId, password, issuedAt: this.now() };
    } catch (err) {
      const code = err instanceof IocError ? err.code : 'HUB_ERR_STORE_IO';
      await this.deps.audit.record({ actor, source, action: 'gateway.provision', target: `gateway:${req.gatewayId}`, outcome: 'denied', detail: { code } }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Registers (or re-keys) a gateway directly, without a claim: for tests,
   * benchmarks and an admin replacing a lost credential. Returns the secret once.
   */
  async issueGatewayCredential(gatewayId: string, opts: { site?: string } & Partial<Actor> = {}): Promise<{ username: string; password: string }> {
    if (!isValidId(gatewayId) || gatewayId === CLAIM_USERNAME) throw new IocError('HUB_ERR_BAD_REQUEST', `'${gatewayId}' is not a valid gateway id`);
    const actor = opts.actor ?? 'hub';
    const password = generateSecret(32);
    const { replaced } = await this.deps.store.putPrincipal({ username: gatewayId, kind: 'gateway', secretHash: await hashSecret(password, this.scrypt), actor, replace: true });
    await this.deps.registry.register(gatewayId, { site: opts.site ?? null, actor });
    this.bump(gatewayId);
    if (replaced) this.deps.disconnect(gatewayId, 'credential re-issued');
    await this.deps.audit.record({ actor, source: opts.source ?? null, action: 'gateway.credential.issue', target: `gateway:${gatewayId}`, outcome: 'ok', detail: { replaced } });
    return { username: gatewayId, password };
  }

  /** Revokes a gateway: its connection is closed at once and it cannot log in again. */
  async revokeGateway(gatewayId: string, by: Actor): Promise<void> {
    const row = await this.deps.store.getPrincipal(gatewayId);
    if (!row || row.kind !== 'gateway') throw new IocError('HUB_ERR_NOT_FOUND', `no gateway '${gatewayId}' with a credential`);
    await this.deps.store.revokePrincipal(gatewayId, by.actor);
    this.bump(gatewayId);
    this.deps.disconnect(gatewayId, 'gateway revoked');
    this.deps.logger.warn({ gateway: gatewayId, by: by.actor }, 'gateway revoked and disconnected');
    await this.deps.audit.record({ actor: by.actor, source: by.source ?? null, action: 'gateway.revoke', target: `gateway:${gatewayId}`, outcome: 'ok' });
  }

  /** Creates an IOC consumer (read-only) or hub service account; returns its password once. */
  async createAccount(a: { username: string; kind: Exclude<PrincipalKind, 'gateway'>; rules?: unknown }, by: Actor): Promise<{ username: string; password: string; kind: PrincipalKind; rules?: IntegrationRules }> {
    if (!isValidId(a.username) || a.username === CLAIM_USERNAME) throw new IocError('HUB_ERR_BAD_REQUEST', `'${a.username}' is not a valid account name`);
    if (a.kind !== 'integration' && a.rules !== undefined) throw new IocError('HUB_ERR_BAD_REQUEST', `only integration accounts take client id and topic patterns, not a ${a.kind} account`);
    // Integration accounts (issue 14 item 9): the admin's patterns, within what the ACL could allow.
    const rules = a.kind === 'integration' ? validateRules(a.rules, integrationPatternAllowed) : undefined;
    const password = generateSecret(32);
    await this.deps.store.putPrincipal({ username: a.username, kind: a.kind, secretHash: await hashSecret(password, this.scrypt), actor: by.actor, ...(rules ? { rules: JSON.stringify(rules) } : {}) });
    await this.deps.audit.record({ actor: by.actor, source: by.source ?? null, action: 'account.create', target: `${a.kind}:${a.username}`, outcome: 'ok', ...(rules ? { detail: { rules } } : {}) });
    return { username: a.username, password, kind: a.kind, ...(rules ? { rules } : {}) };
  }

  /** Revokes a consumer or service account and closes its connections. */
  async revokeAccount(username: string, by: Actor, connectedIds: () => string[] = () => [username]): Promise<void> {
    const row = await this.deps.store.getPrincipal(username);
    if (!row || row.kind === 'gateway') throw new IocError('HUB_ERR_NOT_FOUND', `no consumer or service account '${username}' (gateways are revoked with gateway revoke)`);
    await this.deps.store.revokePrincipal(username, by.actor);
    this.bump(username);
    for (const id of connectedIds()) this.deps.disconnect(id, 'account revoked');
    await this.deps.audit.record({ actor: by.actor, source: by.source ?? null, action: 'account.revoke', target: `${row.kind}:${username}`, outcome: 'ok' });
  }

  /** Creates an API token with a role; the token string is returned once. */
  async createApiToken(t: { name: string; role: ApiRole }, by: Actor): Promise<{ id: string; name: string; role: ApiRole; token: string }> {
    if (!API_ROLES.includes(t.role)) throw new IocError('HUB_ERR_BAD_REQUEST', `role must be one of ${API_ROLES.join(', ')}`);
    if (!t.name.trim() || t.name.length > 64) throw new IocError('HUB_ERR_BAD_REQUEST', 'a token needs a name of 1–64 characters');
    const id = randomBase32(10);
    const secret = generateSecret(32);
    await this.deps.store.insertToken({ id, name: t.name, role: t.role, secretHash: await hashSecret(secret, this.scrypt), actor: by.actor });
    await this.deps.audit.record({ actor: by.actor, source: by.source ?? null, action: 'token.create', target: `token:${id}`, outcome: 'ok', detail: { name: t.name, role: t.role } });
    return { id, name: t.name, role: t.role, token: `${TOKEN_PREFIX}${id}.${secret}` };
  }

  /** The token's record when `token` is a valid, unrevoked API token; null otherwise. */
  async verifyApiToken(token: string): Promise<ApiTokenRow | null> {
    if (!token.startsWith(TOKEN_PREFIX)) return null;
    const dot = token.indexOf('.');
    if (dot < 0) return null;
    const id = token.slice(TOKEN_PREFIX.length, dot);
    const secret = token.slice(dot + 1);
    const key = `token:${id}`;
    const epoch = this.epoch(key);
    const row = await this.deps.store.getToken(id);
    if (!row) {
      await this.burn(secret);
      return null;
    }
    if (!(await this.check(key, row.secretHash, secret))) return null;
    return row.revokedAt === null && this.stillValid(key, epoch) ? row : null;
  }

  async revokeApiToken(id: string, by: Actor): Promise<void> {
    if (!(await this.deps.store.getToken(id))) throw new IocError('HUB_ERR_NOT_FOUND', `no API token '${id}'`);
    await this.deps.store.revokeToken(id, by.actor);
    this.bump(`token:${id}`);
    await this.deps.audit.record({ actor: by.actor, source: by.source ?? null, action: 'token.revoke', target: `token:${id}`, outcome: 'ok' });
  }

  /** Operator edit of a gateway's site or location, audited. */
  async updateGateway(id: string, change: { site?: string; location?: string }, by: Actor) {
    const g = await this.deps.registry.updateGateway(id, change);
    await this.deps.audit.record({ actor: by.actor, source: by.source ?? null, action: 'gateway.update', target: `gateway:${id}`, outcome: 'ok', detail: change });
    return g;
  }
}
