/**
 * The MQTT topic namespace shared by gateway and hub. Versioned (`ioc/v1/…`) so
 * a v2 can run beside v1 during a fleet upgrade. Identifiers that appear in a
 * topic level must match {@link ID_PATTERN}: no `/`, `+`, `#` or NUL
 * (MQTT 3.1.1 §4.7.1 reserves the wildcards; §4.7.3 forbids NUL).
 */

/** Contract version carried in every topic and payload. */
export const CONTRACT_VERSION = 1;

/** Topic root for this contract version. */
export const ROOT = `ioc/v${CONTRACT_VERSION}`;

/** Identifiers (gateway, device, point) used as topic levels or keys. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** True when `id` can be used as a gateway, device or point identifier. */
export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** The per-gateway topic families. */
export type GatewayTopicKind = 'status' | 'telemetry' | 'events' | 'config/desired' | 'config/reported' | 'cmd' | 'fw';

/** Topic builders. */
export const topics = {
  /** Retained online/offline status; the offline form is the last will. */
  status: (gw: string) => `${ROOT}/gw/${gw}/status`,
  /** QoS 1 telemetry batches. */
  telemetry: (gw: string) => `${ROOT}/gw/${gw}/telemetry`,
  /** QoS 1 events: alarms, device up/down, driver faults, buffer overflow. */
  events: (gw: string) => `${ROOT}/gw/${gw}/events`,
  /** Retained desired configuration (hub → gateway). */
  configDesired: (gw: string) => `${ROOT}/gw/${gw}/config/desired`,
  /** Reported configuration state (gateway → hub). */
  configReported: (gw: string) => `${ROOT}/gw/${gw}/config/reported`,
  /** Command request (hub → gateway). */
  cmd: (gw: string, name: string) => `${ROOT}/gw/${gw}/cmd/${name}`,
  /** Command result (gateway → hub). */
  cmdResult: (gw: string, name: string) => `${ROOT}/gw/${gw}/cmd/${name}/result`,
  /** Everything a gateway owns: `ioc/v1/gw/{gw}/#`. */
  gatewayAll: (gw: string) => `${ROOT}/gw/${gw}/#`,
  /** Wildcard subscriptions used by the hub and IOC consumers. */
  allStatus: `${ROOT}/gw/+/status`,
  allTelemetry: `${ROOT}/gw/+/telemetry`,
  allEvents: `${ROOT}/gw/+/events`,
  /** Provisioning request of a claim session (claim → hub, QoS 1): `ioc/v1/provision/{claimId}/request`. */
  provisionRequest: (claimId: string) => `${ROOT}/provision/${claimId}/request`,
  /** Provisioning answer to a claim session (hub → claim, QoS 1, never retained). */
  provisionResponse: (claimId: string) => `${ROOT}/provision/${claimId}/response`,
} as const;

/** A parsed provisioning topic. */
export interface ParsedProvisionTopic {
  claimId: string;
  kind: 'request' | 'response';
}

/**
 * Parses `ioc/v1/provision/{claimId}/request|response`; null for anything else
 * (wildcards included, since `+` and `#` are not valid ids).
 */
export function parseProvisionTopic(topic: string): ParsedProvisionTopic | null {
  const levels = topic.split('/');
  if (levels.length !== 5 || `${levels[0]}/${levels[1]}` !== ROOT || levels[2] !== 'provision') return null;
  const claimId = levels[3]!;
  const kind = levels[4];
  if (!isValidId(claimId) || (kind !== 'request' && kind !== 'response')) return null;
  return { claimId, kind };
}

/** A parsed per-gateway topic. */
export interface ParsedTopic {
  gateway: string;
  kind: GatewayTopicKind;
  /** The remaining levels after the kind (command name, `result`, firmware sub-topic…). */
  rest: string[];
}

/**
 * Parsed topics remembered by {@link parseTopic}: the hot ones (a few per
 * gateway). Cleared when full; topics longer than any valid gateway topic are
 * not remembered, so hostile topic churn costs at most ~5 MB.
 */
const PARSED_CACHE_SIZE = 16_384;
const PARSED_CACHE_MAX_TOPIC = 160;
const parsedCache = new Map<string, Readonly<ParsedTopic> | null>();

/**
 * Parses `ioc/v1/gw/{gw}/{kind}/…`. Returns null for anything outside the
 * per-gateway namespace or with an invalid gateway id. The result is frozen
 * and shared: the hub asks about the same topic several times per message
 * (ACL, packet guard, ingest, metrics, services), so answers are remembered.
 */
export function parseTopic(topic: string): Readonly<ParsedTopic> | null {
  const hit = parsedCache.get(topic);
  if (hit !== undefined) return hit;
  const parsed = parseTopicUncached(topic);
  const frozen = parsed ? Object.freeze({ ...parsed, rest: Object.freeze(parsed.rest) as string[] }) : null;
  if (topic.length <= PARSED_CACHE_MAX_TOPIC) {
    if (parsedCache.size >= PARSED_CACHE_SIZE) parsedCache.clear();
    parsedCache.set(topic, frozen);
  }
  return frozen;
}

function parseTopicUncached(topic: string): ParsedTopic | null {
  const levels = topic.split('/');
  if (levels.length < 4 || `${levels[0]}/${levels[1]}` !== ROOT || levels[2] !== 'gw') return null;
  const gateway = levels[3]!;
  if (!isValidId(gateway)) return null;
  const head = levels[4];
  const rest = levels.slice(5);
  switch (head) {
    case 'status':
    case 'telemetry':
    case 'events':
      return rest.length === 0 ? { gateway, kind: head, rest } : null;
    case 'config': {
      const sub = rest[0];
      if (rest.length === 1 && (sub === 'desired' || sub === 'reported')) return { gateway, kind: `config/${sub}`, rest: [] };
      return null;
    }
    case 'cmd':
      return rest.length >= 1 ? { gateway, kind: 'cmd', rest } : null;
    case 'fw':
      return rest.length >= 1 ? { gateway, kind: 'fw', rest } : null;
    default:
      return null;
  }
}
