/**
 * The hook between ingest and the broker for payloads the hub quarantined
 * (issue 13 item 3): ingest marks the payload it quarantined, and the broker
 * neither forwards it to a subscriber (`authorizeForward`) nor keeps it in an
 * offline queue (bounded-persistence.ts). Aedes copies a packet for each
 * subscriber but keeps the same payload Buffer, so the Buffer is the mark.
 */

const marked = new WeakSet<Buffer>();

/** Marks a payload the hub quarantined as invalid: it is never forwarded. */
export function markQuarantined(payload: Buffer): void {
  if (Buffer.isBuffer(payload)) marked.add(payload);
}

/** True when this payload was quarantined. */
export function isQuarantined(payload: unknown): boolean {
  return Buffer.isBuffer(payload) && marked.has(payload);
}
