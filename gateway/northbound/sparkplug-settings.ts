/**
 * The Sparkplug settings of a gateway configuration, resolved (group id from
 * the configuration or the site of the provisioned credential, edge node id
 * from the gateway id, client id and fence topic defaults), and the types of
 * the edge node's dependencies and counters (sparkplug-node.ts).
 */
import type { IClientOptions } from 'mqtt';
import { IocError, type Reading } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { GatewayConfig } from '../config.js';
import type { Outbox } from '../outbox/outbox.js';
import type { SparkplugDevice } from './sparkplug-session.js';
import { validSparkplugId } from './sparkplug-topics.js';

/** Settings of the Sparkplug northbound (gateway configuration `northbound`, resolved). */
export interface SparkplugSettings {
  url: string;
  groupId: string;
  edgeNodeId: string;
  /** Host application to wait for (STATE); absent = birth as soon as connected. */
  primaryHostId?: string;
  clientId: string;
  username?: string;
  password?: string;
  keepaliveS: number;
  reconnect: { minMs: number; maxMs: number };
  /** Most readings per outbox batch (DDATA messages are per device within a batch). */
  batchSize: number;
  /** Outbox batches whose fence is unacknowledged at most. */
  window: number;
  /** Topic of the QoS 1 fence after each batch (outside spBv1.0). */
  fenceTopic: string;
  mqttOptions?: Partial<IClientOptions>;
}

/** Dependencies of {@link SparkplugNode}. */
export interface SparkplugNodeDeps {
  settings: SparkplugSettings;
  logger: Logger;
  outbox: Outbox;
  /** Enabled devices with their profile points, configuration order. */
  devices(): SparkplugDevice[];
  /** Health of a device ('down' devices get a DDEATH after their birth). */
  health(device: string): 'up' | 'down' | 'unknown' | undefined;
  /** Last reading of each point of a device (birth values, refused-write answers). */
  latest(device: string): Reading[];
  /** The gateway's write path (profile checks, then the driver). */
  writePoint(device: string, point: string, value: unknown): Promise<void>;
  /** Where the last bdSeq is kept. */
  bdSeqFile: string;
  clock?: () => number;
}

/** Counters for tests, status and metrics. */
export interface SparkplugStats {
  connected: boolean;
  born: boolean;
  hostOnline: boolean | null;
  bdSeq: number;
  /** Outbox batches whose fence is not yet acknowledged. */
  inFlight: number;
  births: number;
  batchesAcked: number;
  readingsAcked: number;
  commandsRefused: number;
  readingsSkipped: number;
}

/**
 * Settings of the Sparkplug northbound, or null when the northbound is ioc/v1.
 * @throws IocError GW_ERR_SPARKPLUG_CONFIG when no group id can be found or an id is not a valid Sparkplug id.
 */
export function sparkplugSettings(config: GatewayConfig, site: string | undefined): SparkplugSettings | null {
  const nb = config.northbound;
  if (nb?.type !== 'sparkplug') return null;
  const groupId = nb.groupId ?? site;
  if (groupId === undefined) {
    throw new IocError('GW_ERR_SPARKPLUG_CONFIG', `northbound is sparkplug but there is no group id: set /northbound/groupId, or provision the gateway so its credential names its site`, { context: { pointer: '/northbound/groupId' } });
  }
  const edgeNodeId = nb.edgeNodeId ?? config.gatewayId;
  for (const [name, id] of [['groupId', groupId], ['edgeNodeId', edgeNodeId]] as const) {
    if (!validSparkplugId(id)) throw new IocError('GW_ERR_SPARKPLUG_CONFIG', `Sparkplug ${name} '${id}' is empty or holds +, / or #; choose another in /northbound/${name}`, { context: { pointer: `/northbound/${name}` } });
  }
  return {
    url: nb.url, groupId, edgeNodeId, clientId: nb.clientId ?? `spb-${edgeNodeId}`,
    ...(nb.primaryHostId !== undefined ? { primaryHostId: nb.primaryHostId } : {}),
    ...(nb.username !== undefined ? { username: nb.username } : {}),
    ...(nb.password !== undefined ? { password: nb.password } : {}),
    keepaliveS: nb.keepaliveS, reconnect: { minMs: nb.reconnectMinMs, maxMs: nb.reconnectMaxMs },
    batchSize: nb.batchSize, window: nb.window, fenceTopic: nb.fenceTopic ?? `ioc-edge/spb/${groupId}/${edgeNodeId}/fence`,
  };
}
