/**
 * `ioc-edge hub run`: runs the hub in the foreground (what a systemd unit
 * starts). With authentication (or --auth open on loopback only, for generic
 * MQTT tools); TLS from --tls-cert/--tls-key, and
 * plain TCP only on loopback or with --allow-plain (both logged as a
 * warning). SIGINT/SIGTERM stop it cleanly.
 */
import { readFile } from 'node:fs/promises';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { IocError, isIocError } from '../../contract/index.js';
import { createLogger, installProcessPolicy, StopSignals } from '../../lib/index.js';
import { startHub } from '../hub.js';
import type { Command } from './command.js';
import { parse, parseDuration } from './parse.js';
import { dataLimitsFromFlags } from '../data-limits.js';
import { parseBrokerLimits } from '../broker/broker-limits.js';
import { readTrustedKeys } from './trusted-keys.js';
import { redact } from '../store/postgres/pg-pool.js';

const HELP = `Usage: ioc-edge hub run --data-dir DIR [options]

Runs the hub: MQTT broker with authentication and access control, ingest,
registry and HTTP API. Make the first admin token with
'ioc-edge token create --data-dir DIR --name NAME --role admin'.

  --data-dir DIR              SQLite files (telemetry, registry)
  --store URL                 where telemetry, events and alarms live: postgres://user@host:5432/db?schema=name
                              (migrated at start; see 'ioc-edge hub migrate'), sqlite:DIR, or absent for
                              SQLite in --data-dir. Precedence: --store, then IOC_EDGE_STORE (or IOC_EDGE_HUB_STORE),
                              then "store" in --config, then SQLite in --data-dir
  --config FILE               hub configuration file (JSON): {"store": "postgres://…"}
  --redis URL                 run as one node of a cluster linked through Redis (redis://host:6379;
                              also IOC_EDGE_REDIS); needs a postgres:// store (docs/cluster.md)
  --node-id ID                this node's id in logs and metrics (default <hostname>-<pid>)
  --mqtt-host H --mqtt-port N MQTT listener (default 127.0.0.1:8883 with TLS, :1883 without)
  --http-host H --http-port N API listener (default 127.0.0.1:8443 with TLS, :8080 without)
  --tls-cert FILE --tls-key FILE  PEM certificate (with chain) and key for MQTT and the API
  --allow-plain               accept plain TCP on a non-loopback address (trusted network only)
  --auth required|open        'open': no credentials and no ACL, for generic MQTT tools and
                              conformance suites; loopback only (refused elsewhere), logged as a warning
  --mqtt-trusted-proxy LIST   comma-separated load balancer addresses sending a PROXY protocol
                              v1/v2 header on the MQTT listener (their header names the client)
  --broker-limit NAME=N       change one per-client broker bound (repeatable), e.g.
                              maxQueuedPerSession=5000, maxSubscriptions.other=64 (docs/security.md)
  --api-trusted-proxy LIST    comma-separated addresses or CIDR ranges of reverse proxies in front of
                              the API whose X-Forwarded-For names the client (limiter, audit)
  --api-proxy-protocol LIST   comma-separated TCP load balancer addresses sending a PROXY protocol
                              v1/v2 header on the API listener (their header names the client)
  --fw-trusted-key FILE       Ed25519 public key (base64 or PEM) that firmware manifests must be signed
                              by to be accepted at upload (repeatable; also IOC_EDGE_FW_TRUSTED_KEYS,
                              files separated by ':'); with none, any signed manifest is stored
  --secrets-key FILE          key sealing pushed configuration secrets (default DIR/secrets.key,
                              created mode 0600 on first start; back it up with the data directory)
  --readings-keep DURATION    raw readings kept (default 30d); older ones live on in rollups
  --rollups LIST              rollup levels WIDTH:KEEP, finest first (default 1m:90d,1h:730d; 'none')
  --readings-max-bytes SIZE   size cap of the telemetry store, oldest raw readings rolled up first
                              (bytes, or with K/M/G; default none)
  --clock-skew DURATION       how far ahead of the hub's clock a reading or event may be stamped (default 5m)
  --data-limit NAME=VALUE     any other data limit (repeatable), e.g. quarantine.maxBytes=64M,
                              events.keepMs=365d, maxSeriesPerGateway=50000 (docs/security.md "Data limits")
  --log-level LEVEL           trace … error (default info)
  --pretty                    human-readable logs`;

function port(s: string | undefined, def: number): number {
  if (s === undefined) return def;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`'${s}' is not a port number`);
  return n;
}

/** Where the chosen store came from (logged with the store, its password redacted). */
export type StoreSource = 'flag' | 'env' | 'file' | 'default';

/**
 * The hub's store: `--store`, else the environment (IOC_EDGE_STORE, or the
 * older IOC_EDGE_HUB_STORE), else the `store` key of the `--config` file,
 * else none (SQLite in the data directory). One rule for `hub run`,
 * `hub migrate`, `hub export` / `hub import` and `token create`.
 */
export function chooseStore(flag: string | undefined, file?: string): { store: string | undefined; from: StoreSource } {
  if (flag) return { store: flag, from: 'flag' };
  const env = process.env.IOC_EDGE_STORE || process.env.IOC_EDGE_HUB_STORE;
  if (env) return { store: env, from: 'env' };
  if (file) return { store: file, from: 'file' };
  return { store: undefined, from: 'default' };
}

/** `--store`, else the environment, else none (see {@link chooseStore}). */
export function storeOption(flag: string | undefined): string | undefined {
  return chooseStore(flag).store;
}

/** The hub's configuration file (`--config FILE`): JSON, checked against this schema (unknown keys refused). */
export const HUB_CONFIG_SCHEMA = {
  $id: 'ioc-edge-hub-config',
  type: 'object',
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    store: { type: 'string', minLength: 1, description: 'postgres://user@host:5432/db?schema=name, sqlite:DIR, or sqlite' },
  },
} as const;

/** What the configuration file may hold. */
export interface HubConfigFile {
  store?: string;
}

const validateHubConfig = new Ajv2020({ allErrors: true, strict: true }).compile<HubConfigFile>(HUB_CONFIG_SCHEMA);

/** Reads and checks the hub's configuration file; a bad one throws CONFIG_ERR_INVALID naming the file and JSON pointer. */
export async function readHubConfig(file: string): Promise<HubConfigFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new IocError('CONFIG_ERR_READ', `cannot read hub configuration ${file}: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new IocError('CONFIG_ERR_INVALID', `hub configuration ${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!validateHubConfig(doc)) {
    const why = (validateHubConfig.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.keyword === 'additionalProperties' ? ` ('${(e.params as { additionalProperty: string }).additionalProperty}')` : ''}`).join('; ');
    throw new IocError('CONFIG_ERR_INVALID', `hub configuration ${file}: ${why}`);
  }
  return doc;
}

/** `--redis`, else IOC_EDGE_REDIS, else none (a single hub). */
export function redisOption(flag: string | undefined): string | undefined {
  return flag ?? (process.env.IOC_EDGE_REDIS || undefined);
}

export const hubRun: Command = {
  name: 'hub run',
  summary: 'run the hub (broker, ingest, registry, API) with authentication',
  async run(args, io) {
    const p = parse(args, {
      'data-dir': { type: 'string' }, store: { type: 'string' }, config: { type: 'string' }, redis: { type: 'string' }, 'node-id': { type: 'string' }, 'mqtt-host': { type: 'string' }, 'mqtt-port': { type: 'string' }, 'http-host': { type: 'string' }, 'http-port': { type: 'string' },
      'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'allow-plain': { type: 'boolean' }, auth: { type: 'string' }, 'mqtt-trusted-proxy': { type: 'string' }, 'broker-limit': { type: 'string', multiple: true }, 'api-trusted-proxy': { type: 'string' }, 'api-proxy-protocol': { type: 'string' }, 'fw-trusted-key': { type: 'string', multiple: true }, 'secrets-key': { type: 'string' },
      'readings-keep': { type: 'string' }, rollups: { type: 'string' }, 'readings-max-bytes': { type: 'string' }, 'clock-skew': { type: 'string' }, 'data-limit': { type: 'string', multiple: true }, 'log-level': { type: 'string' }, pretty: { type: 'boolean' },
    }, HELP, io);
    if ('exit' in p) return p.exit;
    const v = p.values;
    if (!v['data-dir'] || Boolean(v['tls-cert']) !== Boolean(v['tls-key'])) {
      io.err.write(`${!v['data-dir'] ? 'missing --data-dir' : '--tls-cert and --tls-key go together'}\n${HELP}\n`);
      return 2;
    }
    if (v.auth !== undefined && v.auth !== 'required' && v.auth !== 'open') {
      io.err.write(`--auth must be 'required' or 'open', got '${v.auth}'\n${HELP}\n`);
      return 2;
    }
    if (v['node-id'] !== undefined && !redisOption(v.redis)) {
      io.err.write(`--node-id names a cluster node: give --redis URL (or IOC_EDGE_REDIS) too\n${HELP}\n`);
      return 2;
    }
    let limits;
    try {
      limits = parseBrokerLimits(v['broker-limit'] ?? []);
    } catch (e) {
      io.err.write(`${(e as Error).message}\n${HELP}\n`);
      return 2;
    }
    let data;
    try {
      data = dataLimitsFromFlags({ readingsKeep: v['readings-keep'], rollups: v.rollups, readingsMaxBytes: v['readings-max-bytes'], clockSkew: v['clock-skew'], other: v['data-limit'] ?? [] }, parseDuration);
    } catch (e) {
      io.err.write(`${(e as Error).message}\n${HELP}\n`);
      return 2;
    }
    const proxies = v['mqtt-trusted-proxy']?.split(',').map((a) => a.trim()).filter(Boolean);
    const apiProxies = v['api-trusted-proxy']?.split(',').map((a) => a.trim()).filter(Boolean);
    const apiBalancers = v['api-proxy-protocol']?.split(',').map((a) => a.trim()).filter(Boolean);
    let fwKeys: string[];
    try {
      fwKeys = await readTrustedKeys([...(v['fw-trusted-key'] ?? []), ...(process.env.IOC_EDGE_FW_TRUSTED_KEYS ?? '').split(':').filter(Boolean)]);
    } catch (e) {
      io.err.write(`${(e as Error).message}\n`);
      return 2;
    }
    let chosen: ReturnType<typeof chooseStore>;
    try {
      chosen = chooseStore(v.store, v.config ? (await readHubConfig(v.config)).store : undefined);
    } catch (e) {
      io.err.write(`${(e as Error).message}\n`);
      return 2;
    }
    const tls = v['tls-cert'] ? { certFile: v['tls-cert'], keyFile: v['tls-key']! } : undefined;
    let hub;
    let uninstallPolicy = (): void => undefined;
    // From here on a SIGTERM/SIGINT stops the hub cleanly, also one that comes while it starts (lib/stop-signals.ts).
    let log: ReturnType<typeof createLogger> | null = null;
    const signals = new StopSignals('hub', () => log);
    try {
      const logger = createLogger({ level: v['log-level'] ?? 'info', pretty: v.pretty ?? false, destination: io.out });
      log = logger;
      // An uncaught exception or unhandled rejection: fatal JSON line with the stack, exit 70 (lib/process-policy.ts).
      uninstallPolicy = installProcessPolicy(logger, { name: 'hub' });
      // Everything the hub creates is private to its user (issue 13; the systemd unit sets UMask=0077 too).
      process.umask(0o077);
      // The store and where it came from, its password never in a log line.
      logger.info({ store: chosen.store ? redact(chosen.store) : `sqlite:${v['data-dir']}`, from: chosen.from }, 'hub store chosen');
      hub = await startHub({
        dataDir: v['data-dir'], logger, ...(chosen.store ? { store: chosen.store } : {}), auth: { mode: v.auth === 'open' ? 'open' : 'required' }, brokerLimits: limits,
        ...(proxies?.length ? { mqttProxyProtocol: { trusted: proxies } } : {}), ...(tls ? { tls } : {}), allowPlain: v['allow-plain'] ?? false,
        ...(fwKeys.length > 0 ? { firmware: { trustedKeys: fwKeys } } : {}), ...(apiProxies?.length ? { trustedProxies: apiProxies } : {}),
        ...(apiBalancers?.length ? { apiProxyProtocol: { trusted: apiBalancers } } : {}),
        ...(v['secrets-key'] ? { secretsKeyFile: v['secrets-key'] } : {}), data,
        ...(redisOption(v.redis) ? { cluster: { redis: redisOption(v.redis)!, ...(v['node-id'] ? { nodeId: v['node-id'] } : {}) } } : {}),
        mqttHost: v['mqtt-host'] ?? '127.0.0.1', mqttPort: port(v['mqtt-port'], tls ? 8883 : 1883),
        httpHost: v['http-host'] ?? '127.0.0.1', httpPort: port(v['http-port'], tls ? 8443 : 8080),
      });
      logger.info({ mqttPort: hub.mqttPort, httpPort: hub.httpPort, tls: hub.tls, fwTrustedKeys: fwKeys.length, ...(hub.cluster ? { node: hub.cluster.nodeId, broker: hub.cluster.brokerId } : {}) }, 'hub running');
    } catch (e) {
      signals.dispose();
      uninstallPolicy();
      io.err.write(`ioc-edge: hub not started: ${redact(isIocError(e) ? e.message : (e as Error).message)}\n`);
      return 1;
    }
    await signals.wait();
    await hub.stop();
    log?.info('hub stopped');
    uninstallPolicy();
    return 0;
  },
};
