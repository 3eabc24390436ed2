/**
 * Subscribing with a clear answer per topic. A broker may grant some topics
 * of a SUBSCRIBE and refuse others with 0x80 (MQTT 3.1.1 §3.9.3); mqtt.js's
 * `subscribeAsync` then rejects as a whole with "Subscribe error: Unspecified
 * error" and forgets every topic of that packet for its resubscribe list.
 * Here each topic goes in its own SUBSCRIBE, so a refusal names its topic
 * and the granted ones stay subscribed (and are resubscribed after a
 * reconnect).
 */
import type { MqttClient } from 'mqtt';
import { IocError } from '../../contract/index.js';

/** Subscribes to each topic; resolves with the granted QoS per topic, or rejects with GW_ERR_SUBSCRIBE_REFUSED naming every refused topic. */
export async function subscribeEach(client: MqttClient, topicList: readonly string[], qos: 0 | 1 | 2 = 1): Promise<Record<string, number>> {
  const results = await Promise.all(
    topicList.map(
      (topic) =>
        new Promise<{ topic: string; granted: number | null; err?: Error }>((resolve) => {
          client.subscribe(topic, { qos }, (err, granted, packet) => {
            const code = (packet as { granted?: number[] } | undefined)?.granted?.[0] ?? granted?.[0]?.qos;
            if (err && (code === undefined || (code & 0x80) === 0)) resolve({ topic, granted: null, err });
            else resolve({ topic, granted: code ?? null });
          });
        }),
    ),
  );
  const failed = results.filter((r) => r.err);
  if (failed.length > 0) throw new IocError('GW_ERR_UPLINK_OFFLINE', `subscribe to ${failed.map((f) => `'${f.topic}'`).join(', ')} failed: ${failed[0]!.err!.message}`, { cause: failed[0]!.err });
  const refused = results.filter((r) => r.granted === null || (r.granted & 0x80) !== 0).map((r) => r.topic);
  if (refused.length > 0) {
    throw new IocError('GW_ERR_SUBSCRIBE_REFUSED', `hub refused the subscription to ${refused.map((t) => `'${t}'`).join(', ')} (SUBACK 0x80): this identity may not read ${refused.length === 1 ? 'that topic' : 'those topics'}`, { context: { topics: refused } });
  }
  return Object.fromEntries(results.map((r) => [r.topic, r.granted!]));
}
