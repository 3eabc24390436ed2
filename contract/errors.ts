/**
 * The one error catalogue of ioc-edge. Every error we raise carries a string
 * `code` from here, a message that says what to do, an optional `cause` and
 * context (device, point, file, JSON pointer…). The codes travel over MQTT in
 * request/response envelopes (`{status: "error", error: {code, message}}`), so
 * they are part of the contract: renaming one is a breaking change.
 */

/** Catalogue: code → default message and whether a retry may succeed. */
export const ERRORS = {
  // configuration and profiles
  CONFIG_ERR_INVALID: { message: 'configuration is invalid', retryable: false },
  CONFIG_ERR_READ: { message: 'configuration file cannot be read', retryable: false },
  PROFILE_ERR_INVALID: { message: 'device profile is invalid', retryable: false },
  PROFILE_ERR_NOT_FOUND: { message: 'device profile not found', retryable: false },
  PROFILE_ERR_READ: { message: 'device profile file cannot be read', retryable: false },
  // remote configuration (issue 6)
  CONFIG_ERR_TOO_LARGE: { message: 'configuration document is larger than the gateway accepts', retryable: false },
  CONFIG_ERR_STALE: { message: 'desired configuration is not newer than the one running (or already failed); ignored', retryable: false },
  CONFIG_ERR_WRONG_GATEWAY: { message: 'desired configuration is addressed to another gateway', retryable: false },
  CONFIG_ERR_LOCAL_ONLY: { message: 'setting belongs to the gateway itself and cannot be pushed remotely', retryable: false },
  CONFIG_ERR_APPLY: { message: 'configuration could not be applied; the gateway went back to its last good configuration', retryable: false },
  CONFIG_ERR_UNCONFIRMED: { message: 'gateway could not reach the hub within the confirm window after applying; it went back to its last good configuration', retryable: false },
  CONFIG_ERR_INTERRUPTED: { message: 'gateway restarted before the configuration was confirmed; it started with its last good configuration', retryable: false },
  CONFIG_ERR_VERSION_CONFLICT: { message: 'desired configuration changed since the version this push was based on', retryable: false },
  // contract
  CONTRACT_ERR_INVALID_PAYLOAD: { message: 'payload does not match its schema', retryable: false },
  CONTRACT_ERR_BAD_JSON: { message: 'payload is not valid JSON', retryable: false },
  CONTRACT_ERR_UNKNOWN_TOPIC: { message: 'topic is not part of the contract', retryable: false },
  // gateway: southbound
  GW_ERR_MODBUS_TIMEOUT: { message: 'Modbus device did not answer in time', retryable: true },
  GW_ERR_MODBUS_CONNECT: { message: 'cannot connect to Modbus endpoint', retryable: true },
  GW_ERR_MODBUS_EXCEPTION: { message: 'Modbus device answered with an exception', retryable: false },
  GW_ERR_MODBUS_IO: { message: 'Modbus transport error', retryable: true },
  GW_ERR_DECODE: { message: 'raw value cannot be decoded', retryable: false },
  GW_ERR_POLL_OVERRUN: { message: 'polls could not start on time (gateway overloaded or device too slow); they were stretched: lengthen pollIntervalMs or spread the devices over more gateways', retryable: true },
  // gateway: southbound, Modbus RTU (serial line and RTU over TCP)
  GW_ERR_MODBUS_CRC: { message: 'Modbus RTU reply failed its CRC check (noise, wrong baud rate or parity)', retryable: true },
  GW_ERR_MODBUS_FRAME: { message: 'Modbus RTU reply was incomplete or malformed (short frame)', retryable: true },
  GW_ERR_MODBUS_WRONG_UNIT: { message: 'Modbus RTU reply came from another unit id (two devices with one address?)', retryable: true },
  GW_ERR_SERIAL_OPEN: { message: 'cannot open the serial port', retryable: true },
  GW_ERR_SERIAL_PORT_GONE: { message: 'serial port disappeared (USB adapter unplugged?)', retryable: true },
  // gateway: southbound, serial line-protocol sensors
  GW_ERR_LINE_CHECKSUM: { message: 'serial line failed its checksum', retryable: false },
  GW_ERR_LINE_FORMAT: { message: 'serial line does not match the device profile', retryable: false },
  GW_ERR_LINE_SILENT: { message: 'serial line sensor sent no valid line in time', retryable: true },
  // gateway: southbound, OPC UA
  GW_ERR_OPCUA_CONNECT: { message: 'cannot connect to the OPC UA server', retryable: true },
  GW_ERR_OPCUA_CERT_UNTRUSTED: { message: 'OPC UA server certificate is not in the trust list', retryable: false },
  GW_ERR_OPCUA_AUTH: { message: 'OPC UA server refused the user identity or security settings', retryable: false },
  GW_ERR_OPCUA_SESSION: { message: 'OPC UA session or subscription was lost', retryable: true },
  GW_ERR_OPCUA_NODE: { message: 'OPC UA node cannot be monitored or read', retryable: false },
  GW_ERR_OPCUA_UNAVAILABLE: { message: 'OPC UA support (node-opcua) could not be loaded', retryable: false },
  // gateway: writes to field devices
  GW_ERR_WRITE_REFUSED: { message: 'point cannot be written (unknown, not writable or read-only table)', retryable: false },
  GW_ERR_WRITE_VALUE: { message: 'value does not fit the point (type or range)', retryable: false },
  // gateway: store-and-forward
  GW_ERR_OUTBOX_IO: { message: 'outbox storage error', retryable: true },
  GW_ERR_OUTBOX_CLOSED: { message: 'outbox is closed', retryable: false },
  GW_ERR_OUTBOX_FULL: { message: 'outbox storage is full (disk or database size limit); oldest readings are being dropped', retryable: true },
  GW_ERR_UPLINK_OFFLINE: { message: 'uplink to the hub is down', retryable: true },
  // gateway: Sparkplug B northbound (issue 17)
  GW_ERR_SPARKPLUG_CONFIG: { message: 'Sparkplug northbound settings are incomplete (group id, edge node id or broker)', retryable: false },
  GW_ERR_SPARKPLUG_OFFLINE: { message: 'Sparkplug broker unreachable or primary host offline; readings wait in the outbox', retryable: true },
  GW_ERR_SPARKPLUG_PAYLOAD: { message: 'Sparkplug message is malformed (not a Sparkplug B protobuf payload, or a bad STATE message); ignored', retryable: false },
  GW_ERR_SPARKPLUG_CMD: { message: 'Sparkplug command refused (unknown metric, wrong datatype or value the point does not accept)', retryable: false },
  // gateway: identity and provisioning (issue 5)
  GW_ERR_PROVISION: { message: 'provisioning with the claim failed', retryable: true },
  GW_ERR_AUTH: { message: 'hub refused the gateway credentials', retryable: false },
  GW_ERR_SUBSCRIBE_REFUSED: { message: 'hub refused a subscription (SUBACK 0x80)', retryable: false },
  GW_ERR_CREDENTIAL: { message: 'gateway credential file is missing, unreadable or invalid', retryable: false },
  // gateway: remote commands (issue 6)
  GW_ERR_CMD_UNKNOWN: { message: 'gateway does not know this command', retryable: false },
  GW_ERR_CMD_ARGS: { message: 'command arguments are invalid', retryable: false },
  GW_ERR_CMD_EXPIRED: { message: 'command arrived after its expiry and was not carried out', retryable: true },
  GW_ERR_NO_DEVICE: { message: 'no such device or bus on this gateway', retryable: false },
  GW_ERR_CMD_FAILED: { message: 'command failed on the gateway', retryable: false },
  // hub
  HUB_ERR_COMMIT: { message: 'telemetry could not be committed to the store', retryable: true },
  HUB_ERR_STORE_IO: { message: 'hub store error', retryable: true },
  HUB_ERR_STORE_UNAVAILABLE: { message: 'hub store database (PostgreSQL) is unreachable; telemetry is not acknowledged until it returns', retryable: true },
  HUB_ERR_STORE_URL: { message: 'store location is invalid (postgres://user@host:port/database?schema=name, or sqlite:DIR)', retryable: false },
  HUB_ERR_STORE_SCHEMA: { message: 'store schema is missing or newer than this hub knows; run ioc-edge hub migrate with a hub of that version or newer', retryable: false },
  HUB_ERR_ARCHIVE: { message: 'hub archive is unreadable, truncated, corrupted or of a newer format than this hub knows; nothing was imported', retryable: false },
  HUB_ERR_IMPORT_TARGET: { message: 'the import target store is not empty; import into a fresh store (or pass --force to empty it first)', retryable: false },
  HUB_ERR_IMPORT_INTERRUPTED: { message: 'the import stopped part way (store unreachable, disk full, …); what was written is kept and the same command resumes it', retryable: true },
  HUB_ERR_IMPORT_UNFINISHED: { message: 'an import into this store did not finish; run hub import with the same archive again to finish it (or --force to start over)', retryable: false },
  // hub: cluster singletons (issue 16)
  HUB_ERR_LEASE_LOST: { message: 'this hub node no longer holds the lease of that singleton work (expired or taken over); the write was refused and the current holder redoes the work', retryable: true },
  HUB_ERR_BAD_REQUEST: { message: 'request is invalid', retryable: false },
  HUB_ERR_NOT_FOUND: { message: 'not found', retryable: false },
  HUB_ERR_UNAUTHORIZED: { message: 'not authorised', retryable: false },
  // hub: identity, provisioning, access control (issue 5)
  HUB_ERR_FORBIDDEN: { message: 'this identity may not do that (role or topic not allowed)', retryable: false },
  HUB_ERR_RATE_LIMITED: { message: 'too many failed logins from this address; wait and try again', retryable: true },
  HUB_ERR_IDENTIFIER_REJECTED: { message: 'MQTT client id refused (empty with a persistent session, or not the identity of the credentials)', retryable: false },
  HUB_ERR_PACKET_TOO_LARGE: { message: 'MQTT packet larger than the hub accepts', retryable: false },
  HUB_ERR_CLAIM_INVALID: { message: 'claim token is unknown, malformed or not for this gateway', retryable: false },
  HUB_ERR_CLAIM_USED: { message: 'claim token was already used; ask an operator for a new one', retryable: false },
  HUB_ERR_CLAIM_EXPIRED: { message: 'claim token has expired; ask an operator for a new one', retryable: false },
  HUB_ERR_CLAIM_REVOKED: { message: 'claim token was revoked by an operator', retryable: false },
  HUB_ERR_GATEWAY_EXISTS: { message: 'gateway id is already registered; re-provisioning needs a claim bound to that id', retryable: false },
  HUB_ERR_GATEWAY_REVOKED: { message: 'gateway was revoked; it may not connect', retryable: false },
  HUB_ERR_PROVISIONING_DISABLED: { message: 'hub runs without authentication; gateways connect without credentials', retryable: false },
  HUB_ERR_TLS_CONFIG: { message: 'TLS certificate or key file cannot be read or used', retryable: false },
  HUB_ERR_SECRET_KEY: { message: "the hub's secrets key file cannot be read or created, or does not open the stored secrets; restore the key file or push the configuration again", retryable: false },
  // hub: remote configuration and commands (issue 6)
  HUB_ERR_CMD_TIMEOUT: { message: 'gateway did not answer the command in time', retryable: true },
  HUB_ERR_GATEWAY_OFFLINE: { message: 'gateway is not connected to the hub', retryable: true },
  // hub: data limits (issue 13)
  HUB_ERR_TIMESTAMP_RANGE: { message: "reading or event is stamped outside the hub's clock-skew window; check the gateway's clock (NTP)", retryable: false },
  HUB_ERR_POINTS_LIMIT: { message: 'gateway already has as many points (device, point names) as the hub keeps per gateway; readings of further new points are refused', retryable: false },
  HUB_ERR_SEQ_GAPS: { message: 'gateway skips batch seqs: the lowest gaps of its dedupe record were closed (maxSeqRanges); a batch filling one later is taken for a replay', retryable: false },
  HUB_ERR_INSECURE_CONFIG: { message: 'refusing plain TCP on a non-loopback address without TLS (set tls, or allowPlain for a trusted network)', retryable: false },
  // hub: per-client broker bounds (issue 13, docs/security.md "Limits")
  HUB_ERR_LIMIT: { message: 'a per-client bound of the broker was reached (subscriptions, retained messages, offline queue, connections, client id length); the excess was refused or dropped', retryable: false },
  HUB_ERR_SLOW_CONSUMER: { message: 'MQTT client did not read its messages; disconnected once its unread output passed the bound', retryable: true },
  HUB_ERR_PROXY_HEADER: { message: 'PROXY protocol header missing, malformed or sent by an address that is not a trusted proxy; connection closed', retryable: false },
  // hub: cluster of hub nodes on PostgreSQL and Redis (issue 16, docs/cluster.md)
  HUB_ERR_CLUSTER_CONFIG: { message: 'cluster settings are invalid (redis://host:port URL, node id of letters, digits, . _ -, and a postgres:// store)', retryable: false },
  HUB_ERR_CLUSTER_UNAVAILABLE: { message: 'Redis linking the hub nodes is unreachable; telemetry is not acknowledged on this node until it returns', retryable: true },
  // firmware bridge (issue 7)
  FW_ERR_MANIFEST: { message: 'firmware manifest is invalid (schema, size, chunk size or hash format)', retryable: false },
  FW_ERR_UNSIGNED: { message: 'firmware manifest carries no signature; only signed firmware is accepted', retryable: false },
  FW_ERR_UNTRUSTED_KEY: { message: 'firmware manifest is signed by a key this gateway does not trust (check firmware.trustedKeys)', retryable: false },
  FW_ERR_SIGNATURE: { message: 'firmware manifest signature does not verify (altered manifest or wrong key)', retryable: false },
  FW_ERR_WRONG_MODEL: { message: 'firmware is built for another device model', retryable: false },
  FW_ERR_INTEGRITY: { message: 'firmware image does not match its manifest (SHA-256 or size); nothing was flashed', retryable: false },
  FW_ERR_UNSUPPORTED: { message: 'device cannot take this firmware (its profile names no flasher, or one this gateway lacks)', retryable: false },
  FW_ERR_TRANSFER: { message: 'firmware chunk transfer failed', retryable: true },
  FW_ERR_IMAGE_NOT_FOUND: { message: 'firmware image is not in the hub store; upload it first', retryable: false },
  FW_ERR_FLASH_TIMEOUT: { message: 'device stopped answering while being flashed (bootloader or Modbus timeout)', retryable: true },
  FW_ERR_FLASH_CANCELLED: { message: 'device cancelled the firmware transfer (XMODEM CAN)', retryable: false },
  FW_ERR_FLASH_REJECTED: { message: 'device refused the firmware (too many NAKs or a Modbus exception)', retryable: false },
  FW_ERR_VERSION_MISMATCH: { message: 'device does not report the new firmware version after flashing', retryable: false },
  FW_ERR_CANCELLED: { message: 'firmware job was cancelled by an operator', retryable: false },
  FW_ERR_ROLLOUT_STATE: { message: 'rollout cannot do that in its current state', retryable: false },
  FW_ERR_NO_TARGETS: { message: 'rollout targets no known device (check profile, site or device list)', retryable: false },
  FW_ERR_STORE_IO: { message: 'firmware store error (image or progress database)', retryable: true },
} as const satisfies Record<string, { message: string; retryable: boolean }>;

/** A code from the catalogue. */
export type ErrorCode = keyof typeof ERRORS;

/** Context attached to an error: where it happened. */
export interface ErrorContext {
  device?: string;
  point?: string;
  file?: string;
  /** JSON pointer into the offending document (RFC 6901). */
  pointer?: string;
  [key: string]: unknown;
}

/**
 * The single error class of ioc-edge. `message` reads
 * `"<text> (<CODE>)"` so a log line alone identifies the failure.
 */
export class IocError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, detail?: string, opts: { cause?: unknown; context?: ErrorContext } = {}) {
    // One code per message: a detail built from another IocError's message loses that one's
    // "(CODE)" (it was "… (GW_ERR_DECODE) (GW_ERR_WRITE_VALUE)", issue 14.2).
    super(`${(detail ?? ERRORS[code].message).replace(/ \([A-Z]+_ERR_[A-Z0-9_]+\)/g, '')} (${code})`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'IocError';
    this.code = code;
    this.context = opts.context ?? {};
  }

  /** The wire form used in `{status: "error", error}` envelopes and API replies. */
  toJSON(): { code: ErrorCode; message: string; context?: ErrorContext } {
    return Object.keys(this.context).length > 0
      ? { code: this.code, message: this.message, context: this.context }
      : { code: this.code, message: this.message };
  }
}

/** True when `err` is an {@link IocError}, optionally with the given code. */
export function isIocError(err: unknown, code?: ErrorCode): err is IocError {
  return err instanceof IocError && (code === undefined || err.code === code);
}

/** True when a retry of the failed operation may succeed (timeouts, I/O, connection loss). */
export function isRetryable(err: unknown): boolean {
  return err instanceof IocError && ERRORS[err.code].retryable;
}
