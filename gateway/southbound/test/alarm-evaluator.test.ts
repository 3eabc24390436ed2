/** Threshold alarms at the gateway: limits, hysteresis, flags, bad quality, persistence across restarts. */
import path from 'node:path';
import t from 'tap';
import type { GatewayEvent, Reading } from '../../../contract/index.js';
import type { PointAlarm } from '../../../device-profiles/index.js';
import { silentLogger } from '../../../lib/index.js';
import { AlarmEvaluator, alarmRules, type AlarmRules } from '../alarm-evaluator.js';
import { loadProfiles } from '../../gateway.js';

function rules(point: string, alarm: PointAlarm & { unit?: string }): AlarmRules {
  return new Map([['dev', new Map([[point, alarm]])]]);
}

function setup(r: AlarmRules, stateFile?: string): { ev: AlarmEvaluator; events: GatewayEvent[]; feed: (value: Reading['value'], quality?: Reading['quality']) => void } {
  const events: GatewayEvent[] = [];
  const ev = new AlarmEvaluator({ rules: r, onEvent: (e) => events.push(e), logger: silentLogger(), ...(stateFile ? { stateFile } : {}) });
  let ts = 1000;
  const point = [...r.get('dev')!.keys()][0]!;
  return { ev, events, feed: (value, quality = 'good') => ev.evaluate([{ device: 'dev', point, ts: ts++, value, quality }]) };
}

t.test('high limit with hysteresis: raised above, cleared only below high - hysteresis', async (t) => {
  const { ev, events, feed } = setup(rules('level', { high: 2, hysteresis: 0.1, severity: 'critical', message: 'Water level above the flood limit', unit: 'm' }));
  for (const v of [1.5, 1.99, 2.0]) feed(v);
  t.equal(events.length, 0, 'at or below the limit: nothing');
  feed(2.01);
  t.match(events, [{ type: 'alarm.raised', severity: 'critical', device: 'dev', point: 'level', message: 'Water level above the flood limit (level 2.01 m is above 2 m)', data: { limit: 'high', threshold: 2, value: 2.01, hysteresis: 0.1, unit: 'm' } }]);
  for (const v of [2.5, 1.95, 1.91]) feed(v);
  t.equal(events.length, 1, 'inside the hysteresis band: still raised, not raised again');
  t.same(ev.list().map((a) => [a.point, a.limit]), [['level', 'high']]);
  feed(1.89);
  t.match(events[1], { type: 'alarm.cleared', severity: 'critical', point: 'level', message: 'cleared: level back to 1.89 m (high limit 2 m)', data: { limit: 'high', threshold: 2, value: 1.89, raisedAt: 1003 } });
  t.same(ev.list(), []);
  t.same(ev.counters, { raised: 1, cleared: 1 });
  t.ok(events.every((e) => /^[A-Za-z0-9_-]{1,64}$/.test(e.id)), 'event ids fit the contract');
  t.equal(new Set(events.map((e) => e.id)).size, 2, 'each event has its own id');
});

t.test('low limit, and a jump from one limit past the other', async (t) => {
  const { events, feed } = setup(rules('temp', { low: 0, high: 50, hysteresis: 1 }));
  feed(-0.5);
  t.match(events, [{ type: 'alarm.raised', severity: 'warning', data: { limit: 'low' } }]);
  feed(0.5);
  t.equal(events.length, 1, 'within low + hysteresis');
  feed(60);
  t.match(events.slice(1), [{ type: 'alarm.cleared', data: { limit: 'low' } }, { type: 'alarm.raised', data: { limit: 'high', value: 60 } }]);
});

t.test('equals: a flag raises while it is set', async (t) => {
  const { events, feed } = setup(rules('smoke', { equals: true, severity: 'critical' }));
  feed(false);
  feed(true);
  feed(true);
  feed(false);
  t.same(events.map((e) => e.type), ['alarm.raised', 'alarm.cleared']);
  t.equal(events[0]!.message, 'smoke is true');
});

t.test('bad and stale readings, and non-numbers, leave the alarm as it is', async (t) => {
  const { ev, events, feed } = setup(rules('level', { high: 2 }));
  feed(3);
  feed(0, 'stale');
  feed(0, 'bad');
  feed(null);
  feed('n/a');
  t.equal(events.length, 1);
  t.equal(ev.list().length, 1);
  ev.evaluate([{ device: 'other', point: 'level', ts: 1, value: 9, quality: 'good' }]);
  t.equal(events.length, 1, 'points without a rule are ignored');
});

t.test('an alarm raised before a restart is cleared after it', async (t) => {
  const file = path.join(t.testdir(), 'alarms.json');
  const a = setup(rules('level', { high: 2 }), file);
  await a.ev.start();
  a.feed(3);
  await a.ev.stop();
  const b = setup(rules('level', { high: 2 }), file);
  await b.ev.start();
  t.same(b.ev.list().map((x) => x.point), ['level'], 'active alarm restored');
  b.feed(3);
  t.equal(b.events.length, 0, 'still above: not raised twice');
  b.feed(1);
  t.same(b.events.map((e) => e.type), ['alarm.cleared']);
  await b.ev.stop();
  const c = setup(rules('level', { high: 2 }), file);
  await c.ev.start();
  t.same(c.ev.list(), [], 'the clear was saved too');
});

t.test('setRules drops alarms of points that lost their rule', async (t) => {
  const { ev, feed } = setup(rules('level', { high: 2 }));
  feed(3);
  ev.setRules(new Map());
  t.same(ev.list(), []);
});

t.test('rules come from the profiles of enabled devices', async (t) => {
  const profiles = await loadProfiles();
  const r = alarmRules([
    { id: 'flood-1', profile: 'flood-level-sensor' },
    { id: 'flood-2', profile: 'flood-level-sensor', enabled: false },
    { id: 'tsc-1', profile: 'traffic-signal-controller' },
  ], profiles);
  t.same([...r.keys()], ['flood-1']);
  t.match(r.get('flood-1')!.get('level'), { high: 2, hysteresis: 0.05, severity: 'critical', unit: 'm' });
});
