/**
 * The Sparkplug settings of a gateway configuration, resolved: group id from
 * the configuration or the site of the provisioned credential, edge node id
 * from the gateway id, client id and fence topic defaults.
 */
import { IocError } from '../../contract/index.js';
import type { GatewayConfig } from '../config.js';
import type { SparkplugSettings } from './sparkplug-node.js';
import { validSparkplugId } from './sparkplug-topics.js';

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
