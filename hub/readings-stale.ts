/**
 * Latest values of an offline gateway are stale (issue 14.4): once the hub
 * knows a gateway is offline (its last will, or its own "offline" status),
 * `GET /api/v1/readings/latest` marks that gateway's values `stale: true`.
 * The `quality` stays what the device reported — the value was good when it
 * was read — and `stale` says that nothing newer can arrive until the gateway
 * is back, so a consumer tells "steady" from "no longer known" without
 * guessing from timestamps. Called by the route in api.ts; pure.
 */
import type { GatewayRow, StoredReading } from './store/port.js';

/** A latest value as the API answers it: `stale` only when its gateway is offline. */
export type LatestReading = StoredReading & { stale?: true };

/**
 * Marks the readings of gateways that are offline in `gateways` (a gateway
 * the hub has no row for is left unmarked: it has not been seen at all).
 */
export function markOfflineStale(items: readonly StoredReading[], gateways: readonly Pick<GatewayRow, 'id' | 'online'>[]): LatestReading[] {
  const offline = new Set(gateways.filter((g) => !g.online).map((g) => g.id));
  if (offline.size === 0) return items as LatestReading[];
  return items.map((r) => (offline.has(r.gateway) ? { ...r, stale: true as const } : r));
}
