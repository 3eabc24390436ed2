/**
 * Sparkplug B 3.0 topic names (spec §4.1): `spBv1.0/group_id/message_type/edge_node_id[/device_id]`
 * ([tck-id-topic-structure]) and the host's `spBv1.0/STATE/host_id`.
 */

/** The Sparkplug B namespace ([tck-id-topic-structure-namespace-a]). */
export const SPB_NAMESPACE = 'spBv1.0';

/** Node-level message types. */
export type NodeMessage = 'NBIRTH' | 'NDEATH' | 'NDATA' | 'NCMD';
/** Device-level message types. */
export type DeviceMessage = 'DBIRTH' | 'DDEATH' | 'DDATA' | 'DCMD';

/** Topic of a node-level message ([tck-id-topics-nbirth-topic], …-ndeath-topic, …-ncmd-topic). */
export function nodeTopic(group: string, type: NodeMessage, node: string): string {
  return `${SPB_NAMESPACE}/${group}/${type}/${node}`;
}

/** Topic of a device-level message ([tck-id-topics-dbirth-topic], …-ddata-topic, …-dcmd-topic). */
export function deviceTopic(group: string, type: DeviceMessage, node: string, device: string): string {
  return `${SPB_NAMESPACE}/${group}/${type}/${node}/${device}`;
}

/** Topic of a host application's STATE ([tck-id-host-topic-phid-birth-topic]). */
export function stateTopic(hostId: string): string {
  return `${SPB_NAMESPACE}/STATE/${hostId}`;
}

/**
 * True when `id` may be a group, edge node or device id: UTF-8 without
 * `+`, `/`, `#` ([tck-id-topic-structure-namespace-valid-group-id],
 * [...-valid-edge-node-id], [...-valid-device-id]) and not empty.
 */
export function validSparkplugId(id: string): boolean {
  return id.length > 0 && !/[+/#]/.test(id);
}

/** Parses a topic of this namespace; null for anything else. */
export function parseTopic(topic: string): { group: string; type: string; node: string; device?: string } | null {
  const p = topic.split('/');
  if (p[0] !== SPB_NAMESPACE || p.length < 3) return null;
  if (p[1] === 'STATE') return { group: '', type: 'STATE', node: p.slice(2).join('/') };
  if (p.length !== 4 && p.length !== 5) return null;
  return { group: p[1]!, type: p[2]!, node: p[3]!, ...(p.length === 5 ? { device: p[4]! } : {}) };
}
