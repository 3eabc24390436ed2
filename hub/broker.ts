/**
 * The MQTT broker: Aedes 1.x with the hub's hooks, listening on TCP.
 * Authentication and ACL hooks are added by the identity service; this file
 * wires the ingest into `authorizePublish` and tracks connections.
 */
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import { parseTopic } from '../contract/index.js';
import type { Logger } from '../lib/index.js';
import type { HubEvents } from './hub-events.js';
import { PacketGuard, type PacketLimits } from './identity/packet-guard.js';
import type { Ingest } from './ingest.js';
import type { HubStore } from './store.js';

/** Dependencies and settings of the {@link Broker}. */
export interface BrokerDeps {
  logger: Logger;
  ingest: Ingest;
  store: HubStore;
  events: HubEvents;
  host: string;
  port: number;
  /** Extra Aedes options (authenticate, authorizeSubscribe… from the identity service). */
  aedesOptions?: Partial<AedesOptions>;
  /** Listen with TLS (certificate and key already loaded) instead of plain TCP. */
  tls?: tls.TlsOptions;
  /** Packet size limits enforced before Aedes buffers a packet (see PacketGuard); omitted: no guard. */
  packetLimits?: PacketLimits;
  /** Which gateway a client speaks for (from its authenticated identity); default: its client id, if a valid gateway id. */
  gatewayOf?: (client: Client) => string | null;
}

/** Aedes plus its TCP listener. */
export class Broker {
  private aedes: Aedes | null = null;
  private server: net.Server | tls.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  /** Connections closed for an oversized packet. */
  readonly counters = { oversized: 0 };

  constructor(private readonly deps: BrokerDeps) {}

  /** The bound port (after start). */
  get port(): number {
    const addr = this.server?.address();
    return addr && typeof addr === 'object' ? addr.port : 0;
  }

  /** The running Aedes instance. */
  get instance(): Aedes {
    if (!this.aedes) throw new Error('broker not started');
    return this.aedes;
  }

  async start(): Promise<void> {
    const { logger, ingest, store, events } = this.deps;
    const aedes = await Aedes.createBroker({
      ...this.deps.aedesOptions,
      authorizePublish: (client, packet, cb) => {
        const pre = this.deps.aedesOptions?.authorizePublish;
        const run = (): void => {
          ingest.onPublish(client, packet).then(
            () => cb(null),
            (err: Error) => {
              if ((err as { code?: string }).code !== 'HUB_ERR_STALE_WILL') logger.error({ err, topic: packet.topic, client: client?.id }, 'publish refused');
              cb(err);
            },
          );
        };
        if (pre) pre(client, packet, (err) => (err ? cb(err) : run()));
        else run();
      },
    });
    this.aedes = aedes;
    const gatewayId = this.deps.gatewayOf ?? ((client: Client): string | null => (parseTopic(`ioc/v1/gw/${client.id}/status`) ? client.id : null));
    aedes.on('client', (client) => {
      const gw = gatewayId(client);
      logger.debug({ client: client.id }, 'client connected');
      if (gw) {
        void store.setGatewayState(gw, { online: true }).catch((err) => logger.error({ err }, 'registry update failed'));
        events.emit('gateway', { gateway: gw, online: true });
      }
    });
    aedes.on('clientDisconnect', (client) => {
      const gw = gatewayId(client);
      logger.debug({ client: client.id }, 'client disconnected');
      if (gw && !this.isConnected(gw, client)) {
        void store.setGatewayState(gw, { online: false }).catch((err) => logger.error({ err }, 'registry update failed'));
        events.emit('gateway', { gateway: gw, online: false });
      }
    });
    aedes.on('clientError', (client, err) => logger.debug({ client: client?.id, err: err.message }, 'client error'));
    aedes.on('connectionError', (client, err) => logger.debug({ client: client?.id, err: err.message }, 'connection error'));

    const limits = this.deps.packetLimits;
    const onSocket = (socket: net.Socket): void => {
      // PUBACKs are tiny: without TCP_NODELAY, Nagle's algorithm holds them ~40 ms behind the
      // previous unacknowledged segment, which throttles every QoS 1 publisher.
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      if (!limits) {
        aedes.handle(socket);
        return;
      }
      aedes.handle(new PacketGuard(socket, limits, (info) => {
        this.counters.oversized++;
        logger.warn({ ...info, code: 'HUB_ERR_PACKET_TOO_LARGE' }, 'packet too large; connection closed');
      }));
    };
    if (this.deps.tls) {
      const server = tls.createServer({ handshakeTimeout: 10_000, ...this.deps.tls }, onSocket);
      server.on('tlsClientError', (err, socket) => logger.debug({ err: err.message, addr: socket.remoteAddress }, 'TLS handshake failed'));
      this.server = server;
    } else {
      this.server = net.createServer(onSocket);
    }
    this.server.listen(this.deps.port, this.deps.host);
    await once(this.server, 'listening');
    logger.info({ host: this.deps.host, port: this.port, tls: this.deps.tls !== undefined }, 'mqtt listening');
  }

  /** Closes the connection of the client with this id at once, if it is connected. */
  closeClient(clientId: string): boolean {
    const c = (this.aedes as unknown as { clients?: Record<string, Client> } | null)?.clients?.[clientId];
    if (!c) return false;
    c.close();
    return true;
  }

  /** Ids of connected clients whose id is `prefix` or starts with `prefix:`. */
  clientIds(prefix: string): string[] {
    const all = Object.keys((this.aedes as unknown as { clients?: Record<string, Client> } | null)?.clients ?? {});
    return all.filter((id) => id === prefix || id.startsWith(`${prefix}:`));
  }

  /** True when a client with this id is connected, other than `except`. */
  isConnected(clientId: string, except: Client | null): boolean {
    const c = (this.aedes as unknown as { clients?: Record<string, Client> } | null)?.clients?.[clientId];
    return c !== undefined && c !== except;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of this.sockets) s.destroy();
      await closed;
    }
    const aedes = this.aedes;
    this.aedes = null;
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
  }
}
