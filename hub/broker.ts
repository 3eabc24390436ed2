/**
 * The MQTT broker: Aedes 1.x with the hub's hooks, listening on TCP.
 * Authentication and ACL hooks are added by the identity service; this file
 * wires the ingest into `authorizePublish` and tracks connections.
 */
import net from 'node:net';
import { once } from 'node:events';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import { parseTopic } from '../contract/index.js';
import type { Logger } from '../lib/index.js';
import type { HubEvents } from './hub-events.js';
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
}

/** Aedes plus its TCP listener. */
export class Broker {
  private aedes: Aedes | null = null;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

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
    const gatewayId = (client: Client): string | null => (parseTopic(`ioc/v1/gw/${client.id}/status`) ? client.id : null);
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

    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      aedes.handle(socket);
    });
    this.server.listen(this.deps.port, this.deps.host);
    await once(this.server, 'listening');
    logger.info({ host: this.deps.host, port: this.port }, 'mqtt listening');
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
