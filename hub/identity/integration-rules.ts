/**
 * Integration accounts (issue 14 item 9): an MQTT account for IOC
 * integration (a SCADA connector, a conformance suite, a generic MQTT tool)
 * whose allowed client ids and topic patterns an admin sets, instead of the
 * fixed `name` / `name:suffix` client ids and fixed topics of consumers and
 * services. The admin's patterns are checked at creation to stay within what
 * the ACL could ever allow (acl.ts):
 *
 * - outside the contract's namespace (first level not `ioc`, never `$…`):
 *   any topic the patterns name;
 * - inside `ioc/…`: subscriptions a consumer or hub service may hold
 *   (`ioc/v1/gw/…`, never provisioning), publishes a hub service may make
 *   (`ioc/v1/gw/{G}/config/desired`, `…/cmd/{name}`, `…/fw/{offer,cancel,chunk}`).
 *
 * At run time a publish must match a publish pattern and a subscription must
 * lie inside a subscribe pattern (MQTT 3.1.1 §4.7 wildcards), and both pass
 * the same namespace rule again.
 */
import { IocError } from '../../contract/index.js';

/** What an integration account may do. Patterns are MQTT topic filters. */
export interface IntegrationRules {
  /** Client ids allowed, as globs (`*` any run of characters), e.g. `scada-*`. */
  clientIds: string[];
  /** Topics it may publish to (filters: `+` and `#` allowed). */
  publish: string[];
  /** Filters it may subscribe to, or narrower ones. */
  subscribe: string[];
}

const MAX_PATTERNS = 64;
const MAX_PATTERN_LENGTH = 256;

/** Does topic name `topic` match filter `filter` (MQTT 3.1.1 §4.7)? */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const n = topic.split('/');
  // [MQTT-4.7.2-1]: wildcards at the first level do not match `$` topics.
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= n.length) return false;
    if (f[i] !== '+' && f[i] !== n[i]) return false;
  }
  return f.length === n.length;
}

/** Is every topic that `inner` matches also matched by `outer` (both filters)? */
export function filterWithin(inner: string, outer: string): boolean {
  const a = inner.split('/');
  const b = outer.split('/');
  for (let i = 0; i < b.length; i++) {
    if (b[i] === '#') return true;
    if (i >= a.length) return false;
    if (a[i] === '#') return false;
    if (b[i] === '+') continue;
    if (a[i] === '+' || a[i] !== b[i]) return false;
  }
  return a.length === b.length;
}

/** A glob of client ids (`*` = any run) as a regular expression. */
export function clientIdGlob(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** True when the client id is allowed by one of the globs. */
export function clientIdAllowed(rules: IntegrationRules, clientId: string): boolean {
  return rules.clientIds.some((g) => clientIdGlob(g).test(clientId));
}

function validFilter(f: string): boolean {
  if (f.length === 0 || f.length > MAX_PATTERN_LENGTH || f.includes('\u0000')) return false;
  const levels = f.split('/');
  return levels.every((l, i) => (l.includes('#') ? l === '#' && i === levels.length - 1 : !l.includes('+') || l === '+'));
}

/**
 * Validates rules an admin gives (API body or CLI); throws HUB_ERR_BAD_REQUEST
 * naming the pattern and what is wrong. `insideOk(kind, filter)` says whether
 * a pattern inside `ioc/…` is within what the ACL could allow.
 */
export function validateRules(raw: unknown, insideOk: (kind: 'publish' | 'subscribe', filter: string) => boolean): IntegrationRules {
  const bad = (msg: string): never => {
    throw new IocError('HUB_ERR_BAD_REQUEST', `integration account: ${msg}`);
  };
  const r = (raw ?? {}) as Partial<Record<keyof IntegrationRules, unknown>>;
  const list = (name: keyof IntegrationRules, required: boolean): string[] => {
    const v = r[name];
    if (v === undefined && !required) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) return bad(`'${name}' must be a list of strings`);
    if (required && v.length === 0) return bad(`'${name}' needs at least one pattern`);
    if (v.length > MAX_PATTERNS) return bad(`'${name}' has ${v.length} patterns (at most ${MAX_PATTERNS})`);
    return v as string[];
  };
  const clientIds = list('clientIds', true);
  for (const g of clientIds) {
    if (g.length === 0 || g.length > 128 || !/^[\x21-\x7e]+$/.test(g)) bad(`client id pattern '${g}' must be 1–128 printable ASCII characters ('*' matches any run)`);
  }
  const check = (kind: 'publish' | 'subscribe', list: string[]): void => {
    for (const f of list) {
      if (!validFilter(f)) bad(`${kind} pattern '${f}' is not a valid MQTT topic filter`);
      if (f.startsWith('$') || f.startsWith('+') || f.startsWith('#')) {
        // A leading wildcard would reach `ioc/…` too: only literal first levels.
        bad(`${kind} pattern '${f}' must start with a literal level (not '$', '+' or '#')`);
      }
      if (f.split('/')[0] === 'ioc' && !insideOk(kind, f)) bad(`${kind} pattern '${f}' goes beyond what any account may do in the contract's namespace (acl.ts)`);
    }
  };
  const publish = list('publish', false);
  const subscribe = list('subscribe', false);
  check('publish', publish);
  check('subscribe', subscribe);
  return { clientIds, publish, subscribe };
}

/** Parses stored rules (the registry's JSON column); null when absent or unreadable. */
export function parseStoredRules(json: string | null | undefined): IntegrationRules | null {
  if (!json) return null;
  try {
    const v = JSON.parse(json) as IntegrationRules;
    return Array.isArray(v.clientIds) && Array.isArray(v.publish) && Array.isArray(v.subscribe) ? v : null;
  } catch {
    return null;
  }
}
