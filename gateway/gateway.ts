/**
 * The gateway's composition root: loads profiles, builds the outbox, uplink,
 * southbound lines and device drivers (through southbound.ts) from a
 * validated configuration, wires drivers → outbox → uplink, starts them in
 * order and stops them in reverse. Only this file and southbound.ts call
 * `new` on gateway services.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { IocError, type GatewayEvent, type Reading } from '../contract/index.js';
import { loadProfileDir, PROFILES_DIR, type DeviceProfile } from '../device-profiles/index.js';
import type { Logger } from '../lib/index.js';
import { AlarmEvaluator, alarmRules } from './alarm-evaluator.js';
import { parseGatewayConfig, type GatewayConfig } from './config.js';
import { eventId, type DeviceHealth, type DevicePollStats } from './device-poller.js';
import type { SerialPortFactory } from './drivers/byte-link.js';
import { buildSouthbound } from './southbound.js';
import { SqliteOutbox } from './outbox/sqlite-outbox.js';
import { resolveHubLogin } from './hub-login.js';
import { inventoryOf } from './inventory.js';
import { detectFirmware } from './system-info.js';
import { GatewayHttp } from './http-endpoint.js';
import { GatewayMetrics } from './metrics.js';
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
  /** Threshold alarms of the profiles' points, evaluated on every reading. */
  readonly alarms: AlarmEvaluator;
  /** Prometheus metrics (served at /metrics when `http` is configured). */
  readonly metrics: GatewayMetrics;
  /** Port of the /metrics, /healthz, /readyz endpoint; 0 when it is off. */
  readonly httpPort: number;
  /**
   * Writes one point of a device (Modbus FC 5/6/15/16, OPC UA Write): only
   * points marked `writable` in the profile, the value checked against the
   * point's type and min/max. Resolves once the device acknowledged.
   * @throws IocError GW_ERR_WRITE_REFUSED (unknown device or point, not writable),
   *   GW_ERR_WRITE_VALUE (type or range), or the driver's error (timeout, exception…).
   */
  writePoint(deviceId: string, point: string, value: unknown): Promise<void>;
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
  /** Opens serial ports (Modbus RTU, serial-line); tests pass serialport's mock binding. Default: the native binding. */
  serialPortFactory?: SerialPortFactory;
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
  const alarms = new AlarmEvaluator({ rules: alarmRules(config.devices, profiles), onEvent, logger: logger.child({ component: 'alarms' }), stateFile: path.join(config.dataDir, 'alarms.json') });
  const onReadings = (readings: Reading[]): void => {
    bus.emit('readings', readings);
    outbox.append(readings);
    alarms.evaluate(readings);
  };

  // Lines (Modbus TCP/RTU, serial-line ports, OPC UA clients) and one driver per device: southbound.ts.
  const southbound = await buildSouthbound({ config, profiles, logger, onReadings, onEvent, ...(opts.serialPortFactory ? { serialPortFactory: opts.serialPortFactory } : {}) });
  const lines = southbound.lines;
  const pollers = southbound.drivers;
  const devices = (): Record<string, DeviceHealth> => Object.fromEntries(pollers.map((p) => [p.id, p.health]));

  // Credential from config, from the file provisioning left, or by provisioning now with a claim (hub-login.ts).
  const login = await resolveHubLogin(config, logger);
  const inventory = inventoryOf(config);
  const firmware = detectFirmware();
  const uplink = new Uplink({
    gatewayId: config.gatewayId,
    url: config.hub.url,
    ...(login.username !== undefined ? { username: login.username } : {}),
    ...(login.password !== undefined ? { password: login.password } : {}),
    mqttOptions: login.mqttOptions,
    logger: logger.child({ component: 'uplink' }),
    outbox,
    version: VERSION,
    batchSize: config.uplink.batchSize,
    window: config.uplink.window,
    statusIntervalMs: config.uplink.statusIntervalS * 1000,
    keepaliveS: config.hub.keepaliveS,
    reconnect: { minMs: config.hub.reconnectMinMs, maxMs: config.hub.reconnectMaxMs },
    statusExtra: () => ({ devices: devices(), firmware, inventory }),
  });

  const pollStats = (): Record<string, DevicePollStats> => Object.fromEntries(pollers.map((p) => [p.id, { ...p.stats }]));
  const metrics = new GatewayMetrics({
    gatewayId: config.gatewayId, version: VERSION, outbox, uplink, pollStats,
    alarms: () => ({ active: alarms.list().length, ...alarms.counters }),
  });
  let running = false;
  const http = config.http
    ? new GatewayHttp({
      ...config.http, logger: logger.child({ component: 'http' }), metrics,
      readiness: () => {
        const checks = { started: running, hubConnected: uplink.connected };
        return { ready: checks.started && checks.hubConnected, checks };
      },
    })
    : null;
  const services: Array<{ start(): Promise<void>; stop(): Promise<void> }> = [outbox, alarms, ...lines, uplink, ...pollers, ...(http ? [http] : [])];
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
  running = true;
  logger.info({ devices: pollers.length, buses: lines.length, hub: config.hub.url }, 'gateway started');
  let stopping: Promise<void> | null = null;
  return {
    config,
    outbox,
    uplink,
    bus,
    devices,
    pollStats,
    alarms,
    metrics,
    httpPort: http?.port ?? 0,
    async writePoint(deviceId, point, value) {
      const driver = pollers.find((p) => p.id === deviceId);
      if (!driver) throw new IocError('GW_ERR_WRITE_REFUSED', `no enabled device '${deviceId}' on this gateway`, { context: { device: deviceId, point } });
      if (!driver.write) throw new IocError('GW_ERR_WRITE_REFUSED', `device '${deviceId}' has no writable points (its protocol is read-only)`, { context: { device: deviceId, point } });
      await driver.write(point, value);
    },
    /** Idempotent: a second call waits for the first. */
    stop() {
      stopping ??= (async () => {
        // Pollers first (no new readings), then the uplink, then the outbox flushes what is left.
        running = false;
        for (const s of [...(http ? [http] : []), ...pollers, uplink, ...lines, alarms, outbox]) await s.stop().catch((err) => logger.error({ err }, 'stop failed'));
        bus.removeAllListeners();
        logger.info('gateway stopped');
      })();
      return stopping;
    },
  };
}
