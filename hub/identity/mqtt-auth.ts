/**
 * The broker's authentication and authorisation hooks (Aedes `preConnect`,
 * `authenticate`, `authorizePublish`, `authorizeSubscribe`), each a small
 * function over the identity service, the ACL and the failed-login limiter.
 *
 * - every CONNECT is authenticated; the client id must be the identity's;
 * - a zero-length client id with CleanSession = 0 is refused with CONNACK
 *   0x02, which Aedes itself lets through (MQTT 3.1.1 §3.1.3.1, [MQTT-3.1.3-8]);
 * - failed logins are counted per (source address, username), and ten times
 *   looser per source address: one client guessing behind a NAT or a load
 *   balancer cannot lock another identity out of the same address. A locked
 *   out pair or source gets CONNACK 0x05 without its secret being checked.
 *   The source is the PROXY protocol's client address when a trusted load
 *   balancer sent one (hub/broker/proxy-protocol.ts);
 * - a consumer, service or integration account has at most
 *   `maxConnections` connections at once (client ids `name:…`);
 * - a refused PUBLISH closes the connection (MQTT 3.1.1 has no negative
 *   PUBACK; §3.3.5 lets the server drop it, closing is the safe choice);
 * - a refused SUBSCRIBE topic gets 0x80 in the SUBACK, others are granted
 *   (MQTT 3.1.1 §3.9.3).
 *
 * The broker runs its ingest after {@link MqttAuth.authorizePublish} allows a
 * publish, so nothing unauthorised reaches the store.
 */
import type { AedesOptions, AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import { IocError, parseProvisionTopic, type ErrorCode } from '../../contract/index.js';
import { DEFAULT_BROKER_LIMITS } from '../broker/broker-limits.js';
import type { Logger } from '../../lib/index.js';
import { canPublish, canSubscribe, describe, gatewayOf, type Identity } from './acl.js';
import type { IdentityService } from './identity-service.js';
import type { Provisioning } from './provisioning.js';
import type { LoginLimiter } from './rate-limiter.js';

/** Dependencies of {@link MqttAuth}. */
export interface MqttAuthDeps {
  logger: Logger;
  identity: IdentityService;
  /** In memory on one node, in Redis on a cluster (redis-limiter.ts). */
  limiter: LoginLimiter;
  provisioning: Provisioning;
  /** `open`: no authentication or ACL (loopback tests and demos); the MQTT spec checks still apply. */
  mode: 'required' | 'open';
  /** Connected client ids of an account (`name` or `name:…`), for the per-account connection bound. */
  connections?: (account: string) => string[];
  /** Connections at once per consumer/service/integration account (default 64). */
  maxConnections?: number;
  /**
   * Login checks at once (default 8, broker-limits.ts): the identity reads (and
   * scrypt, for hashes of that scheme) share libuv's thread pool (4 threads)
   * with the SQLite commits, so a storm of logins must leave threads for the
   * commits that PUBACKs wait for. Further CONNECTs wait their turn.
   */
  maxConcurrentLogins?: number;
  /** CONNECTs waiting for a login check; past it they get CONNACK 3 (server unavailable). Default 2,000. */
  maxWaitingLogins?: number;
}

/** The per-source failure bucket allows this many times the failures of a (source, username) pair. */
export const MQTT_SOURCE_FAILURE_FACTOR = 10;

interface Session {
  identity: Identity;
  key: string;
  epoch: number;
}

function connackError(code: ErrorCode, detail: string, returnCode: 2 | 3 | 4 | 5): AuthenticateError {
  return Object.assign(new IocError(code, detail), { returnCode }) as unknown as AuthenticateError;
}

/** Source address of a client's connection (the packet guard or the raw socket carries it). */
export function remoteAddress(client: Client | null): string {
  return (client?.conn as { remoteAddress?: string } | undefined)?.remoteAddress ?? 'unknown';
}

/** Aedes hooks enforcing identity and the ACL. */
export class MqttAuth {
  private readonly sessions = new WeakMap<Client, Session>();
  private readonly emptyIdPersistent = new WeakSet<Client>();
  private readonly subscribeRefusalLogged = new WeakSet<Client>();
  /** Outcomes, for metrics and benchmarks. */
  readonly counters = { loginsOk: 0, loginsFailed: 0, lockedOut: 0, publishDenied: 0, subscribeDenied: 0, tooManyConnections: 0, loginsBusy: 0, peakConcurrentLogins: 0 };
  /**
   * Where login time goes (issue 14.12, bench:reconnect-storm): milliseconds spent waiting for one of
   * the `maxConcurrentLogins` slots, and inside the check itself (identity read + secret hash), summed over
   * `checks` logins. Check time per login far above scrypt's cost means the check waits for threads or
   * the event loop, not for CPU.
   */
  readonly timing = { slotWaitMs: 0, checkMs: 0, checks: 0 };
  private activeLogins = 0;
  private readonly loginQueue: Array<() => void> = [];

  constructor(private readonly deps: MqttAuthDeps) {}

  /** The options to merge into Aedes's (`authorizePublish` runs before the broker's ingest). */
  aedesOptions(): Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'> {
    return {
      preConnect: (client, packet, cb) => this.preConnect(client, packet.clientId, packet.clean ?? true, cb),
      authenticate: (client, username, password, cb) => void this.authenticate(client, username, password, cb),
      authorizePublish: (client, packet, cb) => this.authorizePublish(client, packet, cb),
      authorizeSubscribe: (client, sub, cb) => this.authorizeSubscribe(client, sub, cb),
    };
  }

  private maxFailures(): number {
    return this.deps.limiter.maxFailures;
  }

  /** Identity of a connected client (undefined on an open hub). */
  identityOf(client: Client | null): Identity | undefined {
    return client ? this.sessions.get(client)?.identity : undefined;
  }

  /** The gateway a client speaks for, or null (consumers, services, claims). */
  gatewayOf(client: Client): string | null {
    return gatewayOf(this.identityOf(client));
  }

  /**
   * Call when Aedes has registered a client: closes it if its identity was
   * revoked while the CONNECT was still being processed.
   */
  recheck(client: Client): void {
    const s = this.sessions.get(client);
    if (s && !this.deps.identity.stillValid(s.key, s.epoch)) {
      this.deps.logger.warn({ client: client.id }, 'identity revoked during connect; closing');
      client.close();
    }
  }

  private preConnect(client: Client, clientId: string, clean: boolean, cb: (err: Error | null, ok: boolean) => void): void {
    // Aedes replaces an empty client id with a random one before `authenticate` runs; remember it here.
    if (clientId.length === 0 && !clean) this.emptyIdPersistent.add(client);
    cb(null, true);
  }

  private async authenticate(client: Client, username: string | undefined, password: Buffer | undefined, cb: (err: AuthenticateError | null, ok: boolean | null) => void): Promise<void> {
    const { logger, limiter } = this.deps;
    const addr = remoteAddress(client);
    // [MQTT-3.1.3-8]: zero-byte ClientId with CleanSession 0 → CONNACK 0x02, then close.
    if (this.emptyIdPersistent.has(client)) {
      this.counters.loginsFailed++;
      cb(connackError('HUB_ERR_IDENTIFIER_REJECTED', 'a zero-length client id needs CleanSession = 1 (MQTT 3.1.1 §3.1.3.1)', 2), null);
      return;
    }
    if (this.deps.mode === 'open') {
      cb(null, true);
      return;
    }
    const pairKey = `mqtt:${addr}|${username ?? ''}`;
    const sourceKey = `mqtt:${addr}`;
    const [pairWait, sourceWait] = await Promise.all([limiter.blockedFor(pairKey), limiter.blockedFor(sourceKey)]);
    const wait = Math.max(pairWait, sourceWait);
    // A secret this hub verified before is not a guess: it goes on to the full check (identity-service knownGood).
    if (wait > 0 && !this.deps.identity.knownGood(username, password?.toString('utf8'))) {
      this.counters.lockedOut++;
      const pair = pairWait > 0;
      logger.warn({ addr, username, retryInS: Math.ceil(wait / 1000), code: 'HUB_ERR_RATE_LIMITED' }, pair ? 'login refused: this username is locked out from this address after failed logins' : 'login refused: address locked out after failed logins');
      cb(connackError('HUB_ERR_RATE_LIMITED', `too many failed logins from ${addr}${pair ? ` as '${username ?? ''}'` : ''}; retry in ${Math.ceil(wait / 1000)} s`, 5), null);
      return;
    }
    const arrived = performance.now();
    if (this.activeLogins >= (this.deps.maxConcurrentLogins ?? DEFAULT_BROKER_LIMITS.maxConcurrentLogins)) {
      if (this.loginQueue.length >= (this.deps.maxWaitingLogins ?? 2000)) {
        this.counters.loginsBusy++;
        cb(connackError('HUB_ERR_LIMIT', `${this.loginQueue.length} logins are waiting to be checked; try again shortly`, 3), null);
        return;
      }
      // The finishing check hands its slot over (activeLogins stays as it is).
      await new Promise<void>((resolve) => this.loginQueue.push(resolve));
    } else {
      this.activeLogins++;
      if (this.activeLogins > this.counters.peakConcurrentLogins) this.counters.peakConcurrentLogins = this.activeLogins;
    }
    const started = performance.now();
    this.timing.slotWaitMs += started - arrived;
    try {
      const res = await this.deps.identity.verifyLogin(username, password, client.id, addr);
      this.timing.checkMs += performance.now() - started;
      this.timing.checks++;
      if (!res.ok) {
        this.counters.loginsFailed++;
        const lock = res.guess ? Math.max(...(await Promise.all([limiter.fail(pairKey), limiter.fail(sourceKey, this.maxFailures() * MQTT_SOURCE_FAILURE_FACTOR)]))) : 0;
        logger.warn({ addr, username, client: client.id, code: res.code, reason: res.reason, lockedOutForS: lock ? Math.ceil(lock / 1000) : undefined }, 'login refused');
        cb(connackError(res.code, res.reason, res.returnCode), null);
        return;
      }
      const key = res.identity.kind === 'claim' ? `claim:${res.identity.claimId}` : res.identity.id;
      if (res.identity.kind !== 'claim' && res.identity.kind !== 'gateway' && this.deps.connections) {
        // A takeover by the same client id replaces a connection: it is not an extra one.
        const others = this.deps.connections(res.identity.id).filter((id) => id !== client.id).length;
        const max = this.deps.maxConnections ?? 64;
        if (others >= max) {
          this.counters.tooManyConnections++;
          logger.warn({ addr, account: res.identity.id, connections: others, bound: max, code: 'HUB_ERR_LIMIT' }, 'login refused: too many connections for this account');
          cb(connackError('HUB_ERR_LIMIT', `account '${res.identity.id}' already has ${others} connections (at most ${max}); close some or raise the limit`, 3), null);
          return;
        }
      }
      this.sessions.set(client, { identity: res.identity, key, epoch: this.deps.identity.epoch(key) });
      this.counters.loginsOk++;
      logger.debug({ addr, identity: describe(res.identity) }, 'login');
      cb(null, true);
    } catch (err) {
      logger.error({ err, addr, username }, 'login check failed');
      cb(connackError('HUB_ERR_STORE_IO', 'identity store unavailable', 3), null);
    } finally {
      const next = this.loginQueue.shift();
      if (next) next();
      else this.activeLogins--;
    }
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, cb: (err?: Error | null) => void): void {
    if (this.deps.mode === 'open') {
      const prov = parseProvisionTopic(packet.topic);
      if (prov?.kind === 'request') void this.deps.provisioning.onRequest(prov.claimId, packet.payload as Buffer, remoteAddress(client)).then(() => cb(null));
      else cb(null);
      return;
    }
    const who = this.identityOf(client);
    if (!who || !canPublish(who, packet.topic)) {
      this.counters.publishDenied++;
      this.deps.logger.warn({ client: client?.id, identity: who ? describe(who) : 'none', topic: packet.topic, code: 'HUB_ERR_FORBIDDEN' }, 'publish refused; closing the connection');
      cb(new IocError('HUB_ERR_FORBIDDEN', `${who ? describe(who) : 'unauthenticated client'} may not publish to '${packet.topic}'`));
      return;
    }
    if (who.kind === 'claim') {
      void this.deps.provisioning.onRequest(who.claimId, packet.payload as Buffer, remoteAddress(client)).then(() => cb(null));
      return;
    }
    cb(null);
  }

  private authorizeSubscribe(client: Client, sub: Subscription, cb: (err: Error | null, sub?: Subscription | null) => void): void {
    if (this.deps.mode === 'open') {
      cb(null, sub);
      return;
    }
    const who = this.identityOf(client);
    if (who && canSubscribe(who, sub.topic)) {
      cb(null, sub);
      return;
    }
    this.counters.subscribeDenied++;
    // Once per connection: a SUBSCRIBE of thousands of forbidden filters must not write thousands of lines.
    if (!this.subscribeRefusalLogged.has(client)) {
      this.subscribeRefusalLogged.add(client);
      this.deps.logger.warn({ client: client.id, identity: who ? describe(who) : 'none', filter: sub.topic, code: 'HUB_ERR_FORBIDDEN' }, 'subscription refused (SUBACK 0x80); further refusals of this connection are counted, not logged');
    }
    // null grants 0x80 for this topic only; the others in the same SUBSCRIBE stand.
    cb(null, null);
  }
}
