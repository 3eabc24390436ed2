/**
 * The uplink's reconnect spacing (issue 14.12): full jitter under a low cap.
 * The first retry comes within reconnectMinMs, later ones anywhere in
 * [0, cap] with the cap doubling up to reconnectMaxMs, so a fleet that lost
 * the hub together spreads its retries evenly instead of in lock-step; the
 * schema's default cap is 10 s (a gateway is back a median ~3 s after the hub).
 */
import t from 'tap';
import { Backoff } from '../../../lib/index.js';
import { parseGatewayConfig } from '../../config.js';

t.test('full jitter: within [50 ms, cap], first retry within min, never above max', async (t) => {
  const seq = (r: number, n: number): number[] => {
    const b = new Backoff({ minMs: 500, maxMs: 10_000, jitter: 'full', random: () => r });
    return Array.from({ length: n }, () => b.next());
  };
  t.same(seq(0.999_999, 8), [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000], 'the cap doubles from min to max');
  t.same(seq(0, 3), [50, 50, 50], 'anywhere down to 50 ms (no hot loop)');
  t.same(seq(0.5, 6), [250, 500, 1000, 2000, 4000, 5000], 'the middle of each cap');
  const b = new Backoff({ minMs: 500, maxMs: 10_000, jitter: 'full', random: () => 0.999_999 });
  for (let i = 0; i < 10; i++) b.next();
  b.reset();
  t.equal(b.next(), 500, 'after a success the next retry is quick again');
});

t.test('equal jitter (the default, southbound) is unchanged', async (t) => {
  const b = new Backoff({ minMs: 500, maxMs: 10_000, random: () => 0 });
  t.same([b.next(), b.next(), b.next()], [500, 500, 1000]);
});

t.test('a fleet spreads: 10,000 gateways at the cap retry evenly over it', async (t) => {
  const delays = Array.from({ length: 10_000 }, () => {
    const b = new Backoff({ minMs: 500, maxMs: 10_000, jitter: 'full' });
    for (let i = 0; i < 8; i++) b.next();
    return b.next();
  });
  const perSecond = Array.from({ length: 10 }, (_, s) => delays.filter((d) => d >= s * 1000 && d < (s + 1) * 1000).length);
  for (const n of perSecond) t.ok(n > 800 && n < 1200, `about 1,000 retries in each second of the cap (${n})`);
});

t.test('the hub reconnect defaults: 500 ms .. 10 s', async (t) => {
  const c = parseGatewayConfig({ gatewayId: 'gw-1', dataDir: t.testdir(), hub: { url: 'mqtt://127.0.0.1:1883' }, buses: [], devices: [] }, '<test>');
  t.equal(c.hub.reconnectMinMs, 500);
  t.equal(c.hub.reconnectMaxMs, 10_000);
});
