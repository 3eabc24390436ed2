/**
 * `hub.url` of the gateway configuration: one hub address, a list of them, or
 * one string with comma-separated addresses (issue 16.4). The gateway's uplink
 * (gateway/uplink/hub-ring.ts) moves between them on failure; the hub checks
 * the same rules before it accepts a pushed configuration (gateway-config.ts,
 * second pass). A name may also resolve to several A/AAAA records: that is
 * the uplink's concern at each attempt, not a configuration rule.
 */
import type { ConfigProblem } from './gateway-config.js';

/** Most addresses `hub.url` may list (the schema says the same for arrays). */
export const MAX_HUB_URLS = 16;

/** One parsed hub address. */
export interface HubAddress {
  /** The address as written (trimmed). */
  url: string;
  protocol: 'mqtt' | 'mqtts' | 'tcp' | 'ssl';
  /** Host name or IP literal, without IPv6 brackets. */
  host: string;
  /** The port given, else 1883 (plain) or 8883 (TLS). */
  port: number;
  /** TLS (mqtts:// or ssl://). */
  secure: boolean;
}

const PROTOCOLS = new Set(['mqtt', 'mqtts', 'tcp', 'ssl']);

/** The addresses of a `hub.url` value as written: a list, or a string split at commas (trimmed). */
export function hubUrlList(value: string | readonly string[]): string[] {
  return (typeof value === 'string' ? value.split(',') : [...value]).map((s) => s.trim());
}

/** Shows an address in a message without any user-info (a password must never be echoed). */
function shown(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s]*@/i, '$1***@');
}

/**
 * Parses and checks a `hub.url` value. Problems carry JSON pointers below
 * `at` (`/hub/url` for a string, `/hub/url/2` for the third list entry).
 * Rules: 1 to {@link MAX_HUB_URLS} addresses; each mqtt://, mqtts://, tcp://
 * or ssl:// with a host, an optional port 1-65535 and nothing else (no path,
 * query or user-info: credentials belong in hub.username/hub.password); no
 * address twice; all TLS or all plain (one CA and one login serve them all).
 */
export function parseHubUrls(value: string | readonly string[], at = '/hub/url'): { addresses: HubAddress[]; problems: ConfigProblem[] } {
  const list = hubUrlList(value);
  const ptr = (i: number): string => (typeof value === 'string' ? at : `${at}/${i}`);
  const problems: ConfigProblem[] = [];
  const addresses: HubAddress[] = [];
  if (list.length > MAX_HUB_URLS) problems.push({ pointer: at, message: `lists ${list.length} hub addresses; at most ${MAX_HUB_URLS}` });
  const seen = new Map<string, number>();
  list.forEach((raw, i) => {
    const where = typeof value === 'string' && list.length > 1 ? `address ${i + 1} ` : '';
    const bad = (why: string): void => {
      problems.push({ pointer: ptr(i), message: `${where}'${shown(raw)}' ${why}` });
    };
    if (raw === '') {
      problems.push({ pointer: ptr(i), message: `${where || 'the address '}is empty; give mqtt://host:port or mqtts://host:port` });
      return;
    }
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      const port = /^[a-z]+:\/\/[^/]*:(\d+)\/?$/i.exec(raw)?.[1];
      bad(port !== undefined ? `has port ${port}; a port is 1-65535` : 'is not a URL; give mqtt://host:port or mqtts://host:port');
      return;
    }
    const protocol = u.protocol.replace(/:$/, '');
    if (!PROTOCOLS.has(protocol)) return bad(`uses ${protocol}://; a hub address is mqtt://, mqtts://, tcp:// or ssl://`);
    if (u.username !== '' || u.password !== '') return bad('holds a user name or password inside a URL; put them in hub.username and hub.password (a password there is stored encrypted, never shown) and remove them from the URL');
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (host === '') return bad('names no host; give mqtt://host:port');
    if ((u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '') return bad('has a path, query or fragment; a hub address is only scheme://host:port');
    const secure = protocol === 'mqtts' || protocol === 'ssl';
    const port = u.port === '' ? (secure ? 8883 : 1883) : Number(u.port);
    if (port === 0) return bad('has port 0; a port is 1-65535');
    const key = `${secure}|${host.toLowerCase()}|${port}`;
    if (seen.has(key)) return bad(`is listed twice (also ${typeof value === 'string' ? `address ${seen.get(key)! + 1}` : `${at}/${seen.get(key)}`})`);
    seen.set(key, i);
    addresses.push({ url: raw, protocol: protocol as HubAddress['protocol'], host, port, secure });
  });
  if (addresses.length > 0 && addresses.some((a) => a.secure !== addresses[0]!.secure)) {
    problems.push({ pointer: at, message: `mixes TLS and plain hub addresses (${addresses.map((a) => a.protocol).join(', ')}); use mqtts:// for all or mqtt:// for all` });
  }
  return { addresses, problems };
}
