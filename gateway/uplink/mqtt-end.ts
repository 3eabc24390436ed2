/**
 * Ending the uplink's mqtt.js client: cleanly (DISCONNECT, so the broker
 * discards the last will) and for good (no reconnect, socket destroyed).
 * Used by uplink.ts at stop and when new hub settings replace the client.
 */
import type { MqttClient } from 'mqtt';

/**
 * Sends DISCONNECT and waits (at most `timeoutMs`) until the broker closed the
 * connection. Telemetry still unacknowledged is given up here: it stays in the
 * outbox and is offered again, under its seq, by the next run (the hub drops
 * replays), so there is no need to wait for its PUBACK.
 */
export async function disconnect(client: MqttClient, timeoutMs: number): Promise<void> {
  client.options.reconnectPeriod = 0;
  // end(false) waits for every outgoing QoS 1 message first, which a stalled hub never acknowledges.
  for (const id of Object.keys(client.outgoing)) client.removeOutgoingMessage(Number(id));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.endAsync(false).catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
}

/**
 * Ends a client for good: no reconnect, and its socket destroyed (end() during
 * a connection attempt can leave the socket to its connect timeout, mqtt.js #1033).
 * On a connected client call {@link disconnect} first: a forced end destroys the
 * socket without DISCONNECT, and the broker then publishes the will.
 */
export async function retire(client: MqttClient): Promise<void> {
  client.options.reconnectPeriod = 0;
  try {
    await client.endAsync(true);
  } finally {
    (client.stream as { destroy?: () => void } | undefined)?.destroy?.();
  }
}
