import t from 'tap';
import { isIocError } from '../../contract/index.js';
import { loadProfileDir, PROFILES_DIR, validateProfile, type ProfileProblem } from '../index.js';

const FILE = 'profiles/dev.json';

function doc(point: Record<string, unknown>): Record<string, unknown> {
  return { model: 'dev', manufacturer: 'acme', protocol: 'modbus', points: [{ name: 'a', table: 'holding', address: 0, type: 'uint16', ...point }] };
}

function problems(d: Record<string, unknown>): ProfileProblem[] {
  try {
    validateProfile(d, FILE);
    return [];
  } catch (err) {
    if (!isIocError(err, 'PROFILE_ERR_INVALID')) throw err;
    return err.context.problems as ProfileProblem[];
  }
}

t.test('a point alarm is accepted with its defaults applied', async (t) => {
  const p = validateProfile(doc({ scale: 0.001, alarm: { high: 2, hysteresis: 0.05, severity: 'critical', message: 'flood' } }), FILE);
  t.same(p.points[0]!.alarm, { high: 2, hysteresis: 0.05, severity: 'critical', message: 'flood' });
  const q = validateProfile(doc({ alarm: { low: 1 } }), FILE);
  t.same(q.points[0]!.alarm, { low: 1, hysteresis: 0, severity: 'warning' }, 'hysteresis 0 and severity warning by default');
});

t.test('schema errors on alarms', async (t) => {
  t.match(problems(doc({ alarm: {} })), [{ pointer: '/points/0/alarm' }], 'an alarm needs high, low or equals');
  t.match(problems(doc({ alarm: { high: 1, hysteresis: -1 } })), [{ pointer: '/points/0/alarm/hysteresis' }], 'negative hysteresis');
  t.match(problems(doc({ alarm: { high: 1, severity: 'info' } })), [{ pointer: '/points/0/alarm/severity' }], 'info is not an alarm severity');
  t.match(problems(doc({ alarm: { high: 1, colour: 'red' } })), [{ pointer: '/points/0/alarm' }], 'unknown keys are refused');
  t.ok(problems(doc({ alarm: { equals: 3, high: 1 } })).length > 0, 'equals excludes high');
});

t.test('second-pass alarm checks', async (t) => {
  t.match(problems(doc({ alarm: { high: 2, low: 1.95, hysteresis: 0.05 } })), [{ pointer: '/points/0/alarm/low', message: /below high/ }]);
  t.match(
    problems({ model: 'dev', manufacturer: 'acme', protocol: 'modbus', points: [{ name: 'f', table: 'discrete', address: 0, type: 'bool', alarm: { high: 1 } }] }),
    [{ pointer: '/points/0/alarm', message: /use 'equals'/ }],
  );
  t.match(
    problems({ model: 'dev', manufacturer: 'acme', protocol: 'modbus', points: [{ name: 'f', table: 'discrete', address: 0, type: 'bool', alarm: { equals: 1 } }] }),
    [{ pointer: '/points/0/alarm/equals', message: /must be a boolean/ }],
  );
});

t.test('shipped profiles carry alarms: flood level and cabinet smoke', async (t) => {
  const all = await loadProfileDir(PROFILES_DIR);
  const level = all.get('flood-level-sensor')!.points.find((p) => p.name === 'level')!;
  t.match(level.alarm, { high: 2, severity: 'critical' });
  const smoke = all.get('cabinet-environment')!.points.find((p) => p.name === 'smoke_alarm')!;
  t.match(smoke.alarm, { equals: true, severity: 'critical' });
});
