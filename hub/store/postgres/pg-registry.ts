/**
 * The device registry on PostgreSQL ({@link RegistryPort}): gateways' site,
 * location and versions, and the field devices of their status inventories.
 * The SQLite one is hub/store/sqlite/registry-store.ts; row mapping and the
 * inventory throttle are shared with it. Writes are single upserts or one
 * short transaction, so several hub nodes can write at once.
 */
import { IocError, type GatewayStatus } from '../../../contract/index.js';
import { deviceFromRow, gatewayFromRow, InventorySeen, type RegistryDevice, type RegistryGateway } from '../model/registry.js';
import type { RegistryPort } from '../state-ports.js';
import type { PgStateDeps } from './pg-audit.js';

/** Gateways and field devices in PostgreSQL. */
export class PgRegistry implements RegistryPort {
  private readonly seen = new InventorySeen();
  private readonly clock: () => number;

  constructor(private readonly deps: PgStateDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  async getGateway(id: string): Promise<RegistryGateway | null> {
    const r = (await this.deps.db.query('SELECT * FROM registry_gateways WHERE id = $1', [id])).rows[0];
    return r ? gatewayFromRow(r) : null;
  }

  async listGateways(): Promise<RegistryGateway[]> {
    return (await this.deps.db.query('SELECT * FROM registry_gateways ORDER BY id')).rows.map(gatewayFromRow);
  }

  /** Creates or refreshes a gateway's record when it gets a credential outside a claim (admin, tests). */
  async register(id: string, r: { site: string | null; actor: string }): Promise<void> {
    const now = this.clock();
    await this.deps.db.query(
      `INSERT INTO registry_gateways(id, site, registered_at, registered_by, updated_at) VALUES ($1,$2,$3,$4,$3)
       ON CONFLICT (id) DO UPDATE SET site = coalesce(excluded.site, registry_gateways.site), registered_at = excluded.registered_at,
         registered_by = excluded.registered_by, updated_at = excluded.updated_at`,
      [id, r.site, now, r.actor],
    );
  }

  /** Operator edit of site/location; HUB_ERR_NOT_FOUND for an unknown gateway. */
  async updateGateway(id: string, change: { site?: string; location?: string }): Promise<RegistryGateway> {
    const res = await this.deps.db.query(
      'UPDATE registry_gateways SET site = coalesce($1, site), location = coalesce($2, location), updated_at = $3 WHERE id = $4 RETURNING *',
      [change.site ?? null, change.location ?? null, this.clock(), id],
    );
    const r = res.rows[0];
    if (!r) throw new IocError('HUB_ERR_NOT_FOUND', `no gateway '${id}' in the registry`);
    return gatewayFromRow(r);
  }

  /** Versions and device inventory from a status document (see RegistryStore.recordStatus). */
  async recordStatus(gw: string, status: GatewayStatus): Promise<void> {
    const now = this.clock();
    const hash = this.seen.due(gw, status, now);
    await this.deps.db.transaction(async (c) => {
      await c.query(
        `INSERT INTO registry_gateways(id, version, firmware, registered_at, registered_by, updated_at) VALUES ($1,$2,$3,$4,'status',$4)
         ON CONFLICT (id) DO UPDATE SET version = coalesce(excluded.version, registry_gateways.version), firmware = coalesce(excluded.firmware, registry_gateways.firmware),
           updated_at = CASE WHEN coalesce(excluded.version, registry_gateways.version) IS DISTINCT FROM registry_gateways.version
             OR coalesce(excluded.firmware, registry_gateways.firmware) IS DISTINCT FROM registry_gateways.firmware THEN excluded.updated_at ELSE registry_gateways.updated_at END`,
        [gw, status.version ?? null, status.firmware ?? null, now],
      );
      if (hash === null || !status.inventory) return;
      // A device listed twice: the last entry wins, as with one upsert per entry.
      const inv = [...new Map(status.inventory.map((d) => [d.id, d])).values()];
      // One statement for the whole inventory: arrays of columns, unnested.
      await c.query(
        `INSERT INTO registry_devices(gateway, id, profile, bus, bus_type, address, unit_id, enabled, first_seen, last_seen)
         SELECT $1, d.id, d.profile, d.bus, d.bus_type, d.address, d.unit_id, d.enabled, $8, $8
           FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $9::boolean[]) AS d(id, profile, bus, bus_type, address, unit_id, enabled)
         ON CONFLICT (gateway, id) DO UPDATE SET profile = excluded.profile, bus = excluded.bus, bus_type = excluded.bus_type, address = excluded.address,
           unit_id = excluded.unit_id, enabled = excluded.enabled, last_seen = excluded.last_seen, removed_at = NULL`,
        [gw, inv.map((d) => d.id), inv.map((d) => d.profile), inv.map((d) => d.bus), inv.map((d) => d.busType ?? null), inv.map((d) => d.address ?? null), inv.map((d) => d.unitId ?? null), now, inv.map((d) => d.enabled !== false)],
      );
      await c.query('UPDATE registry_devices SET removed_at = $1 WHERE gateway = $2 AND removed_at IS NULL AND id <> ALL($3::text[])', [now, gw, inv.map((d) => d.id)]);
    });
    if (hash) this.seen.written(gw, hash, now);
  }

  /** Field devices, optionally of one gateway; removed ones only when asked. */
  async listDevices(q: { gateway?: string; includeRemoved?: boolean } = {}): Promise<RegistryDevice[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.gateway !== undefined) {
      params.push(q.gateway);
      where.push(`gateway = $${params.length}`);
    }
    if (!q.includeRemoved) where.push('removed_at IS NULL');
    const rows = await this.deps.db.query(`SELECT * FROM registry_devices ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY gateway, id`, params);
    return rows.rows.map(deviceFromRow);
  }
}
