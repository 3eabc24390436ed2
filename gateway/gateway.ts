/**
 * The gateway's composition root: loads profiles, builds the outbox, uplink,
 * Modbus transports and device pollers from a validated configuration, wires
 * drivers → outbox → uplink, starts them in order and stops them in reverse.
 * Only this file calls `new` on gateway services.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import type { GatewayEvent, Reading } from '../contract/index.js';
import { loadProfileDir, PROFILES_DIR, type DeviceProfile } from '../device-profiles/index.js';
import type { Logger } from '../lib/index.js';
import { parseGatewayConfig, type GatewayConfig } from './config.js';
import { DevicePoller, eventId, type DeviceHealth, type DevicePollStats } from './device-poller.js';
import { ModbusTcpTransport } from './drivers/modbus-tcp.js';
import type { ModbusTransport } from './drivers/modbus-transport.js';
import { SqliteOutbox } from './outbox/sqlite-outbox.js';
import { Uplink } from './uplink.js';
import { VERSION } from './version.js';

/** A running gateway. */
export interface Gateway {
  readonly config: GatewayConfig;
  readonly outbox: SqliteOutbox;
  readonly uplink: Uplink;
  /** Emits 'readings' (Reading[]) and 'event' (GatewayEvent) as the drivers produce them. */
  readonly bus: EventEmitter;
  devices(): Record<string, DeviceHealth>;
  /** Poll statistics per device. */
  pollStats(): Record<string, DevicePollStats>;
  stop(): Promise<void>;
}

/** Loads the shipped profiles plus those in `dirs` (later folders override earlier ones). */
export async function loadProfiles(dirs: readonly string[] = []): Promise<Map<string, DeviceProfile>> {
  const all = new Map<string, DeviceProfile>();
  for (const dir of [PROFILES_DIR, ...dirs]) for (const [k, v] of await loadProfileDir(dir)) all.set(k, v);
  return all;
}

/** Options of {@link startGateway}. */
export interface StartGatewayOptions {
  /** A validated configuration, or a raw document validated here (named `source` in errors). */
  config: GatewayConfig | unknown;
  source?: string;
  logger: Logger;
  profiles?: Map<string, DeviceProfile>;
}

/** Starts a gateway; resolves once it polls (the hub may still be unreachable). */
export async function startGateway(opts: StartGatewayOptions): Promise<Gateway> {
  const source = opts.source ?? '<config>';
  // First pass without profiles: it resolves profileDirs relative to the config file.
  const profiles = opts.profiles ?? (await loadProfiles(parseGatewayConfig(opts.config, source).profileDirs ?? []));
  const config = parseGatewayConfig(opts.config, source, { profiles });
  const logger = opts.logger.child({ gateway: config.gatewayId });
  await mkdir(config.dataDir, { recursive: true });

  const bus = new EventEmitter();
  const outbox = new SqliteOutbox({
    file: path.join(config.dataDir, 'outbox.sqlite'),
    logger: logger.child({ component: 'outbox' }),
    limits: { maxRows: config.outbox.maxRows, maxBytes: config.outbox.maxBytes, maxAgeMs: config.outbox.maxAgeS * 1000 },
    flushIntervalMs: config.outbox.flushIntervalMs,
    synchronous: config.outbox.synchronous,
  });
  const onEvent = (ev: GatewayEvent): void => {
    bus.emit('event', ev);
    void outbox.appendEvent(ev).catch((err) => logger.error({ err, event: ev.type }, 'event could not be stored'));
  };
  outbox.on('overflow', ({ dropped, reason }: { dropped: number; reason: string }) =>
    onEvent({ v: 1, id: eventId(), ts: Date.now(), type: 'outbox.overflow', severity: 'warning', code: 'GW_ERR_OUTBOX_IO', message: `outbox budget ${reason} reached: ${dropped} oldest readings dropped`, data: { dropped, reason } }));
  outbox.on('corrupt', ({ movedTo, reason }: { movedTo: string; reason: string }) =>
    setImmediate(() => onEvent({ v: 1, id: eventId(), ts: Date.now(), type: 'outbox.corrupt', severity: 'critical', code: 'GW_ERR_OUTBOX_IO', message: `outbox failed its integrity check (${reason}); moved to ${movedTo}, started fresh`, data: { movedTo } })));
  const onReadings = (readings: Reading[]): void => {
    bus.emit('readings', readings);
    outbox.append(readings);
  };

  const transports = new Map<string, ModbusTransport>();
  for (const b of config.buses) transports.set(b.id, new ModbusTcpTransport({ config: b, logger: logger.child({ component: 'modbus-tcp', bus: b.id }) }));
  const pollers = config.devices
    .filter((d) => d.enabled)
    .map((d) => new DevicePoller({ device: d, profile: profiles.get(d.profile)!, transport: transports.get(d.bus)!, logger: logger.child({ component: 'poller', device: d.id }), onReadings, onEvent }));
  const devices = (): Record<string, DeviceHealth> => Object.fromEntries(pollers.map((p) => [p.id, p.health]));

  const uplink = new Uplink({
    gatewayId: config.gatewayId,
    url: config.hub.url,
    ...(config.hub.username !== undefined ? { username: config.hub.username } : {}),
    ...(config.hub.password !== undefined ? { password: config.hub.password } : {}),
    logger: logger.child({ component: 'uplink' }),
    outbox,
    version: VERSION,
    batchSize: config.uplink.batchSize,
    window: config.uplink.window,
    statusIntervalMs: config.uplink.statusIntervalS * 1000,
    keepaliveS: config.hub.keepaliveS,
    reconnect: { minMs: config.hub.reconnectMinMs, maxMs: config.hub.reconnectMaxMs },
    statusExtra: () => ({ devices: devices() }),
  });

  const services: Array<{ start(): Promise<void>; stop(): Promise<void> }> = [outbox, ...transports.values(), uplink, ...pollers];
  const started: typeof services = [];
  try {
    for (const s of services) {
      await s.start();
      started.push(s);
    }
  } catch (err) {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    throw err;
  }
  logger.info({ devices: pollers.length, buses: transports.size, hub: config.hub.url }, 'gateway started');
  let stopping: Promise<void> | null = null;
  return {
    config,
    outbox,
    uplink,
    bus,
    devices,
    pollStats: () => Object.fromEntries(pollers.map((p) => [p.id, { ...p.stats }])),
    /** Idempotent: a second call waits for the first. */
    stop() {
      stopping ??= (async () => {
        // Pollers first (no new readings), then the uplink, then the outbox flushes what is left.
        for (const s of [...pollers, uplink, ...transports.values(), outbox]) await s.stop().catch((err) => logger.error({ err }, 'stop failed'));
        bus.removeAllListeners();
        logger.info('gateway stopped');
      })();
      return stopping;
    },
  };
}
