/**
 * The PROXY protocol (v1/v2) in front of the HTTP API, for a TCP (layer 4)
 * load balancer that cannot add X-Forwarded-For (issue 13 item 7). A plain TCP
 * listener reads the header with the MQTT listener's parser
 * (`broker/proxy-protocol.ts`: required from the trusted balancers, refused
 * from anyone else), sets the connection's `remoteAddress` to the client the
 * header names, then hands the connection — after the TLS handshake when the
 * API serves HTTPS — to the HTTP server fastify drives. So `req.ip`, the
 * failed-login limiter and the audit log see the client, not the balancer.
 */
import http from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Logger } from '../lib/index.js';
import { readProxyStart, type ProxyProtocolOptions } from './broker/proxy-protocol.js';

/**
 * An HTTP server (for fastify's `serverFactory`) whose listening, address and
 * closing are those of a TCP listener that reads a PROXY header first.
 */
export function proxiedHttpServer(handler: http.RequestListener, opts: { proxy: ProxyProtocolOptions; https?: { cert: Buffer; key: Buffer }; logger: Logger }): http.Server {
  const inner = http.createServer(handler);
  const ctx = opts.https ? tls.createSecureContext(opts.https) : null;
  const at = (socket: net.Socket, address: string): void => {
    Object.defineProperty(socket, 'remoteAddress', { value: address, configurable: true });
  };
  const outer = net.createServer((raw) => {
    raw.on('error', () => undefined);
    readProxyStart(raw, opts.proxy).then(
      (start) => {
        if (ctx) {
          // Through a JS stream, so the bytes read past the header (the ClientHello, often) reach TLS.
          const secure = new tls.TLSSocket(streamOf(raw, start.head), { isServer: true, secureContext: ctx });
          secure.on('error', (err) => opts.logger.debug({ err: err.message, addr: start.remoteAddress }, 'API TLS handshake failed'));
          secure.once('secure', () => {
            at(secure, start.remoteAddress);
            inner.emit('connection', secure);
          });
          return;
        }
        at(raw, start.remoteAddress);
        inner.emit('connection', raw);
        if (start.head.length > 0) raw.emit('data', start.head);
        raw.resume();
      },
      (err: Error) => {
        opts.logger.warn({ addr: raw.remoteAddress, err: err.message, code: 'HUB_ERR_PROXY_HEADER' }, 'API PROXY protocol: connection closed');
        raw.destroy();
      },
    );
  });
  // fastify listens, asks for the address and closes through this object: those belong to the TCP listener.
  inner.listen = ((...args: unknown[]) => {
    (outer.listen as (...a: unknown[]) => net.Server)(...args);
    return inner;
  }) as typeof inner.listen;
  outer.on('listening', () => inner.emit('listening'));
  outer.on('error', (err) => inner.emit('error', err));
  inner.address = () => outer.address();
  Object.defineProperty(inner, 'listening', { get: () => outer.listening });
  inner.close = ((cb?: (err?: Error) => void) => {
    outer.close(cb);
    inner.closeIdleConnections();
    return inner;
  }) as typeof inner.close;
  return inner;
}

/** A duplex stream over `raw` that first yields `head` (what was read past the PROXY header). */
function streamOf(raw: net.Socket, head: Buffer): Duplex {
  const d = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      raw.write(chunk, cb);
    },
    final(cb) {
      raw.end(cb);
    },
    destroy(err, cb) {
      raw.destroy(err ?? undefined);
      cb(err);
    },
  });
  if (head.length > 0) d.push(head);
  raw.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) raw.pause();
  });
  raw.once('end', () => d.push(null));
  raw.once('close', () => d.destroy());
  return d;
}
