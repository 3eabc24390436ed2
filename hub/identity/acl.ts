/**
 * The broker's access rules, as pure functions of (identity, topic): what
 * each kind of MQTT client may publish and which topic filters it may
 * subscribe to. The matrix test in hub/test/acl-matrix.test.ts drives every
 * identity × topic family × action through a real broker.
 *
 * | identity | publish | subscribe |
 * |---|---|---|
 * | gateway G | `gw/G/status`, `telemetry`, `events`, `config/reported`, `cmd/{name}/result`, `fw/…` | filters inside `ioc/v1/gw/G/…` |
 * | consumer (IOC, read-only) | nothing | `ioc/v1/gw/{G or +}/status, telemetry, events` |
 * | service (hub services) | `gw/{G}/config/desired`, `gw/{G}/cmd/{name}`, `gw/{G}/fw/…` | filters inside `ioc/v1/gw/…` |
 * | claim C | `ioc/v1/provision/C/request` | `ioc/v1/provision/C/response` |
 * | integration I | topics matching its admin-set publish patterns: outside `ioc/…` any (never `$…`), inside only what a service may | filters inside its subscribe patterns: outside `ioc/…` any, inside only what a service may |
 *
 * Filters are judged by what they could match (MQTT 3.1.1 §4.7): a filter is
 * granted only when every topic it matches is allowed, so `ioc/v1/gw/#` is
 * refused to a consumer (it would match configuration topics) and `#` or
 * `$SYS/#` to everyone. Provisioning topics carry fresh credentials and are
 * reachable only by their own claim session.
 */
import { ID_PATTERN, parseProvisionTopic, parseTopic, ROOT, topics } from '../../contract/index.js';
import { filterWithin, topicMatches, type IntegrationRules } from './integration-rules.js';

/** Who a connected client is, fixed at authentication. */
export type Identity =
  | { kind: 'gateway'; id: string }
  | { kind: 'consumer'; id: string }
  | { kind: 'service'; id: string }
  | { kind: 'claim'; claimId: string }
  | { kind: 'integration'; id: string; rules: IntegrationRules };

/** Firmware sub-topics a gateway writes, and those the hub's side writes (contract/firmware.ts). */
const GATEWAY_FW = new Set(['request', 'state', 'sync']);
const HUB_FW = new Set(['offer', 'cancel', 'chunk']);

/** Topic kinds a read-only IOC consumer may subscribe to. */
const CONSUMER_KINDS = new Set(['status', 'telemetry', 'events']);

/** May `who` publish to `topic` (a concrete topic name, never a filter)? */
export function canPublish(who: Identity, topic: string): boolean {
  switch (who.kind) {
    case 'claim':
      return topic === topics.provisionRequest(who.claimId);
    case 'consumer':
      return false;
    case 'gateway': {
      const t = parseTopic(topic);
      if (!t || t.gateway !== who.id) return false;
      switch (t.kind) {
        case 'status':
        case 'telemetry':
        case 'events':
        case 'config/reported':
          return true;
        case 'fw':
          // Only the firmware directions that are the gateway's (contract/firmware.ts): chunk requests, state, sync.
          return t.rest.length === 1 && GATEWAY_FW.has(t.rest[0]!);
        case 'cmd':
          // Requests are the hub's; the gateway writes only results.
          return t.rest.length === 2 && t.rest[1] === 'result';
        default:
          return false;
      }
    }
    case 'service': {
      const t = parseTopic(topic);
      if (!t) return false;
      return t.kind === 'config/desired' || (t.kind === 'fw' && t.rest.length === 1 && HUB_FW.has(t.rest[0]!)) || (t.kind === 'cmd' && t.rest.length === 1);
    }
    case 'integration':
      if (!who.rules.publish.some((f) => topicMatches(f, topic))) return false;
      return topic.split('/')[0] === 'ioc' ? canPublish({ kind: 'service', id: who.id }, topic) : !topic.startsWith('$');
  }
}

/** Is an integration account's pattern inside `ioc/…` within what the ACL could ever allow (a service's rights)? */
export function integrationPatternAllowed(kind: 'publish' | 'subscribe', filter: string): boolean {
  if (kind === 'subscribe') return canSubscribe({ kind: 'service', id: '-' }, filter);
  // A publish pattern: `#` never; each `+` stands for any id, checked with a sample one.
  return !filter.includes('#') && canPublish({ kind: 'service', id: '-' }, filter.split('/').map((l) => (l === '+' ? 'x' : l)).join('/'));
}

/** `ioc/v1/gw` split into levels, for filter checks. */
const GW_PREFIX = [...ROOT.split('/'), 'gw'];

function startsWithLiterals(levels: string[], prefix: string[]): boolean {
  return prefix.every((p, i) => levels[i] === p);
}

/** May `who` subscribe to `filter` (MQTT 3.1.1 §4.7 topic filter)? */
export function canSubscribe(who: Identity, filter: string): boolean {
  const levels = filter.split('/');
  switch (who.kind) {
    case 'claim':
      return filter === topics.provisionResponse(who.claimId) && parseProvisionTopic(filter) !== null;
    case 'gateway':
      // Own namespace only: the gateway id must be literal, wildcards only below it.
      return startsWithLiterals(levels, [...GW_PREFIX, who.id]) && levels.length >= GW_PREFIX.length + 1;
    case 'consumer': {
      if (levels.length !== GW_PREFIX.length + 2 || !startsWithLiterals(levels, GW_PREFIX)) return false;
      const gw = levels[GW_PREFIX.length]!;
      const kind = levels[GW_PREFIX.length + 1]!;
      return (gw === '+' || ID_PATTERN.test(gw)) && CONSUMER_KINDS.has(kind);
    }
    case 'service':
      // Everything per gateway, nothing of provisioning (fresh credentials) or $SYS.
      return startsWithLiterals(levels, GW_PREFIX) && levels.length > GW_PREFIX.length;
    case 'integration': {
      if (!who.rules.subscribe.some((p) => filterWithin(filter, p))) return false;
      const first = levels[0]!;
      if (first === 'ioc') return canSubscribe({ kind: 'service', id: who.id }, filter);
      return !first.startsWith('$') && first !== '+' && first !== '#';
    }
  }
}

/** The gateway id an identity speaks for, or null. */
export function gatewayOf(who: Identity | undefined): string | null {
  return who?.kind === 'gateway' ? who.id : null;
}

/** A label for logs and the audit log: `gateway:gw-1`, `consumer:ioc`, `claim:abc`. */
export function describe(who: Identity): string {
  return who.kind === 'claim' ? `claim:${who.claimId}` : `${who.kind}:${who.id}`;
}
