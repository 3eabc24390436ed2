/**
 * The device registry: gateways (site, location, software and firmware
 * versions, who registered them) and the field devices each gateway reports
 * in its status inventory (profile, bus, bus address). Connection state and
 * last-seen times come from the telemetry store, which sees every message;
 * the API merges the two.
 */
import { createHash } from 'node:crypto';
import { IocError, type GatewayStatus, type InventoryDevice } from '../../../contract/index.js';
import type { RegistryDb } from './registry-db.js';
import { deviceFromRow, gatewayFromRow, InventorySeen, type RegistryDevice, type RegistryGateway } from '../model/registry.js';

type Raw = Record<string, unknown>;

/** Gateways and field devices. */
export class RegistryStore {
  private readonly seen = new InventorySeen();

  constructor(private readonly deps: { db: RegistryDb }) {}

  private get db() {
    return this.deps.db.db;
  }

  async getGateway(id: string): Promise<RegistryGateway | null> {
    const r = await this.db.get<Raw>('SELECT * FROM registry_gateways WHERE id = ?', [id]);
    return r ? gatewayFromRow(r) : null;
  }

  async listGateways(): Promise<RegistryGateway[]> {
    return (await this.db.all<Raw>('SELECT * FROM registry_gateways ORDER BY id')).map(gatewayFromRow);
  }

  /** Creates or refreshes a gateway's record when it gets a credential outside a claim (admin, tests). */
  async register(id: string, r: { site: string | null; actor: string }): Promise<void> {
    const db = this.db;
    const now = this.deps.db.clock();
    await db.exclusive(() =>
      db.run(
        `INSERT INTO registry_gateways(id, site, registered_at, registered_by, updated_at) VALUES (?,?,?,?,?)
         ON CONFLICT(id) DO UPDATE SET site = coalesce(excluded.site, site), registered_at = excluded.registered_at, registered_by = excluded.registered_by, updated_at = excluded.updated_at`,
        [id, r.site, now, r.actor, now],
      ),
    );
  }

  /** Operator edit of site/location; HUB_ERR_NOT_FOUND for an unknown gateway. */
  async updateGateway(id: string, change: { site?: string; location?: string }): Promise<RegistryGateway> {
    const db = this.db;
    const res = await db.exclusive(() =>
      db.run('UPDATE registry_gateways SET site = coalesce(?, site), location = coalesce(?, location), updated_at = ? WHERE id = ?', [change.site ?? null, change.location ?? null, this.deps.db.clock(), id]),
    );
    if (res.changes === 0) throw new IocError('HUB_ERR_NOT_FOUND', `no gateway '${id}' in the registry`);
    return (await this.getGateway(id))!;
  }

  /**
   * Takes what a gateway says about itself in a status document: versions and
   * its device inventory. A gateway first seen this way (a hub without
   * authentication) gets a record registered by `status`.
   */
  async recordStatus(gw: string, status: GatewayStatus): Promise<void> {
    const db = this.db;
    const now = this.deps.db.clock();
    const inv = status.inventory;
    const hash = this.seen.due(gw, status, now);
    const devicesDue = hash !== null;
    await db.transaction(async () => {
      await db.run(
        `INSERT INTO registry_gateways(id, version, firmware, registered_at, registered_by, updated_at) VALUES (?,?,?,?, 'status', ?)
         ON CONFLICT(id) DO UPDATE SET version = coalesce(excluded.version, version), firmware = coalesce(excluded.firmware, firmware),
           updated_at = CASE WHEN coalesce(excluded.version, version) IS NOT version OR coalesce(excluded.firmware, firmware) IS NOT firmware THEN excluded.updated_at ELSE updated_at END`,
        [gw, status.version ?? null, status.firmware ?? null, now, now],
      );
      if (!devicesDue || !inv) return;
      for (const d of inv) {
        await db.run(
          `INSERT INTO registry_devices(gateway, id, profile, bus, bus_type, address, unit_id, enabled, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?)
           ON CONFLICT(gateway, id) DO UPDATE SET profile = excluded.profile, bus = excluded.bus, bus_type = excluded.bus_type, address = excluded.address,
             unit_id = excluded.unit_id, enabled = excluded.enabled, last_seen = excluded.last_seen, removed_at = NULL`,
          [gw, d.id, d.profile, d.bus, d.busType ?? null, d.address ?? null, d.unitId ?? null, d.enabled === false ? 0 : 1, now, now],
        );
      }
      const ids = inv.map((d: InventoryDevice) => d.id);
      await db.run(`UPDATE registry_devices SET removed_at = ? WHERE gateway = ? AND removed_at IS NULL ${ids.length ? `AND id NOT IN (${ids.map(() => '?').join(',')})` : ''}`, [now, gw, ...ids]);
    });
    if (hash) this.seen.written(gw, hash, now);
  }

  /** Field devices, optionally of one gateway; removed ones only when asked. */
  async listDevices(q: { gateway?: string; includeRemoved?: boolean } = {}): Promise<RegistryDevice[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.gateway !== undefined) {
      where.push('gateway = ?');
      params.push(q.gateway);
    }
    if (!q.includeRemoved) where.push('removed_at IS NULL');
    const rows = await this.db.all<Raw>(`SELECT * FROM registry_devices ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY gateway, id`, params);
    return rows.map(deviceFromRow);
  }
}
