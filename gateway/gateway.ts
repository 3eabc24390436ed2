/**
 * The gateway's composition root: loads profiles, builds the outbox, uplink,
 * southbound lines and device drivers (through southbound.ts, kept per bus by
 * southbound-set.ts) from a validated configuration, wires drivers → outbox →
 * uplink, starts them in order and stops them in reverse. Only this file,
 * southbound.ts and southbound-set.ts call `new` on gateway services.
 *
 * Remote configuration (config-agent.ts) runs the last good pushed version
 * over the file (config-agent `bootConfig`) and changes a running gateway with
 * {@link Gateway.reconfigure}: only what changed restarts.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { canonicalJson, IocError, type GatewayEvent, type Reading } from '../contract/index.js';
import { loadProfileDir, PROFILES_DIR, type DeviceProfile } from '../device-profiles/index.js';
import { startAll, type Logger, type LogRing, type Startable } from '../lib/index.js';
import { AlarmEvaluator, alarmRules } from './southbound/alarm-evaluator.js';
import { CommandHandler } from './remote/commands.js';
import { bootConfig, ConfigAgent, type ApplyResult } from './remote/config-agent.js';
import { ConfigFiles } from './remote/config-store.js';
import { SouthboundSet } from './southbound/southbound-set.js';
import { PollPacer } from './southbound/poll-pacer.js';
import { parseGatewayConfig, type GatewayConfig } from './config.js';
import { eventId, type DeviceHealth, type DevicePollStats } from './southbound/device-poller.js';
import { openSerialPort, type SerialPortFactory } from './southbound/drivers/byte-link.js';
import { FirmwareAgent } from './remote/firmware-agent.js';
import { SqliteOutbox } from './outbox/sqlite-outbox.js';
import { resolveHubLogin } from './identity/hub-login.js';
import { inventoryOf } from './inventory.js';
import { detectFirmware } from './system-info.js';
import { GatewayHttp } from './http-endpoint.js';
import { GatewayMetrics } from './metrics.js';
import { Uplink } from './uplink/uplink.js';
import { SparkplugNode, sparkplugSettings, TelemetryGate, type SparkplugSettings } from './northbound/index.js';
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
  /** Stretches Modbus polls under overload so the uplink keeps its share (poll-pacer.ts, issue 14.10). */
  readonly pacer: PollPacer;
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
  /**
   * Moves the running gateway to `next` (same gateway id and data folder):
   * only buses and devices whose settings or profile changed restart, the
   * others keep polling; new hub settings reconnect the uplink. Outbox and
   * http settings wait for a restart (listed in `pending`).
   * @throws the first error (hub login, serial port probe, driver start…);
   *   applying the previous configuration again restores it.
   */
  reconfigure(next: GatewayConfig, profiles?: ReadonlyMap<string, DeviceProfile>): Promise<ApplyResult>;
  /** Remote configuration: desired/reported with commit-confirm rollback. */
  readonly configAgent: ConfigAgent;
  /** Remote commands (ping, read, write, restart-driver, logs). */
  readonly commands: CommandHandler;
  /** Firmware offers from the hub: download, verify, flash, confirm (issue 7). */
  readonly firmware: FirmwareAgent;
  /** The Sparkplug B edge node while the northbound is `sparkplug` (issue 17), else null. */
  readonly sparkplug: SparkplugNode | null;
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
  /** The ring the process logger also writes to: the remote `logs` command answers from it. */
  logRing?: LogRing;
  /** Overrides the confirm window of every desired configuration (ms; tests). */
  confirmWindowMs?: number;
}

/** Starts a gateway; resolves once it polls (the hub may still be unreachable). */
export async function startGateway(opts: StartGatewayOptions): Promise<Gateway> {
  const source = opts.source ?? '<config>';
  // First pass without profiles: it resolves profileDirs relative to the config file.
  const profiles = opts.profiles ?? (await loadProfiles(parseGatewayConfig(opts.config, source).profileDirs ?? []));
  const local = parseGatewayConfig(opts.config, source, { profiles });
  const logger = opts.logger.child({ gateway: local.gatewayId });
  await mkdir(local.dataDir, { recursive: true });
  // The last good pushed configuration runs over the file (config-agent.ts).
  const files = new ConfigFiles(local.dataDir);
  const boot = await bootConfig(local, source, profiles, files, logger.child({ component: 'config' }));
  let config = boot.running.config;
  let currentProfiles: ReadonlyMap<string, DeviceProfile> = boot.running.profiles;

  const bus = new EventEmitter();
  const outbox = new SqliteOutbox({
    file: path.join(config.dataDir, 'outbox.sqlite'),
    logger: logger.child({ component: 'outbox' }),
    limits: { maxRows: config.outbox.maxRows, maxBytes: config.outbox.maxBytes, maxAgeMs: config.outbox.maxAgeS * 1000 },
    flushIntervalMs: config.outbox.flushIntervalMs,
    synchronous: config.outbox.synchronous,
  });
  // Sparkplug northbound (issue 17): built below once the southbound exists; device up/down become DBIRTH/DDEATH.
  let sparkplug: SparkplugNode | null = null;
  const onEvent = (ev: GatewayEvent): void => {
    bus.emit('event', ev);
    sparkplug?.onEvent(ev);
    void outbox.appendEvent(ev).catch((err) => logger.error({ err, event: ev.type }, 'event could not be stored'));
  };
  outbox.on('overflow', ({ dropped, reason }: { dropped: number; reason: string }) =>
    onEvent({ v: 1, id: eventId(), ts: Date.now(), type: 'outbox.overflow', severity: 'warning', code: 'GW_ERR_OUTBOX_IO', message: `outbox budget ${reason} reached: ${dropped} oldest readings dropped`, data: { dropped, reason } }));
  outbox.on('corrupt', ({ movedTo, reason }: { movedTo: string; reason: string }) =>
    setImmediate(() => onEvent({ v: 1, id: eventId(), ts: Date.now(), type: 'outbox.corrupt', severity: 'critical', code: 'GW_ERR_OUTBOX_IO', message: `outbox failed its integrity check (${reason}); moved to ${movedTo}, started fresh`, data: { movedTo } })));
  const alarms = new AlarmEvaluator({ rules: alarmRules(config.devices, currentProfiles), onEvent, logger: logger.child({ component: 'alarms' }), stateFile: path.join(config.dataDir, 'alarms.json') });
  // Last reading per device and point, for "read now" on devices that cannot be asked (streams, subscriptions).
  // Updated in place: keeping each Reading until the next poll would move every one of them into
  // V8's old generation (they outlive a young-generation collection) and inflate the heap between full GCs.
  const latest = new Map<string, Map<string, Reading>>();
  const onReadings = (readings: Reading[]): void => {
    for (const r of readings) {
      let m = latest.get(r.device);
      if (!m) latest.set(r.device, (m = new Map()));
      const last = m.get(r.point);
      if (last) {
        last.ts = r.ts;
        last.value = r.value;
        last.quality = r.quality;
      } else m.set(r.point, { ...r });
    }
    bus.emit('readings', readings);
    try {
      outbox.append(readings);
    } catch (err) {
      // Only after stop (drivers are stopped first and wait for their polls): say so, never throw into a driver.
      logger.error({ err, code: (err as { code?: string }).code ?? 'GW_ERR_OUTBOX_CLOSED', readings: readings.length }, 'readings arrived after the outbox stopped; not stored');
    }
    alarms.evaluate(readings);
  };

  // Lines (Modbus TCP/RTU, serial-line ports, OPC UA clients) and one driver per device: southbound.ts, per bus.
  // Under overload polls stretch so the uplink keeps its share (issue 14.10). It watches the ioc/v1 uplink only:
  // with the Sparkplug northbound (or the hub away) polling keeps its intervals.
  const pacer = new PollPacer({
    logger: logger.child({ component: 'pacer' }),
    sources: { outbox: () => outbox.stats(), connected: () => gate.open && uplink.connected },
    // What the uplink needs waiting to stay busy: two windows of batches.
    lowWater: () => Math.max(1000, 2 * config.uplink.batchSize * config.uplink.window),
  });
  const southbound = new SouthboundSet({ logger, onReadings, onEvent, pacer, ...(opts.serialPortFactory ? { serialPortFactory: opts.serialPortFactory } : {}) });
  await southbound.build(config, currentProfiles);
  // The lines and drivers are started as two services of their own: what the set holds when each starts (a
  // retained configuration applied by the agent before the drivers start may already have replaced some).
  const southboundLines = { start: () => southbound.startLines(), stop: () => southbound.stopLines((err: unknown) => logger.error({ err }, 'stop failed')) };
  const southboundDrivers = { start: () => southbound.startDrivers(), stop: () => southbound.stopDrivers((err: unknown) => logger.error({ err }, 'stop failed')) };
  const devices = (): Record<string, DeviceHealth> => Object.fromEntries(southbound.drivers().map((p) => [p.id, p.health]));

  // Credential from config, from the file provisioning left, or by provisioning now with a claim (hub-login.ts).
  const login = await resolveHubLogin(config, logger);
  let site = login.site;
  // One outbox, one telemetry consumer: the uplink's view of it is closed while the northbound is Sparkplug.
  const gate = new TelemetryGate(outbox, config.northbound.type !== 'sparkplug');
  const makeSparkplug = (settings: SparkplugSettings | null): SparkplugNode | null => settings && new SparkplugNode({
    settings, logger: logger.child({ component: 'sparkplug' }), outbox, bdSeqFile: path.join(config.dataDir, 'sparkplug-bdseq.json'),
    devices: () => config.devices.filter((d) => d.enabled).map((d) => ({ id: d.id, points: currentProfiles.get(d.profile)?.points ?? [] })),
    health: (id) => southbound.driver(id)?.health,
    latest: (id) => [...(latest.get(id)?.values() ?? [])],
    writePoint: (id, point, value) => writePoint(id, point, value),
  });
  sparkplug = makeSparkplug(sparkplugSettings(config, site));
  let inventory = inventoryOf(config);
  const firmware = detectFirmware();
  const uplink = new Uplink({
    gatewayId: config.gatewayId,
    url: config.hub.url,
    ...(login.username !== undefined ? { username: login.username } : {}),
    ...(login.password !== undefined ? { password: login.password } : {}),
    mqttOptions: login.mqttOptions,
    logger: logger.child({ component: 'uplink' }),
    outbox: gate,
    version: VERSION,
    batchSize: config.uplink.batchSize,
    window: config.uplink.window,
    statusIntervalMs: config.uplink.statusIntervalS * 1000,
    keepaliveS: config.hub.keepaliveS,
    reconnect: { minMs: config.hub.reconnectMinMs, maxMs: config.hub.reconnectMaxMs },
    statusExtra: () => ({ devices: devices(), firmware, inventory }),
  });
  // A device going up or down shows in the hub's view at once (rate-limited by the uplink), not after up to statusIntervalS.
  bus.on('event', (ev: GatewayEvent) => {
    if (ev.type === 'device.up' || ev.type === 'device.down') uplink.statusChanged();
  });

  const pollStats = (): Record<string, DevicePollStats> => Object.fromEntries(southbound.drivers().map((p) => [p.id, { ...p.stats }]));
  const metrics = new GatewayMetrics({
    gatewayId: config.gatewayId, version: VERSION, outbox, uplink, pollStats, pacer,
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
  const startedWith = config;
  const same = (a: unknown, b: unknown): boolean => canonicalJson(a ?? null) === canonicalJson(b ?? null);
  const reconfigure = async (next: GatewayConfig, nextProfiles: ReadonlyMap<string, DeviceProfile> = currentProfiles): Promise<ApplyResult> => {
    if (next.gatewayId !== config.gatewayId || next.dataDir !== config.dataDir) {
      throw new IocError('CONFIG_ERR_LOCAL_ONLY', `a running gateway keeps its id and data folder (${config.gatewayId}, ${config.dataDir})`);
    }
    // What can fail without touching anything first: the hub login (credential, CA file).
    const hubChanged = !same(next.hub, config.hub);
    const nextLogin = hubChanged ? await resolveHubLogin(next, logger) : null;
    const nextSite = nextLogin ? nextLogin.site : site;
    const northboundChanged = !same(next.northbound, config.northbound) || nextSite !== site;
    const nextSparkplug = northboundChanged ? sparkplugSettings(next, nextSite) : null;
    const catalogueChanged = !same(next.devices, config.devices) || [...new Set(next.devices.map((d) => d.profile))].some((p) => !same(nextProfiles.get(p), currentProfiles.get(p)));
    config = next;
    site = nextSite;
    currentProfiles = nextProfiles;
    const change = await southbound.apply(next, nextProfiles);
    alarms.setRules(alarmRules(next.devices, nextProfiles));
    inventory = inventoryOf(next);
    if (northboundChanged) {
      // The old node ends its session (NDEATH); batches it had in flight stay reserved in the outbox until the next start.
      await sparkplug?.stop().catch((err: unknown) => logger.warn({ err }, 'Sparkplug node stop failed'));
      gate.open = next.northbound.type !== 'sparkplug';
      sparkplug = makeSparkplug(nextSparkplug);
      await sparkplug?.start();
      gate.emit('readable');
      logger.info({ northbound: next.northbound.type }, 'northbound changed');
    } else if (catalogueChanged) sparkplug?.birth('configuration changed');
    const reconnected = await uplink.reconfigure({
      batchSize: next.uplink.batchSize, window: next.uplink.window, statusIntervalMs: next.uplink.statusIntervalS * 1000,
      reconnect: { minMs: next.hub.reconnectMinMs, maxMs: next.hub.reconnectMaxMs },
      ...(nextLogin ? { url: next.hub.url, username: nextLogin.username, password: nextLogin.password, mqttOptions: nextLogin.mqttOptions, keepaliveS: next.hub.keepaliveS } : {}),
    });
    const pending = (['outbox', 'http'] as const).filter((k) => !same((next as unknown as Record<string, unknown>)[k], (startedWith as unknown as Record<string, unknown>)[k])).map((k) => `/${k}`);
    logger.info({ restartedBuses: change.buses, restartedDevices: change.devices, reconnected, pending }, 'configuration changed');
    return { restarted: { ...change, uplink: reconnected }, pending };
  };
  const configAgent = new ConfigAgent({
    gatewayId: config.gatewayId, logger: logger.child({ component: 'config' }), files, uplink, boot, local, source, baseProfiles: profiles,
    apply: (next) => reconfigure(next.config, next.profiles),
    ...(opts.confirmWindowMs !== undefined ? { confirmWindowMs: opts.confirmWindowMs } : {}),
  });
  const commands = new CommandHandler({
    gatewayId: config.gatewayId, logger: logger.child({ component: 'commands' }), uplink, version: VERSION,
    readNow: (device, points) => southbound.readNow(device, points),
    latest: (device) => [...(latest.get(device)?.values() ?? [])].map((r) => ({ ...r })),
    hasDevice: (device) => southbound.driver(device) !== undefined,
    writePoint: (device, point, value) => writePoint(device, point, value),
    restart: (target) => southbound.restart(target),
    configState: () => ({ version: configAgent.runningVersion, status: configAgent.reported.status }),
    ...(opts.logRing ? { logs: opts.logRing } : {}),
  });
  const firmwareAgent = new FirmwareAgent({
    gatewayId: config.gatewayId, dataDir: config.dataDir, logger: logger.child({ component: 'firmware' }), uplink, onEvent,
    config: () => config, profiles: () => currentProfiles, openPort: opts.serialPortFactory ?? openSerialPort,
    driver: (id) => southbound.driver(id), latest: (device, point) => {
      const r = latest.get(device)?.get(point);
      return r && { ...r };
    }, provisionedKeys: login.firmwareKeys ?? [],
  });
  const writePoint = async (deviceId: string, point: string, value: unknown): Promise<void> => {
    const driver = southbound.driver(deviceId);
    if (!driver) throw new IocError('GW_ERR_WRITE_REFUSED', `no enabled device '${deviceId}' on this gateway`, { context: { device: deviceId, point } });
    if (!driver.write) throw new IocError('GW_ERR_WRITE_REFUSED', `device '${deviceId}' has no writable points (its protocol is read-only)`, { context: { device: deviceId, point } });
    await driver.write(point, value);
  };
  const services: Startable[] = [outbox, gate, alarms, southboundLines, uplink, ...(sparkplug ? [sparkplug] : []), configAgent, commands, firmwareAgent, pacer, southboundDrivers, ...(http ? [http] : [])];
  await startAll(services);
  running = true;
  // Every configured bus counts: a serial-line bus has no line service of its own (its device opens the port).
  logger.info({ configVersion: boot.running.version, devices: southbound.drivers().length, buses: config.buses.length, hub: config.hub.url }, 'gateway started');
  let stopping: Promise<void> | null = null;
  return {
    get config() {
      return config;
    },
    outbox,
    uplink,
    bus,
    devices,
    pollStats,
    alarms,
    pacer,
    metrics,
    httpPort: http?.port ?? 0,
    writePoint,
    reconfigure,
    configAgent,
    commands,
    firmware: firmwareAgent,
    get sparkplug() {
      return sparkplug;
    },
    /** Idempotent: a second call waits for the first. */
    stop() {
      stopping ??= (async () => {
        // Pollers first (no new readings), then the uplink, then the outbox flushes what is left.
        running = false;
        const onError = (err: unknown): void => logger.error({ err }, 'stop failed');
        for (const s of [...(http ? [http] : []), configAgent, commands, firmwareAgent]) await s.stop().catch(onError);
        await southbound.stopDrivers(onError);
        await pacer.stop();
        await sparkplug?.stop().catch(onError);
        await uplink.stop().catch(onError);
        await gate.stop().catch(onError);
        await southbound.stopLines(onError);
        for (const s of [alarms, outbox]) await s.stop().catch(onError);
        bus.removeAllListeners();
        logger.info('gateway stopped');
      })();
      return stopping;
    },
  };
}
