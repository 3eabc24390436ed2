/**
 * The hub's composition root: builds the store, ingest, broker and API, starts
 * them in order and stops them in reverse. Only this file calls `new` on hub
 * services.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../lib/index.js';
import { Api } from './api.js';
import { Broker } from './broker.js';
import { HubEvents } from './hub-events.js';
import { Ingest } from './ingest.js';
import { HubStore } from './store.js';

/** Settings of a hub. */
export interface HubOptions {
  dataDir: string;
  logger: Logger;
  mqttHost?: string;
  /** 0 picks a free port. */
  mqttPort?: number;
  httpHost?: string;
  /** 0 picks a free port. */
  httpPort?: number;
}

/** A running hub. */
export interface Hub {
  readonly mqttPort: number;
  readonly httpPort: number;
  readonly events: HubEvents;
  readonly store: HubStore;
  readonly broker: Broker;
  stop(): Promise<void>;
}

/** Starts a hub; resolves once MQTT and HTTP listen. */
export async function startHub(opts: HubOptions): Promise<Hub> {
  const { logger } = opts;
  await mkdir(opts.dataDir, { recursive: true });
  const events = new HubEvents();
  const store = new HubStore({ file: path.join(opts.dataDir, 'hub.sqlite'), logger: logger.child({ component: 'store' }) });
  let broker: Broker | null = null;
  const ingest = new Ingest({
    store,
    events,
    logger: logger.child({ component: 'ingest' }),
    isConnected: (id, except) => broker?.isConnected(id, except) ?? false,
  });
  broker = new Broker({ logger: logger.child({ component: 'broker' }), ingest, store, events, host: opts.mqttHost ?? '127.0.0.1', port: opts.mqttPort ?? 1883 });
  let ready = false;
  const api = new Api({ logger: logger.child({ component: 'api' }), store, host: opts.httpHost ?? '127.0.0.1', port: opts.httpPort ?? 8080, ready: () => ready });

  const started: Array<{ stop(): Promise<void> }> = [];
  try {
    for (const svc of [store, broker, api]) {
      await svc.start();
      started.push(svc);
    }
  } catch (err) {
    for (const svc of started.reverse()) await svc.stop().catch(() => undefined);
    throw err;
  }
  ready = true;
  const b = broker;
  let stopping: Promise<void> | null = null;
  return {
    mqttPort: b.port,
    httpPort: api.port,
    events,
    store,
    broker: b,
    /** Idempotent: a second call waits for the first. */
    stop() {
      stopping ??= (async () => {
        ready = false;
        // Stop accepting traffic first, then let the store finish its commits.
        await api.stop();
        await b.stop();
        await store.stop();
        events.removeAllListeners();
      })();
      return stopping;
    },
  };
}
