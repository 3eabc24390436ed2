/**
 * One view of a gateway for the API: connection state and last-seen time
 * from the telemetry store (it sees every message), site, location and
 * versions from the registry, and whether its credential is revoked.
 */
import type { GatewayStatus } from '../../contract/index.js';
import type { GatewayRow, TelemetryPort } from '../store/port.js';
import type { IdentityPort, RegistryPort } from '../store/state-ports.js';
import type { RegistryGateway } from '../store/model/registry.js';

/** A gateway as the API lists it. */
export interface GatewayView {
  id: string;
  online: boolean;
  firstSeen?: number;
  lastSeen?: number;
  version?: string;
  firmware?: string;
  backlog?: NonNullable<GatewayStatus['backlog']>;
  devices?: NonNullable<GatewayStatus['devices']>;
  site?: string;
  location?: string;
  hostname?: string;
  registeredAt?: number;
  registeredBy?: string;
  revoked?: boolean;
}

function merge(id: string, seen: GatewayRow | undefined, reg: RegistryGateway | undefined, revoked: boolean | undefined): GatewayView {
  const v: GatewayView = { id, online: seen?.online ?? false };
  if (seen) {
    v.firstSeen = seen.firstSeen;
    v.lastSeen = seen.lastSeen;
    if (seen.status?.backlog) v.backlog = seen.status.backlog;
    if (seen.status?.devices) v.devices = seen.status.devices;
  }
  const version = seen?.status?.version ?? reg?.version;
  if (version) v.version = version;
  const firmware = seen?.status?.firmware ?? reg?.firmware;
  if (firmware) v.firmware = firmware;
  if (reg) {
    if (reg.site !== null) v.site = reg.site;
    if (reg.location !== null) v.location = reg.location;
    if (reg.hostname !== null) v.hostname = reg.hostname;
    v.registeredAt = reg.registeredAt;
    v.registeredBy = reg.registeredBy;
  }
  if (revoked !== undefined) v.revoked = revoked;
  return v;
}

/** Sources of {@link listGatewayViews}. */
export interface GatewayViewSources {
  store: TelemetryPort;
  registry: RegistryPort;
  identities: IdentityPort;
}

/** Every gateway that connected or was registered, sorted by id. */
export async function listGatewayViews(src: GatewayViewSources): Promise<GatewayView[]> {
  const [seen, reg, principals] = await Promise.all([src.store.listGateways(), src.registry.listGateways(), src.identities.listPrincipals('gateway')]);
  const seenById = new Map(seen.map((g) => [g.id, g]));
  const regById = new Map(reg.map((g) => [g.id, g]));
  const revoked = new Map(principals.map((p) => [p.username, p.revokedAt !== null]));
  const ids = [...new Set([...seenById.keys(), ...regById.keys()])].sort();
  return ids.map((id) => merge(id, seenById.get(id), regById.get(id), revoked.get(id)));
}
