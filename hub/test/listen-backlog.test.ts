/**
 * The MQTT listener's accept queue is the hub's `listenBacklog` (default
 * 4,096), not Node's 511: a fleet returning at thousands of connects a second
 * overflowed 511 and waited out TCP's SYN retransmits (bench:reconnect-storm).
 * The queue a listening socket got is what `ss` shows as its Send-Q.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { DEFAULT_BROKER_LIMITS, parseBrokerLimits } from '../broker/broker-limits.js';
import { skipUnlessBinary } from '../../test/support/outside-binary.js';
import { startSecureHub } from './support.js';

/** The accept queue of the socket listening on `port`: the Send-Q column of `ss -lnt` for a listening socket. */
function listenQueue(port: number): number {
  const line = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split('\n')[0] ?? '';
  const cols = line.trim().split(/\s+/);
  if (cols.length < 3) throw new Error(`ss shows no listening socket on port ${port}: '${line}'`);
  return Number(cols[2]);
}

t.test('the MQTT listener gets the configured accept queue (capped by net.core.somaxconn)', { skip: skipUnlessBinary('ss', 'iproute2') }, async (t) => {
  t.equal(DEFAULT_BROKER_LIMITS.listenBacklog, 4096);
  t.same(parseBrokerLimits(['listenBacklog=1000']), { listenBacklog: 1000 });
  const hub = await startSecureHub(t, { brokerLimits: { listenBacklog: 1000 } });
  const q = listenQueue(hub.mqttPort);
  const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
  t.equal(q, Math.min(1000, somaxconn), 'the listening socket\'s queue is the configured one');
});
