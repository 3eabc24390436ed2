/**
 * Gateways and field devices as the registry records them, from either backend's rows.
 */
import { createHash } from 'node:crypto';
import { IocError, type GatewayStatus, type InventoryDevice } from '../../../contract/index.js';

/** A gateway's registry record. */
export interface RegistryGateway {
  id: string;
  site: string | null;
  location: string | null;
  version: string | null;
  firmware: string | null;
  hostname: string | null;
  registeredAt: number;
  registeredBy: string;
  updatedAt: number;
}

/** A field device as the registry knows it. */
export interface RegistryDevice {
  gateway: string;
  id: string;
  profile: string;
  bus: string;
  busType: string | null;
  address: string | null;
  unitId: number | null;
  enabled: boolean;
  firstSeen: number;
  lastSeen: number;
  removedAt: number | null;
}

type Raw = Record<string, unknown>;
const s = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** A `registry_gateways` row (either backend) as a record. */
export function gatewayFromRow(r: Raw): RegistryGateway {
  return { id: String(r.id), site: s(r.site), location: s(r.location), version: s(r.version), firmware: s(r.firmware), hostname: s(r.hostname), registeredAt: Number(r.registered_at), registeredBy: String(r.registered_by), updatedAt: Number(r.updated_at) };
}

/** A `registry_devices` row as a record (`enabled` 0/1 in SQLite, boolean in PostgreSQL). */
export function deviceFromRow(r: Raw): RegistryDevice {
  return {
    gateway: String(r.gateway), id: String(r.id), profile: String(r.profile), bus: String(r.bus), busType: s(r.bus_type), address: s(r.address),
    unitId: r.unit_id === null ? null : Number(r.unit_id), enabled: r.enabled === 1 || r.enabled === true, firstSeen: Number(r.first_seen), lastSeen: Number(r.last_seen), removedAt: r.removed_at === null ? null : Number(r.removed_at),
  };
}

/** How often an unchanged inventory still refreshes the devices' last-seen time. */
const REFRESH_MS = 5 * 60_000;

/**
 * Whether a status document's device inventory is worth writing: it changed,
 * or the last write is older than {@link REFRESH_MS} (so an unchanged
 * inventory costs no write per status). Remembers per gateway in memory; on
 * another hub node it is simply written once more.
 */
export class InventorySeen {
  private readonly seen = new Map<string, { hash: string; at: number }>();

  /** The inventory's hash when its devices are due to be written, else null. */
  due(gw: string, status: GatewayStatus, now: number): string | null {
    const inv = status.inventory;
    if (inv === undefined) return null;
    const hash = createHash('sha1').update(JSON.stringify(inv)).digest('hex');
    const prev = this.seen.get(gw);
    return !prev || prev.hash !== hash || now - prev.at >= REFRESH_MS ? hash : null;
  }

  /** Records a written inventory. */
  written(gw: string, hash: string, now: number): void {
    this.seen.set(gw, { hash, at: now });
  }
}
