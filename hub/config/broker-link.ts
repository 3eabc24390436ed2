/**
 * The hub services' own line to the broker: publish and subscribe inside the
 * process (Aedes `publish` / `subscribe`), with no client and so no ACL —
 * which is how "only hub services write desired configurations and command
 * requests" holds: no MQTT identity but a service may publish there.
 */
import type { Aedes } from 'aedes';
import type { BrokerLink } from './config-service.js';

/**
 * A {@link BrokerLink} over the running Aedes instance (looked up at each call:
 * the broker starts after the services are built). A handler that throws is
 * reported to `onError`, never into the broker's publish path.
 */
export function brokerLink(aedes: () => Aedes, onError: (err: unknown, topic: string) => void = () => undefined): BrokerLink {
  return {
    publish: (topic, payload, opts) =>
      new Promise((resolve, reject) => aedes().publish({ cmd: 'publish', topic, payload, qos: opts.qos, retain: opts.retain, dup: false }, (err) => (err ? reject(err) : resolve()))),
    subscribe: (filter, handler) =>
      new Promise((resolve) => {
        const broker = aedes();
        const deliver = (packet: { topic: string; payload: Buffer | string }, cb: () => void): void => {
          try {
            handler(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
          } catch (err) {
            onError(err, packet.topic);
          } finally {
            cb();
          }
        };
        broker.subscribe(filter, deliver, () => resolve(() => new Promise<void>((done) => broker.unsubscribe(filter, deliver, () => done()))));
      }),
  };
}
