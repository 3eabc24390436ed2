/**
 * Payload types of the contract. They follow the JSON Schemas in `schemas/`
 * (the schemas are the source of truth; a test keeps the two in step).
 */

/** Quality of a reading: `stale` when the source stopped answering, `bad` when it answered garbage. */
export type Quality = 'good' | 'bad' | 'stale';

/** An engineering value: numbers for analog points, booleans for coils, short strings for text points. */
export type ReadingValue = number | boolean | string | null;

/** One value of one point of one device at one time. `ts` is ms since the Unix epoch. */
export interface Reading {
  device: string;
  point: string;
  ts: number;
  value: ReadingValue;
  quality: Quality;
}

/** `ioc/v1/gw/{gw}/telemetry` payload. */
export interface TelemetryBatch {
  v: 1;
  epoch: string;
  seq: number;
  sentAt?: number;
  historical?: boolean;
  readings: Reading[];
}

/** `ioc/v1/gw/{gw}/status` payload (retained; the offline form is the last will). */
export interface GatewayStatus {
  v: 1;
  state: 'online' | 'offline';
  ts: number;
  version?: string;
  startedAt?: number;
  uptimeS?: number;
  backlog?: { rows: number; bytes?: number; oldestTs?: number | null; dropped?: number; historical?: number; drainPerS?: number; ageS?: number };
  devices?: Record<string, 'up' | 'down' | 'unknown'>;
  /** Operating system / firmware of the gateway hardware. */
  firmware?: string;
  /** The field devices the gateway is configured with (device registry). */
  inventory?: InventoryDevice[];
}

/** One configured field device, as a gateway reports it in its status. */
export interface InventoryDevice {
  id: string;
  profile: string;
  bus: string;
  busType?: string;
  /** Human-readable bus address, e.g. `unit 3 @ 10.0.0.5:502`. */
  address?: string;
  unitId?: number;
  enabled?: boolean;
}

/** `ioc/v1/provision/{claimId}/request` payload. */
export interface ProvisionRequest {
  v: 1;
  transaction: string;
  gatewayId: string;
  version?: string;
  firmware?: string;
  location?: string;
  hostname?: string;
}

/** The credential a hub issues to a newly registered gateway. */
export interface IssuedCredential {
  gatewayId: string;
  site: string;
  username: string;
  password: string;
  issuedAt: number;
  /** Firmware signing keys the gateway is to trust (issue 7). */
  firmwareKeys?: string[];
}

/** `ioc/v1/provision/{claimId}/response` payload: `{status, data | error, transaction}`. */
export type ProvisionResponse =
  | { v: 1; transaction: string; status: 'ok'; data: IssuedCredential }
  | { v: 1; transaction: string; status: 'error'; error: { code: string; message: string } };

/** Event severities. */
export type Severity = 'info' | 'warning' | 'critical';

/** `ioc/v1/gw/{gw}/events` payload. */
export interface GatewayEvent {
  v: 1;
  id: string;
  ts: number;
  type: string;
  severity: Severity;
  device?: string;
  point?: string;
  code?: string;
  message: string;
  data?: Record<string, unknown>;
}
