/**
 * Gateway configuration: JSON validated against the contract's
 * `gateway-config.schema.json` (ajv, allErrors, defaults applied), then a
 * second pass for what the schema cannot say (unique ids, references to buses
 * and profiles); both live in contract/gateway-config.ts so the hub runs the
 * same checks before it accepts a remote configuration. Errors name the file,
 * the JSON pointer and the reason. The result is deep-frozen.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { checkGatewayConfig, hubUrlList, IocError, type ConfigProblem } from '../contract/index.js';

/** A Modbus TCP endpoint (a device or a gateway to several unit ids). */
export interface ModbusTcpBusConfig {
  id: string;
  type: 'modbus-tcp';
  host: string;
  port: number;
  timeoutMs: number;
  retries: number;
  /** Longest wait between polls of a device that does not answer (ms); default 4000. */
  backoffMaxMs?: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

/** Serial port settings shared by the serial bus types. */
export interface SerialPortConfig {
  path: string;
  baudRate: number;
  parity: 'none' | 'even' | 'odd';
  dataBits: 7 | 8;
  stopBits: 1 | 2;
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

/** Modbus RTU on a serial line (RS-485/RS-232). */
export interface ModbusRtuBusConfig extends SerialPortConfig {
  id: string;
  type: 'modbus-rtu';
  timeoutMs: number;
  retries: number;
  /** Longest wait between polls of a device that does not answer (ms); default 4000. */
  backoffMaxMs?: number;
  /** Extra silence after each frame on top of 3.5 character times (ms). */
  interFrameDelayMs: number;
}

/** Raw Modbus RTU frames over TCP (a serial device server). */
export interface ModbusRtuTcpBusConfig {
  id: string;
  type: 'modbus-rtu-tcp';
  host: string;
  port: number;
  /** Baud rate of the converter's serial side (inter-frame timing). */
  baudRate: number;
  timeoutMs: number;
  retries: number;
  /** Longest wait between polls of a device that does not answer (ms); default 4000. */
  backoffMaxMs?: number;
  interFrameDelayMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

/** A serial port with one line-protocol sensor. */
export interface SerialLineBusConfig extends SerialPortConfig {
  id: string;
  type: 'serial-line';
}

/** An OPC UA server. */
export interface OpcuaBusConfig {
  id: string;
  type: 'opcua';
  endpointUrl: string;
  securityMode: 'None' | 'Sign' | 'SignAndEncrypt';
  /** Resolved: None without security, Basic256Sha256 by default with it. */
  securityPolicy: 'None' | 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';
  certificateFile?: string;
  privateKeyFile?: string;
  trustList: string[];
  /** Resolved: default <dataDir>/pki/<bus id>. */
  pkiDir: string;
  username?: string;
  password?: string;
  devMode: boolean;
  timeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

/** Any bus. */
export type BusConfig = ModbusTcpBusConfig | ModbusRtuBusConfig | ModbusRtuTcpBusConfig | SerialLineBusConfig | OpcuaBusConfig;

/** Bus types that speak Modbus, and the profile protocol each bus type carries (contract/gateway-config.ts). */
export { MODBUS_BUS_TYPES, busProtocol } from '../contract/index.js';

/** A field device on a bus, read with a profile. */
export interface DeviceConfig {
  id: string;
  bus: string;
  profile: string;
  unitId: number;
  pollIntervalMs?: number;
  /** Modbus: this device's request timeout, overriding the bus's. */
  timeoutMs?: number;
  /** Modbus: this device's retries, overriding the bus's. */
  retries?: number;
  /** Modbus: longest wait between polls while the device does not answer, overriding the bus's (ms). */
  backoffMaxMs?: number;
  enabled: boolean;
}

/** The northbound setting (schema `northbound`; docs/sparkplug.md). */
export type NorthboundConfig =
  | { type: 'ioc/v1' }
  | {
    type: 'sparkplug'; url: string; groupId?: string; edgeNodeId?: string; primaryHostId?: string; clientId?: string; username?: string; password?: string;
    keepaliveS: number; reconnectMinMs: number; reconnectMaxMs: number; batchSize: number; window: number; fenceTopic?: string;
  };

/** The gateway configuration after validation and defaults. */
export interface GatewayConfig {
  gatewayId: string;
  dataDir: string;
  profileDirs?: string[];
  hub: {
    /** One hub address, or several joined with commas (written as a list or with commas; the uplink fails over between them). */
    url: string; username?: string; password?: string; keepaliveS: number; reconnectMinMs: number; reconnectMaxMs: number;
    /** Resolved paths: CA of the hub's certificate, provisioned credential, claim token file. */
    ca?: string; credentialFile?: string; claim?: string; claimFile?: string;
  };
  buses: BusConfig[];
  devices: DeviceConfig[];
  outbox: { maxRows: number; maxBytes: number; maxAgeS: number; flushIntervalMs: number; synchronous: 'FULL' | 'NORMAL' };
  uplink: { batchSize: number; window: number; statusIntervalS: number };
  /** Local /metrics, /healthz, /readyz endpoint; absent = off. */
  http?: { host: string; port: number };
  /** Where telemetry goes (issue 17): the hub (ioc/v1, default) or a Sparkplug B broker. */
  northbound: NorthboundConfig;
  /** Firmware updates of the field devices (issue 7): trusted signing keys and download tuning; absent = every offer refused. */
  firmware?: { trustedKeys: string[]; window: number; chunkTimeoutMs: number; stallTimeoutS: number };
}

/** The schema, as JSON (for editors and docs); its file is `contract/schemas/gateway-config.schema.json`. */
export { gatewayConfigSchema, type ConfigProblem } from '../contract/index.js';

function fail(file: string, problems: ConfigProblem[]): never {
  const lines = problems.map((p) => `${file}: ${p.pointer || '/'}: ${p.message}`);
  throw new IocError('CONFIG_ERR_INVALID', `invalid gateway configuration:\n  ${lines.join('\n  ')}`, {
    context: { file, pointer: problems[0]?.pointer ?? '', problems },
  });
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Options of {@link parseGatewayConfig}. */
export interface ParseConfigOptions {
  /** Known profile model names; when given, devices must name one of them. */
  profiles?: ReadonlySet<string> | ReadonlyMap<string, unknown>;
}

/**
 * Validates a configuration document. `file` names it in errors. Relative
 * `dataDir` and `profileDirs` are resolved against the file's folder.
 */
export function parseGatewayConfig(doc: unknown, file: string, opts: ParseConfigOptions = {}): GatewayConfig {
  const { value, problems } = checkGatewayConfig(doc, opts);
  if (problems.length > 0) fail(file, problems);
  const cfg = value as GatewayConfig;
  // A list of hub addresses becomes one comma-joined string: one shape for every reader of hub.url.
  cfg.hub.url = hubUrlList(cfg.hub.url as string | string[]).join(',');
  const base = file.startsWith('<') ? process.cwd() : path.dirname(path.resolve(file));
  cfg.dataDir = path.resolve(base, cfg.dataDir);
  if (cfg.profileDirs) cfg.profileDirs = cfg.profileDirs.map((d) => path.resolve(base, d));
  for (const k of ['ca', 'claimFile'] as const) if (cfg.hub[k] !== undefined) cfg.hub[k] = path.resolve(base, cfg.hub[k]);
  if (cfg.hub.credentialFile !== undefined) cfg.hub.credentialFile = path.resolve(cfg.dataDir, cfg.hub.credentialFile);
  for (const b of cfg.buses) {
    if (b.type !== 'opcua') continue;
    b.securityPolicy ??= b.securityMode === 'None' ? 'None' : 'Basic256Sha256';
    b.pkiDir = path.resolve(base, b.pkiDir ?? path.join(cfg.dataDir, 'pki', b.id));
    b.trustList = b.trustList.map((f) => path.resolve(base, f));
    if (b.certificateFile) b.certificateFile = path.resolve(base, b.certificateFile);
    if (b.privateKeyFile) b.privateKeyFile = path.resolve(base, b.privateKeyFile);
  }
  return deepFreeze(cfg);
}

/** Reads and validates a configuration file. */
export async function loadGatewayConfig(file: string, opts: ParseConfigOptions = {}): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new IocError('CONFIG_ERR_READ', `cannot read gateway configuration ${file}: ${(err as Error).message}`, { cause: err, context: { file } });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    fail(file, [{ pointer: '', message: `not valid JSON: ${(err as Error).message}` }]);
  }
  return parseGatewayConfig(doc, file, opts);
}
