/**
 * The hub side of provisioning. A claim session publishes a request on
 * `ioc/v1/provision/{claimId}/request`; this service validates it, redeems
 * the claim (one transaction: claim used, gateway registered, credential
 * hash stored) and answers on `…/response` with `{status, data | error,
 * transaction}`. It runs inside `authorizePublish`, so the request's PUBACK
 * goes out only after the registration is committed.
 */
import { isIocError, parseJson, topics, validateProvisionRequest, type ProvisionResponse } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { IdentityService } from './identity-service.js';

/** Dependencies of {@link Provisioning}. */
export interface ProvisioningDeps {
  logger: Logger;
  identity: IdentityService;
  /** Publishes as the hub itself (QoS 1, not retained). */
  publish: (topic: string, payload: Buffer) => Promise<void>;
  /** False on a hub without authentication: requests are answered with HUB_ERR_PROVISIONING_DISABLED. */
  enabled: boolean;
  /** Firmware signing keys handed to every provisioned gateway (issue 7). */
  firmwareKeys?: readonly string[];
}

/** Answers provisioning requests. */
export class Provisioning {
  /** Requests answered, by outcome. */
  readonly counters = { ok: 0, refused: 0 };

  constructor(private readonly deps: ProvisioningDeps) {}

  /** Handles one request of claim session `claimId`; never throws. */
  async onRequest(claimId: string, payload: Buffer, source: string | null): Promise<void> {
    const { logger } = this.deps;
    let transaction = 'unknown';
    let response: ProvisionResponse;
    try {
      const doc = parseJson(payload);
      const t = (doc as { transaction?: unknown } | null)?.transaction;
      if (typeof t === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(t)) transaction = t;
      const req = validateProvisionRequest(doc);
      if (!this.deps.enabled) {
        response = { v: 1, transaction, status: 'error', error: { code: 'HUB_ERR_PROVISIONING_DISABLED', message: 'this hub runs without authentication: configure the gateway without a claim (HUB_ERR_PROVISIONING_DISABLED)' } };
      } else {
        const data = await this.deps.identity.redeemClaim(claimId, req, source);
        const keys = this.deps.firmwareKeys;
        response = { v: 1, transaction, status: 'ok', data: keys && keys.length > 0 ? { ...data, firmwareKeys: [...keys] } : data };
        logger.info({ claim: claimId, gateway: data.gatewayId, site: data.site }, 'gateway provisioned');
      }
    } catch (err) {
      const error = isIocError(err) ? { code: err.code, message: err.message } : { code: 'HUB_ERR_STORE_IO', message: 'the hub could not register the gateway; try again (HUB_ERR_STORE_IO)' };
      if (!isIocError(err)) logger.error({ err, claim: claimId }, 'provisioning failed');
      else logger.warn({ claim: claimId, code: err.code, reason: err.message }, 'provisioning refused');
      response = { v: 1, transaction, status: 'error', error };
    }
    if (response.status === 'ok') this.counters.ok++;
    else this.counters.refused++;
    await this.deps.publish(topics.provisionResponse(claimId), Buffer.from(JSON.stringify(response))).catch((err: unknown) => logger.error({ err, claim: claimId }, 'provisioning response not sent'));
  }
}
