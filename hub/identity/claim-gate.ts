/**
 * Claims refused before any hashing (issue 13 item 4): a claim that was
 * revoked, has expired, or was used more than {@link CLAIM_RETRY_MS} ago can
 * never log in, so its login is refused from the row alone — no scrypt (which
 * is what made each attempt cost ~a CPU-millisecond or more) and no audit row
 * per attempt. Refusals are audited aggregated: one `claim.login` entry per
 * claim and reason per window (default one hour) carrying the number of
 * attempts since the previous entry, so a storm of retries from a forgotten
 * cabinet or an attacker costs one row an hour, not one per attempt.
 *
 * A used claim inside the retry window still goes through the secret check:
 * the same provisioning request may be repeated when its answer was lost
 * (identity-store.ts, CLAIM_RETRY_MS).
 */
import type { ErrorCode } from '../../contract/index.js';
import type { AuditPort } from '../store/state-ports.js';
import { CLAIM_RETRY_MS, type ClaimRow } from '../store/model/identity.js';

/** Dependencies of {@link ClaimGate}. */
export interface ClaimGateDeps {
  audit: AuditPort;
  clock: () => number;
  /** One aggregated audit entry per claim and reason per this many ms (default 1 h). */
  auditWindowMs?: number;
  /** Most (claim, reason) pairs remembered for aggregation. */
  maxTracked?: number;
}

/** Why a claim login was refused without checking its secret. */
export interface EarlyRefusal {
  code: Extract<ErrorCode, 'HUB_ERR_CLAIM_REVOKED' | 'HUB_ERR_CLAIM_EXPIRED' | 'HUB_ERR_CLAIM_USED'>;
  reason: string;
}

/** Refuses dead claims from their row alone and aggregates the audit of those refusals. */
export class ClaimGate {
  /** Logins refused before any hash was computed; audit entries written for them. */
  readonly counters = { refusedBeforeHash: 0, auditEntries: 0 };
  private readonly pending = new Map<string, { since: number; attempts: number; sources: Set<string> }>();

  constructor(private readonly deps: ClaimGateDeps) {}

  /** The refusal for a claim that can never log in, or null when its secret must be checked. */
  check(row: ClaimRow): EarlyRefusal | null {
    const now = this.deps.clock();
    if (row.revokedAt !== null) return { code: 'HUB_ERR_CLAIM_REVOKED', reason: `claim ${row.id} was revoked; ask an operator for a new one` };
    if (row.usedAt !== null && now - row.usedAt > CLAIM_RETRY_MS) return { code: 'HUB_ERR_CLAIM_USED', reason: `claim ${row.id} was already used; ask an operator for a new one` };
    if (row.expiresAt <= now) return { code: 'HUB_ERR_CLAIM_EXPIRED', reason: `claim ${row.id} expired at ${new Date(row.expiresAt).toISOString()}; ask an operator for a new one` };
    return null;
  }

  /**
   * Records one early refusal. Writes an audit entry for the first refusal of
   * a (claim, reason) and then at most one per window with the count; never throws.
   */
  async refused(claimId: string, r: EarlyRefusal, source: string | null): Promise<void> {
    this.counters.refusedBeforeHash++;
    const key = `${claimId}|${r.code}`;
    const now = this.deps.clock();
    const windowMs = this.deps.auditWindowMs ?? 60 * 60_000;
    const p = this.pending.get(key);
    if (p && now - p.since < windowMs) {
      p.attempts++;
      if (source && p.sources.size < 16) p.sources.add(source);
      return;
    }
    const previous = p ? { attempts: p.attempts, sources: [...p.sources] } : null;
    if (!p && this.pending.size >= (this.deps.maxTracked ?? 10_000)) this.pending.delete(this.pending.keys().next().value!);
    this.pending.set(key, { since: now, attempts: 0, sources: new Set() });
    this.counters.auditEntries++;
    await this.deps.audit.record({
      actor: `claim:${claimId}`, source, action: 'claim.login', target: `claim:${claimId}`, outcome: 'denied',
      detail: { code: r.code, aggregated: `at most one entry per ${Math.round(windowMs / 60_000)} min`, ...(previous ? { attemptsSinceLastEntry: previous.attempts, sourcesSinceLastEntry: previous.sources } : {}) },
    }).catch(() => undefined);
  }
}
