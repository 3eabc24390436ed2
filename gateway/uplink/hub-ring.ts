/**
 * The hub addresses the uplink (uplink.ts) fails over between (issue 16.4):
 * the entries of `hub.url` (contract/hub-url.ts) and, for an entry that is a
 * name, each of its A/AAAA records, resolved afresh at every attempt
 * (`dns.lookup(all)`, so a changed record set is seen at once).
 *
 * The ring prefers nothing: after every close (a failed attempt or a lost
 * connection) it moves on to the next record of the name, then to the next
 * entry, round robin from the one that failed. The spacing of the attempts is
 * the uplink's backoff; the ring only says where the next one goes.
 *
 * It is also the mqtt.js stream builder: one socket per attempt, to the
 * current target, TLS with the servername = the configured name (not the
 * resolved IP), so the hub's certificate is checked against the name.
 */
import dns from 'node:dns';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { IClientOptions, MqttClient } from 'mqtt';
import { IocError, parseHubUrls, type HubAddress } from '../../contract/index.js';

/** One resolved record. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/**
 * Resolves a host name to all its addresses, in the resolver's order. The
 * default is the system resolver (`dns.lookup`, all records: /etc/hosts,
 * DNS, as every other program on the gateway sees it); tests inject one.
 */
export type LookupAll = (hostname: string) => Promise<ResolvedAddress[]>;

/** `dns.lookup(host, {all: true})` in the resolver's own order. */
export const systemLookup: LookupAll = (hostname) => dns.promises.lookup(hostname, { all: true, order: 'verbatim' });

/** Where the uplink connects (or last tried to): for logs, stats and `status`. */
export interface HubTarget {
  /** The `hub.url` entry. */
  url: string;
  /** The IP the name resolved to for this attempt (the host itself for an IP literal; null before resolving). */
  address: string | null;
  /** Position in the ring: entry index (0-based) and record index within a name. */
  entry: number;
  record: number;
}

/** TLS options handed to `tls.connect` (mqtt.js passes its whole option bag; we pass only these). */
const TLS_KEYS = ['ca', 'cert', 'key', 'passphrase', 'pfx', 'crl', 'ciphers', 'minVersion', 'maxVersion', 'ALPNProtocols', 'checkServerIdentity', 'rejectUnauthorized', 'secureContext', 'ecdhCurve', 'sigalgs', 'servername'] as const;

/** The hub addresses and the position of the next attempt. */
export class HubRing {
  /** The entries of `hub.url`, parsed. */
  readonly addresses: readonly HubAddress[];
  private entry = 0;
  private record = 0;
  /** Records the current entry's name had at its last resolution (1 for an IP literal). */
  private records = 1;
  private resolved: string | null = null;

  /**
   * @throws IocError CONFIG_ERR_INVALID naming each bad address (the configuration checks the same
   *   rules first, so this is for callers that skipped them).
   */
  constructor(url: string | readonly string[], private readonly lookup: LookupAll = systemLookup) {
    const { addresses, problems } = parseHubUrls(url);
    if (problems.length > 0 || addresses.length === 0) {
      throw new IocError('CONFIG_ERR_INVALID', `invalid hub address: ${problems.map((p) => `${p.pointer}: ${p.message}`).join('; ') || 'none given'}`, { context: { pointer: problems[0]?.pointer ?? '/hub/url', problems } });
    }
    this.addresses = addresses;
  }

  /** The target of the current (or next) attempt. */
  get target(): HubTarget {
    return { url: this.addresses[this.entry]!.url, address: this.resolved, entry: this.entry, record: this.record };
  }

  /** How many places the ring has now: every entry, a name counted by its records at its last resolution. */
  get size(): number {
    return this.addresses.length - 1 + this.records;
  }

  /** After a close (failed attempt or lost connection): the next record of this name, else the next entry. */
  advance(): void {
    this.resolved = null;
    if (this.record + 1 < this.records) {
      this.record++;
      return;
    }
    this.record = 0;
    this.records = 1;
    this.entry = (this.entry + 1) % this.addresses.length;
  }

  /**
   * `net`/`tls` lookup hook for the current entry's name: resolves all
   * records afresh and connects to the current one (wrapping round when the
   * record set shrank). Called with `all: true` when Node's happy-eyeballs
   * (`autoSelectFamily`) is on; it still gets the one chosen address, so an
   * attempt goes to exactly one hub.
   */
  private readonly lookupHook = (hostname: string, options: dns.LookupOptions, cb: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void): void => {
    this.lookup(hostname).then((list) => {
      if (list.length === 0) throw Object.assign(new Error(`${hostname} has no A/AAAA record`), { code: 'ENOTFOUND' });
      this.records = list.length;
      if (this.record >= list.length) this.record = 0;
      const pick = list[this.record]!;
      this.resolved = pick.address;
      if (options.all) cb(null, [{ address: pick.address, family: pick.family }]);
      else cb(null, pick.address, pick.family);
    }).catch((err: NodeJS.ErrnoException) => {
      // One name that does not resolve is a failed attempt like any other: the ring moves on.
      this.records = 1;
      cb(err, '', 0);
    });
  };

  /**
   * mqtt.js stream builder: one socket to the current target. TLS mirrors
   * mqtt.js's own builder (an unauthorized peer is an error when
   * `rejectUnauthorized`), with servername = the configured name.
   */
  stream(client: MqttClient, opts: Partial<IClientOptions>): Duplex {
    const a = this.addresses[this.entry]!;
    this.records = 1;
    if (net.isIP(a.host) !== 0) this.resolved = a.host;
    if (!a.secure) return net.createConnection({ host: a.host, port: a.port, lookup: this.lookupHook });
    const bag = opts as Record<string, unknown>;
    const tlsOpts: tls.ConnectionOptions = {};
    for (const k of TLS_KEYS) if (bag[k] !== undefined) (tlsOpts as Record<string, unknown>)[k] = bag[k];
    if (tlsOpts.servername === undefined && net.isIP(a.host) === 0) tlsOpts.servername = a.host;
    const reject = tlsOpts.rejectUnauthorized !== false;
    tlsOpts.rejectUnauthorized = reject;
    const socket = tls.connect({ ...tlsOpts, host: a.host, port: a.port, lookup: this.lookupHook });
    const onTlsError = (err: Error): void => {
      if (reject) client.emit('error', err);
      socket.end();
    };
    socket.on('secureConnect', () => {
      if (reject && !socket.authorized) socket.emit('error', new Error('TLS not authorized'));
      else socket.removeListener('error', onTlsError);
    });
    socket.on('error', onTlsError);
    return socket;
  }
}
