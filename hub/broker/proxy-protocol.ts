/**
 * The PROXY protocol, versions 1 and 2, receiving side (HAProxy's
 * "The PROXY protocol", doc/proxy-protocol.txt, versions 1 and 2). A TCP load
 * balancer in front of the MQTT listener prepends one header carrying the
 * real client's address; with the setting on, the hub reads it from trusted
 * proxy addresses only, so the failed-login limiter, logs and audit see the
 * client, not the balancer.
 *
 * Rules applied (proxy-protocol.txt §2, §2.1, §2.2):
 * - a connection from a trusted proxy MUST start with a header; anything
 *   else closes it ("the receiver must not try to guess", §2);
 * - a connection from any other address is a direct client; a header from it
 *   is refused (a client must not choose its own address);
 * - v1: `PROXY TCP4|TCP6|UNKNOWN …\r\n`, at most 107 bytes (§2.1);
 * - v2: the 12-byte signature, version 2, command LOCAL (the proxy's own
 *   health check: keep the connection's address) or PROXY; families INET
 *   (12 address bytes) and INET6 (36); UNSPEC and UNIX keep the connection's
 *   address; TLVs after the addresses are skipped (§2.2, §2.2.7).
 */
import net from 'node:net';

/** v2 signature, proxy-protocol.txt §2.2. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** §2.1: "a receiver may reject an incomplete line which does not contain the CRLF sequence in the first 107 characters". */
const V1_MAX = 107;
/** v2 header length is 16 bits; we accept addresses plus a reasonable TLV area. */
const V2_MAX_BODY = 1024;

/** A parsed header: the client's address, or null when the proxy says to keep the connection's own (LOCAL, UNKNOWN, UNSPEC). */
export interface ProxyHeader {
  version: 1 | 2;
  source: { address: string; port: number } | null;
  /** Bytes the header occupied. */
  length: number;
}

/** Why a connection's start was refused. */
export class ProxyHeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProxyHeaderError';
  }
}

/** True when the first bytes could be (the start of) a PROXY header of either version. */
export function looksLikeProxyHeader(buf: Buffer): boolean {
  const n = Math.min(buf.length, 12);
  return buf.subarray(0, Math.min(n, 6)).equals(V1_PREFIX.subarray(0, Math.min(n, 6))) || buf.subarray(0, n).equals(PROXY_V2_SIGNATURE.subarray(0, n));
}

/**
 * Parses a header at the start of `buf`. Returns null when more bytes are
 * needed; throws {@link ProxyHeaderError} for anything that is not a valid header.
 */
export function parseProxyHeader(buf: Buffer): ProxyHeader | null {
  if (buf.length === 0) return null;
  if (buf[0] === 0x50) return parseV1(buf);
  if (buf[0] === 0x0d) return parseV2(buf);
  throw new ProxyHeaderError(`no PROXY protocol header: the connection starts with byte 0x${buf[0]!.toString(16).padStart(2, '0')}`);
}

function parseV1(buf: Buffer): ProxyHeader | null {
  const head = buf.subarray(0, Math.min(buf.length, V1_PREFIX.length));
  if (!head.equals(V1_PREFIX.subarray(0, head.length))) throw new ProxyHeaderError('no PROXY protocol header: the connection does not start with "PROXY "');
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (buf.length >= V1_MAX) throw new ProxyHeaderError(`PROXY v1 header longer than ${V1_MAX} bytes without CRLF`);
    return null;
  }
  if (end + 2 > V1_MAX) throw new ProxyHeaderError(`PROXY v1 header longer than ${V1_MAX} bytes`);
  const line = buf.subarray(0, end).toString('latin1');
  const parts = line.split(' ');
  const length = end + 2;
  // §2.1: "PROXY UNKNOWN" (anything may follow) keeps the connection's address.
  if (parts[1] === 'UNKNOWN') return { version: 1, source: null, length };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) throw new ProxyHeaderError(`malformed PROXY v1 header '${line.slice(0, 60)}'`);
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : 6;
  if (net.isIP(src) !== family || net.isIP(dst) !== family) throw new ProxyHeaderError(`PROXY v1 header: '${src}' or '${dst}' is not an IPv${family} address`);
  const port = (s: string): number => {
    // §2.1: ports are decimal 0–65535 without leading zeros.
    if (!/^(0|[1-9][0-9]{0,4})$/.test(s) || Number(s) > 65535) throw new ProxyHeaderError(`PROXY v1 header: '${s}' is not a port`);
    return Number(s);
  };
  const p = port(sport);
  port(dport);
  return { version: 1, source: { address: src, port: p }, length };
}

function parseV2(buf: Buffer): ProxyHeader | null {
  const n = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  if (!buf.subarray(0, n).equals(PROXY_V2_SIGNATURE.subarray(0, n))) throw new ProxyHeaderError('no PROXY protocol header: bad v2 signature');
  if (buf.length < 16) return null;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new ProxyHeaderError(`PROXY v2 header: version ${verCmd >> 4} (only 2 exists)`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new ProxyHeaderError(`PROXY v2 header: unknown command ${cmd}`);
  const fam = buf[13]!;
  const len = buf.readUInt16BE(14);
  if (len > V2_MAX_BODY) throw new ProxyHeaderError(`PROXY v2 header: ${len} bytes of addresses and TLVs (at most ${V2_MAX_BODY})`);
  const length = 16 + len;
  if (buf.length < length) return null;
  // §2.2: LOCAL — the proxy's own connection (health checks): keep the real address.
  if (cmd === 0) return { version: 2, source: null, length };
  const family = fam >> 4;
  const transport = fam & 0x0f;
  if (transport > 2) throw new ProxyHeaderError(`PROXY v2 header: unknown transport ${transport}`);
  const body = buf.subarray(16, length);
  if (family === 1) {
    if (len < 12) throw new ProxyHeaderError(`PROXY v2 header: INET needs 12 address bytes, got ${len}`);
    return { version: 2, source: { address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) }, length };
  }
  if (family === 2) {
    if (len < 36) throw new ProxyHeaderError(`PROXY v2 header: INET6 needs 36 address bytes, got ${len}`);
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(i).toString(16));
    return { version: 2, source: { address: compactIPv6(groups), port: body.readUInt16BE(32) }, length };
  }
  if (family === 0 || family === 3) return { version: 2, source: null, length };
  throw new ProxyHeaderError(`PROXY v2 header: unknown address family ${family}`);
}

/** The usual short form of an IPv6 address (longest zero run as `::`); IPv4-mapped addresses as `::ffff:a.b.c.d`. */
function compactIPv6(groups: string[]): string {
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') {
    const hi = parseInt(groups[6]!, 16);
    const lo = parseInt(groups[7]!, 16);
    return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Settings of the PROXY protocol on a listener. */
export interface ProxyProtocolOptions {
  /** Addresses of the load balancers allowed to send a header (exact IPs; IPv4-mapped forms match too). */
  trusted: readonly string[];
  /** How long a trusted proxy has to send its header, ms (default 5000). */
  timeoutMs?: number;
}

/** Normalises `::ffff:10.0.0.1` to `10.0.0.1` for comparisons. */
export function plainAddress(a: string | undefined): string {
  if (!a) return 'unknown';
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

/** Outcome of reading a connection's start: the address to use and the bytes already read past the header. */
export interface ProxyStart {
  remoteAddress: string;
  head: Buffer;
  header: ProxyHeader | null;
}

/**
 * Reads the start of a connection. From a trusted proxy it waits for a
 * header (rejects on garbage or timeout); from anyone else it waits for the
 * first bytes only to refuse a header there. The socket is left paused with
 * no data listener; `head` holds what was read beyond the header.
 */
export function readProxyStart(socket: net.Socket, opts: ProxyProtocolOptions): Promise<ProxyStart> {
  const peer = plainAddress(socket.remoteAddress);
  const trusted = opts.trusted.some((t) => plainAddress(t) === peer);
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const finish = (err: Error | null, res?: ProxyStart): void => {
      clearTimeout(timer);
      socket.pause();
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(res!);
    };
    const onClose = (): void => finish(new ProxyHeaderError('connection closed before the PROXY header was complete'));
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (!trusted) {
        // Enough bytes to tell a header from MQTT: a CONNECT starts with 0x10.
        if (buf.length < 6 && looksLikeProxyHeader(buf)) return;
        if (looksLikeProxyHeader(buf)) finish(new ProxyHeaderError(`PROXY header from ${peer}, which is not a trusted proxy`));
        else finish(null, { remoteAddress: socket.remoteAddress ?? 'unknown', head: buf, header: null });
        return;
      }
      try {
        const h = parseProxyHeader(buf);
        if (!h) return;
        finish(null, { remoteAddress: h.source?.address ?? socket.remoteAddress ?? 'unknown', head: buf.subarray(h.length), header: h });
      } catch (err) {
        finish(err as Error);
      }
    };
    const timer = setTimeout(() => finish(new ProxyHeaderError(`no PROXY header from trusted proxy ${peer} within ${opts.timeoutMs ?? 5000} ms`)), opts.timeoutMs ?? 5000);
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
