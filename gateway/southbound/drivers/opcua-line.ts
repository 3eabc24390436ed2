/**
 * One OPC UA server (a bus): a node-opcua client, one session, one
 * subscription carrying the monitored items of every device on the bus
 * (OPC UA Part 4 §5.13 subscriptions, §5.12 monitored items with sampling
 * interval, queue size and an absolute-deadband DataChangeFilter, §7.22.2).
 *
 * Recovery is ours, not node-opcua's: when the connection drops, the session
 * closes, the subscription terminates, the keep-alive fails or no publish
 * response arrives for three keep-alive periods, the client is discarded and
 * a fresh one connects (backoff between attempts), creates a new session and
 * re-creates the subscription and every monitored item. That makes
 * "re-subscribe after a server restart" the ordinary path rather than a
 * special case of session transfer.
 *
 * Security: modes None / Sign / SignAndEncrypt with the configured policy; the
 * gateway's certificate (given, or self-signed in `pkiDir`); the server's
 * certificate must be in `trustList` — unknown servers are trusted only in
 * `devMode`, with a warning. Username/password when configured.
 *
 * This module imports node-opcua and is itself imported lazily (southbound.ts),
 * so gateways without OPC UA never load it.
 */
import { readFile } from 'node:fs/promises';
import {
  AttributeIds, DataChangeFilter, DataChangeTrigger, DataType, MessageSecurityMode, OPCUACertificateManager, OPCUAClient, SecurityPolicy,
  TimestampsToReturn, UserTokenType, Variant, type ClientSession, type ClientSubscription, type DataValue, type UserIdentityInfo,
} from 'node-opcua';
import { IocError, type ErrorCode, type GatewayEvent } from '../../../contract/index.js';
import type { OpcuaPoint } from '../../../device-profiles/index.js';
import { Backoff, type Logger } from '../../../lib/index.js';
import type { OpcuaBusConfig } from '../../config.js';
import { eventId } from '../device-state.js';
import { OpcuaDevice, type OpcuaDeviceDeps, type OpcuaWriter } from './opcua-device.js';

/** Dependencies of {@link OpcuaLine}. */
export interface OpcuaLineDeps {
  config: OpcuaBusConfig;
  logger: Logger;
  onEvent: (event: GatewayEvent) => void;
}

/** Deadband type Absolute (Part 4 §7.22.2). */
const DEADBAND_ABSOLUTE = 1;
/** Keep-alive count requested for the subscription (Part 4 §5.13.2). */
const MAX_KEEPALIVE_COUNT = 10;

/**
 * The client's transport (socket inactivity) timeout for a subscription whose
 * keep-alive period is `keepAliveMs` (publishing interval × max keep-alive
 * count, Part 4 §5.13.1.1): a server whose values do not change sends nothing
 * but a keep-alive once per period, so the transport must wait at least two
 * periods plus the request timeout before it calls the connection dead. The
 * bus `timeoutMs` (a request timeout) is never enough on its own: with the
 * old `transportTimeout = timeoutMs` (5 s) and a 500 ms × 10 keep-alive, a
 * quiet server looked lost every ~5 s (issue 14.1).
 */
export function transportTimeoutFor(keepAliveMs: number, requestTimeoutMs: number): number {
  return 2 * keepAliveMs + requestTimeoutMs;
}

const DATA_TYPES: Record<OpcuaPoint['type'], DataType> = {
  bool: DataType.Boolean, int16: DataType.Int16, uint16: DataType.UInt16, int32: DataType.Int32, uint32: DataType.UInt32,
  float32: DataType.Float, int64: DataType.Int64, uint64: DataType.UInt64, float64: DataType.Double, string: DataType.String,
};

/**
 * Maps what node-opcua threw to a catalogue error. `trustHint` says how to
 * trust the server where the error is seen: the gateway's bus `trustList` by
 * default, the CLI's own `--trust` flag in `probe` and `scan`.
 */
export function classifyOpcuaError(err: unknown, url: string, trustHint = "add the server's certificate file to the bus's trustList"): IocError {
  if (err instanceof IocError) return err;
  const msg = (err as Error)?.message ?? String(err);
  let code: ErrorCode = 'GW_ERR_OPCUA_CONNECT';
  let detail = `cannot connect to OPC UA server ${url}: ${msg}`;
  if (/BadCertificate|Certificate verification failed/i.test(msg)) {
    code = 'GW_ERR_OPCUA_CERT_UNTRUSTED';
    detail = `the certificate of OPC UA server ${url} is not trusted (${msg.slice(0, 200)}): ${trustHint}`;
  } else if (/BadUserAccessDenied|BadIdentityToken|BadSecurityPolicyRejected|BadSecurityModeRejected|cannot find endpoint|BadCertificateUseNotAllowed|BadSecurityChecksFailed/i.test(msg)) {
    code = 'GW_ERR_OPCUA_AUTH';
    detail = `OPC UA server ${url} refused the identity or security settings: ${msg.slice(0, 300)}`;
  }
  return new IocError(code, detail, { cause: err, context: { endpoint: url } });
}

/** PEM (first certificate) or DER file → DER bytes. */
async function readCertificateDer(file: string): Promise<Buffer> {
  const data = await readFile(file);
  const text = data.toString('latin1');
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(text);
  return m ? Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64') : data;
}

/** An OPC UA server and the devices read from it. */
export class OpcuaLine implements OpcuaWriter {
  private readonly devices: OpcuaDevice[] = [];
  private readonly backoff: Backoff;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private client: OPCUAClient | null = null;
  private session: ClientSession | null = null;
  private certificateManager: OPCUACertificateManager | null = null;
  private reportedDown: string | null = null;
  private namespaceIndex = new Map<string, number>();
  /** Sessions established since start (1 + reconnections). */
  sessions = 0;
  /** Keep-alive messages received (publish responses without notifications) since start. */
  keepAlives = 0;
  /** Longest keep-alive period a server of this line has granted (ms); sizes the next client's transport timeout. */
  private grantedKeepAliveMs = 0;
  /** The transport timeout of the current (or last) client, ms. */
  transportTimeoutMs = 0;

  constructor(private readonly deps: OpcuaLineDeps) {
    this.backoff = new Backoff({ minMs: deps.config.reconnectMinMs, maxMs: deps.config.reconnectMaxMs });
  }

  get id(): string {
    return this.deps.config.id;
  }

  /** Creates the driver of one device on this server. */
  addDevice(deps: OpcuaDeviceDeps): OpcuaDevice {
    const device = new OpcuaDevice(deps);
    device.attach(this);
    this.devices.push(device);
    return device;
  }

  async start(): Promise<void> {
    const c = this.deps.config;
    this.certificateManager = new OPCUACertificateManager({ rootFolder: c.pkiDir, automaticallyAcceptUnknownCertificate: c.devMode, disableFileWatchers: true } as ConstructorParameters<typeof OPCUACertificateManager>[0]);
    await this.certificateManager.initialize();
    for (const file of c.trustList) {
      try {
        await this.certificateManager.trustCertificate(await readCertificateDer(file));
      } catch (err) {
        throw new IocError('CONFIG_ERR_READ', `bus ${c.id}: cannot read trusted certificate ${file}: ${(err as Error).message}`, { cause: err, context: { file } });
      }
    }
    if (c.devMode) this.deps.logger.warn({ bus: c.id, endpoint: c.endpointUrl }, 'OPC UA devMode: any server certificate is trusted; never use this in the field');
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    for (const d of this.devices) await d.stop();
    await this.certificateManager?.dispose().catch(() => undefined);
    this.certificateManager = null;
  }

  /** Connect, subscribe, wait for the loss, repeat — until stopped. */
  private async run(): Promise<void> {
    while (this.running) {
      let lost: IocError;
      try {
        lost = await this.connectAndServe();
      } catch (err) {
        lost = classifyOpcuaError(err, this.deps.config.endpointUrl);
      }
      await this.teardown();
      if (!this.running) break;
      this.down(lost);
      const wait = this.backoff.next();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** One session's life. Resolves with the reason it ended. */
  private async connectAndServe(): Promise<IocError> {
    const c = this.deps.config;
    const minPublishing = Math.min(...this.devices.map((d) => d.deps.profile.opcua.publishingIntervalMs), 60_000);
    const keepAliveMs = Math.max(minPublishing * MAX_KEEPALIVE_COUNT, this.grantedKeepAliveMs);
    this.transportTimeoutMs = transportTimeoutFor(keepAliveMs, c.timeoutMs);
    const client = OPCUAClient.create({
      applicationName: 'ioc-edge-gateway',
      endpointMustExist: false,
      securityMode: MessageSecurityMode[c.securityMode],
      securityPolicy: SecurityPolicy[c.securityPolicy],
      connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
      clientCertificateManager: this.certificateManager as OPCUACertificateManager,
      ...(c.certificateFile ? { certificateFile: c.certificateFile, privateKeyFile: c.privateKeyFile } : {}),
      keepSessionAlive: true,
      requestedSessionTimeout: 60_000,
      defaultTransactionTimeout: c.timeoutMs,
      transportTimeout: this.transportTimeoutMs,
    });
    this.client = client;
    let endSession: (e: IocError) => void = () => undefined;
    const ended = new Promise<IocError>((resolve) => (endSession = resolve));
    const lostWith = (why: string) => () => endSession(new IocError('GW_ERR_OPCUA_SESSION', `OPC UA server ${c.endpointUrl}: ${why}`, { context: { bus: c.id, endpoint: c.endpointUrl } }));
    client.on('connection_lost', lostWith('connection lost'));
    await client.connect(c.endpointUrl);
    const identity: UserIdentityInfo = c.username ? { type: UserTokenType.UserName, userName: c.username, password: c.password ?? '' } : { type: UserTokenType.Anonymous };
    const session = await client.createSession(identity);
    this.session = session;
    session.on('session_closed', lostWith('session closed'));
    session.on('keepalive_failure', lostWith('keep-alive failed'));
    const namespaces = await session.readNamespaceArray();
    this.namespaceIndex = new Map(namespaces.map((uri, i) => [uri, i]));
    const subscription = await session.createSubscription2({
      requestedPublishingInterval: minPublishing, requestedLifetimeCount: MAX_KEEPALIVE_COUNT * 6, requestedMaxKeepAliveCount: MAX_KEEPALIVE_COUNT,
      maxNotificationsPerPublish: 10_000, publishingEnabled: true, priority: 10,
    });
    subscription.on('terminated', lostWith('subscription terminated'));
    // The server may revise the publishing interval and keep-alive count (Part 4 §5.13.2.2). A granted
    // keep-alive period the transport timeout cannot cover would make a quiet server look lost: once,
    // reconnect with a client sized for it.
    const granted = subscription.publishingInterval * subscription.maxKeepAliveCount;
    if (granted > this.grantedKeepAliveMs) this.grantedKeepAliveMs = granted;
    if (transportTimeoutFor(granted, c.timeoutMs) > this.transportTimeoutMs) {
      this.deps.logger.info({ bus: c.id, endpoint: c.endpointUrl, keepAliveMs: granted, transportTimeoutMs: this.transportTimeoutMs }, 'OPC UA server granted a longer keep-alive period than requested: reconnecting with a longer transport timeout');
      return new IocError('GW_ERR_OPCUA_SESSION', `OPC UA server ${c.endpointUrl} granted a keep-alive period of ${granted} ms; reconnecting with a transport timeout that covers it`, { context: { bus: c.id, endpoint: c.endpointUrl } });
    }
    // A server that hangs with the socket open: no publish response for three keep-alive periods.
    let lastPublish = Date.now();
    subscription.on('keepalive', () => {
      lastPublish = Date.now();
      this.keepAlives++;
    });
    subscription.on('received_notifications', () => (lastPublish = Date.now()));
    const silentAfter = 3 * Math.max(granted, MAX_KEEPALIVE_COUNT * 100) + c.timeoutMs;
    const watchdog = setInterval(() => {
      if (Date.now() - lastPublish > silentAfter) lostWith(`no publish response for ${silentAfter} ms`)();
    }, Math.min(1000, silentAfter / 3));
    try {
      for (const device of this.devices) await this.monitorDevice(subscription, device);
      this.sessions++;
      this.backoff.reset();
      this.up();
      for (const device of this.devices) device.onConnected();
      return await Promise.race([ended, new Promise<IocError>((resolve) => (this.wake = () => resolve(new IocError('GW_ERR_OPCUA_SESSION', 'stopped'))))]);
    } finally {
      clearInterval(watchdog);
      this.wake = null;
    }
  }

  /** Creates one monitored item per point; a refused item makes that point bad, not the device down. */
  private async monitorDevice(subscription: ClientSubscription, device: OpcuaDevice): Promise<void> {
    const s = device.deps.profile.opcua;
    await Promise.all(device.points.map(async (point) => {
      let nodeId: string;
      try {
        nodeId = this.resolveNodeId(point.nodeId, s.namespaceUri);
      } catch (err) {
        device.onItemError(point, err as IocError);
        return;
      }
      const filter = point.deadband !== undefined && point.deadband > 0
        ? new DataChangeFilter({ trigger: DataChangeTrigger.StatusValue, deadbandType: DEADBAND_ABSOLUTE, deadbandValue: point.deadband / Math.abs(point.scale) })
        : null;
      try {
        const item = await subscription.monitor(
          { nodeId, attributeId: AttributeIds.Value },
          { samplingInterval: point.samplingIntervalMs ?? s.samplingIntervalMs, queueSize: point.queueSize ?? s.queueSize, discardOldest: true, ...(filter ? { filter } : {}) },
          TimestampsToReturn.Both,
        );
        // A refused item (unknown node, filter not allowed…) resolves with a bad status code.
        const created = item.result?.statusCode ?? item.statusCode;
        if (created && !created.isGood()) {
          device.onItemError(point, nodeError(point, nodeId, `monitored item refused: ${created.name}`));
          return;
        }
        item.on('changed', (dv: DataValue) => device.onValue(point, dv.value?.value, dv.statusCode.name, dv.sourceTimestamp?.getTime() ?? dv.serverTimestamp?.getTime() ?? null));
        item.on('err', (message: string) => device.onItemError(point, nodeError(point, nodeId, message)));
      } catch (err) {
        device.onItemError(point, nodeError(point, nodeId, (err as Error).message));
      }
    }));
  }

  /** `s=X` with the profile's namespace URI → `ns=<index>;s=X`. */
  private resolveNodeId(nodeId: string, namespaceUri?: string): string {
    if (nodeId.startsWith('ns=') || !namespaceUri) return nodeId;
    const index = this.namespaceIndex.get(namespaceUri);
    if (index === undefined) throw new IocError('GW_ERR_OPCUA_NODE', `namespace ${namespaceUri} is not on server ${this.deps.config.endpointUrl}`, { context: { nodeId, namespaceUri } });
    return `ns=${index};${nodeId}`;
  }

  async writeValue(device: OpcuaDevice, point: OpcuaPoint, raw: number | boolean | string): Promise<void> {
    const session = this.session;
    if (!session) throw new IocError('GW_ERR_OPCUA_SESSION', `no session with OPC UA server ${this.deps.config.endpointUrl}`, { context: { device: device.id, point: point.name } });
    const nodeId = this.resolveNodeId(point.nodeId, device.deps.profile.opcua.namespaceUri);
    let status;
    try {
      status = await session.write({ nodeId, attributeId: AttributeIds.Value, value: { value: new Variant({ dataType: DATA_TYPES[point.type], value: raw }) } });
    } catch (err) {
      throw new IocError('GW_ERR_OPCUA_SESSION', `write of ${point.name} failed: ${(err as Error).message}`, { cause: err, context: { device: device.id, point: point.name } });
    }
    if (!status.isGood()) throw nodeError(point, nodeId, `write refused: ${status.name}`);
  }

  private async teardown(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.session = null;
    if (!client) return;
    client.removeAllListeners();
    // disconnect() also stops node-opcua's own reconnection attempts; a dead server must not hang it.
    await Promise.race([client.disconnect().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
  }

  private down(err: IocError): void {
    for (const d of this.devices) d.onDisconnected(err);
    if (this.reportedDown === err.code) return;
    this.reportedDown = err.code;
    const c = this.deps.config;
    this.deps.logger.warn({ bus: c.id, endpoint: c.endpointUrl, code: err.code, err: err.message }, 'OPC UA server unavailable');
    this.event('bus.down', 'warning', err.message, err.code);
  }

  private up(): void {
    const c = this.deps.config;
    if (this.reportedDown) this.event('bus.up', 'info', `bus ${c.id}: OPC UA session with ${c.endpointUrl} re-established, subscriptions re-created`);
    this.deps.logger.info({ bus: c.id, endpoint: c.endpointUrl, sessions: this.sessions, items: this.devices.reduce((n, d) => n + d.points.length, 0) }, 'OPC UA session up, items monitored');
    this.reportedDown = null;
  }

  private event(type: string, severity: GatewayEvent['severity'], message: string, code?: string): void {
    const ev: GatewayEvent = { v: 1, id: eventId(), ts: Date.now(), type, severity, message: message.slice(0, 1024), data: { bus: this.id, endpoint: this.deps.config.endpointUrl } };
    if (code) ev.code = code;
    this.deps.onEvent(ev);
  }
}

function nodeError(point: OpcuaPoint, nodeId: string, message: string): IocError {
  return new IocError('GW_ERR_OPCUA_NODE', `point '${point.name}' (${nodeId}): ${message}`, { context: { point: point.name, nodeId } });
}
