/**
 * Types of the `opcua` protocol branch: devices (or servers aggregating many
 * devices) read over OPC UA subscriptions. Each point is one monitored item
 * (OPC UA Part 4 §5.12). `profile.schema.json` is the source of truth.
 */
import type { PointType } from './types.js';
import type { PointAlarm } from './alarm.js';

/** Subscription defaults of an OPC UA device, defaults applied. */
export interface OpcuaSettings {
  /** Subscription publishing interval, ms (OPC UA Part 4 §5.13.2). Default 1000. */
  readonly publishingIntervalMs: number;
  /** Default sampling interval of the monitored items, ms (Part 4 §5.12.1.2). Default 500. */
  readonly samplingIntervalMs: number;
  /** Default server-side queue size of each monitored item (Part 4 §5.12.1.4). Default 10. */
  readonly queueSize: number;
  /**
   * Namespace URI for node ids written without `ns=`: resolved against the
   * server's NamespaceArray at connect time, so profiles survive servers that
   * renumber their namespaces.
   */
  readonly namespaceUri?: string;
}

/** One point of an OPC UA device: a Variable node, defaults applied. */
export interface OpcuaPoint {
  readonly name: string;
  /**
   * OPC UA node id in its string form (Part 6 §5.3.1.10): `ns=2;s=Camera.Online`,
   * `i=2258`; without `ns=` the profile's `namespaceUri` applies.
   */
  readonly nodeId: string;
  /** Expected value type; values are coerced to it (numbers scaled). */
  readonly type: PointType;
  readonly samplingIntervalMs?: number;
  readonly queueSize?: number;
  /**
   * Absolute deadband in the server's raw units: sent as a DataChangeFilter
   * (Part 4 §7.22.2) so the server does not even report smaller changes, and
   * applied again by the gateway in engineering units.
   */
  readonly deadband?: number;
  /** Heartbeat override in seconds: an unchanged value is sent again at least this often; 0 = only on change. Absent = the profile's. */
  readonly heartbeatS?: number;
  /** engineering = raw × scale + offset. Default 1. */
  readonly scale: number;
  /** Default 0. */
  readonly offset: number;
  readonly unit?: string;
  readonly description?: string;
  /** Whether the gateway may write it. Default false. */
  readonly writable: boolean;
  readonly min?: number;
  readonly max?: number;
  /** Threshold alarm evaluated at the gateway (see alarm.ts). */
  readonly alarm?: PointAlarm;
}

/** A loaded OPC UA device profile. */
export interface OpcuaProfile {
  readonly $schema?: string;
  readonly model: string;
  readonly manufacturer: string;
  readonly description?: string;
  readonly protocol: 'opcua';
  /** Unused by OPC UA (the server pushes values); kept so every profile has the same shape. Default 1000. */
  readonly pollIntervalMs: number;
  /** Seconds after which an unchanged value (and quality) is reported again; 0 = only on change. Default 60. */
  readonly heartbeatS?: number;
  readonly opcua: OpcuaSettings;
  readonly points: readonly OpcuaPoint[];
}
