import t from 'tap';
import { decodeResponse, extractPoint, planReads, type ModbusPoint, type ReadRequest } from '../index.js';

function pt(name: string, p: Partial<ModbusPoint> = {}): ModbusPoint {
  return { name, table: 'holding', address: 0, type: 'uint16', wordOrder: 'big', byteSwap: false, scale: 1, offset: 0, writable: false, ...p };
}

const limits = { maxRegistersPerRead: 125, maxBitsPerRead: 2000, maxGap: 8 };

/** A plan as plain tuples: [table, address, count, ['name@offset', …]]. */
function summary(plan: readonly ReadRequest[]): unknown[] {
  return plan.map((r) => [r.table, r.address, r.count, r.points.map((e) => `${e.point.name}@${e.offset}`)]);
}

t.test('contiguous points become one request', async (t) => {
  const plan = planReads([pt('a', { address: 10 }), pt('b', { address: 11 }), pt('c', { address: 12, type: 'uint32' }), pt('d', { address: 14, type: 'float64' })], limits);
  t.same(summary(plan), [['holding', 10, 8, ['a@0', 'b@1', 'c@2', 'd@4']]]);
});

t.test('a gap of maxGap registers is bridged, one more splits', async (t) => {
  t.same(summary(planReads([pt('a', { address: 0 }), pt('b', { address: 9 })], limits)), [['holding', 0, 10, ['a@0', 'b@9']]], 'gap 8 bridged');
  t.same(summary(planReads([pt('a', { address: 0 }), pt('b', { address: 10 })], limits)), [
    ['holding', 0, 1, ['a@0']],
    ['holding', 10, 1, ['b@0']],
  ], 'gap 9 split');
  const strict = { ...limits, maxGap: 0 };
  t.same(summary(planReads([pt('a', { address: 0 }), pt('b', { address: 1 }), pt('c', { address: 3 })], strict)), [
    ['holding', 0, 2, ['a@0', 'b@1']],
    ['holding', 3, 1, ['c@0']],
  ], 'maxGap 0 merges only adjacent points');
  t.same(summary(planReads([pt('a', { address: 0, type: 'uint32' }), pt('b', { address: 4 })], { ...limits, maxGap: 2 })), [['holding', 0, 5, ['a@0', 'b@4']]], 'gap measured from the end of a multi-register point');
});

t.test('requests are split at maxRegistersPerRead', async (t) => {
  const small = { ...limits, maxRegistersPerRead: 4 };
  t.same(summary(planReads([pt('a', { type: 'uint32' }), pt('b', { address: 2, type: 'uint32' }), pt('c', { address: 4, type: 'uint32' })], small)), [
    ['holding', 0, 4, ['a@0', 'b@2']],
    ['holding', 4, 2, ['c@0']],
  ]);
  const many = Array.from({ length: 200 }, (_, i) => pt(`r${i}`, { table: 'input', address: i }));
  const plan = planReads(many, limits);
  t.same(plan.map((r) => [r.address, r.count, r.points.length]), [[0, 125, 125], [125, 75, 75]], 'Modbus limit of 125 registers per read');
  t.equal(plan[1]?.points[0]?.point.name, 'r125');
});

t.test('coil, discrete, holding and input tables are planned separately, in function-code order', async (t) => {
  const plan = planReads([
    pt('in', { table: 'input', address: 0 }),
    pt('hold', { table: 'holding', address: 0 }),
    pt('disc', { table: 'discrete', address: 0, type: 'bool' }),
    pt('coil', { table: 'coil', address: 1, type: 'bool' }),
  ], limits);
  t.same(summary(plan), [
    ['coil', 1, 1, ['coil@0']],
    ['discrete', 0, 1, ['disc@0']],
    ['holding', 0, 1, ['hold@0']],
    ['input', 0, 1, ['in@0']],
  ]);
});

t.test('bit tables use maxBitsPerRead and maxGap in bits', async (t) => {
  const coils = [0, 1, 2, 3, 4, 20].map((a) => pt(`c${a}`, { table: 'coil', address: a, type: 'bool' }));
  t.same(summary(planReads(coils, { ...limits, maxBitsPerRead: 3 })), [
    ['coil', 0, 3, ['c0@0', 'c1@1', 'c2@2']],
    ['coil', 3, 2, ['c3@0', 'c4@1']],
    ['coil', 20, 1, ['c20@0']],
  ]);
  t.same(summary(planReads(coils, { ...limits, maxGap: 15 })), [['coil', 0, 21, ['c0@0', 'c1@1', 'c2@2', 'c3@3', 'c4@4', 'c20@20']]]);
});

t.test('single points', async (t) => {
  t.same(summary(planReads([pt('only', { table: 'input', address: 65532, type: 'float64' })], limits)), [['input', 65532, 4, ['only@0']]]);
  t.same(summary(planReads([pt('s', { address: 20, type: 'string', length: 4 })], limits)), [['holding', 20, 4, ['s@0']]]);
  t.same(planReads([], limits), [], 'no points, no requests');
});

t.test('bit points share their register and its request', async (t) => {
  const plan = planReads([
    pt('green', { table: 'input', address: 1, type: 'bool', bit: 2 }),
    pt('red', { table: 'input', address: 1, type: 'bool', bit: 0 }),
    pt('faults', { table: 'input', address: 0 }),
    pt('amber', { table: 'input', address: 1, type: 'bool', bit: 1 }),
  ], { ...limits, maxGap: 0 });
  t.same(summary(plan), [['input', 0, 2, ['faults@0', 'red@1', 'amber@1', 'green@1']]]);
});

t.test('a status word and its own bit points: one register, one read, each decoded', async (t) => {
  const plan = planReads([
    pt('flood_alarm', { address: 7, type: 'bool', bit: 3 }),
    pt('status', { address: 7 }),
    pt('pump_on', { address: 7, type: 'bool', bit: 0 }),
  ], { ...limits, maxGap: 0 });
  t.same(summary(plan), [['holding', 7, 1, ['status@0', 'pump_on@0', 'flood_alarm@0']]]);
  t.same(decodeResponse(plan[0] as ReadRequest, [0b1001]).map((r) => [r.point.name, r.value]), [['status', 9], ['pump_on', true], ['flood_alarm', true]]);
});

t.test('the plan does not depend on the order of the points', async (t) => {
  const points = [pt('a', { address: 30 }), pt('b', { address: 0, type: 'uint32' }), pt('c', { table: 'coil', address: 5, type: 'bool' }), pt('d', { address: 2 }), pt('e', { address: 50 })];
  const expected = summary(planReads(points, limits));
  t.same(summary(planReads([...points].reverse(), limits)), expected);
  t.same(summary(planReads([points[2], points[4], points[0], points[3], points[1]] as ModbusPoint[], limits)), expected);
  t.same(expected, [['coil', 5, 1, ['c@0']], ['holding', 0, 3, ['b@0', 'd@2']], ['holding', 30, 1, ['a@0']], ['holding', 50, 1, ['e@0']]]);
});

t.test('a point larger than one read is refused', async (t) => {
  t.throws(() => planReads([pt('fw', { type: 'string', length: 10 })], { ...limits, maxRegistersPerRead: 8 }), {
    code: 'PROFILE_ERR_INVALID',
    message: /point 'fw' spans 10 holding addresses, more than one read may return \(8\)/,
    context: { point: 'fw' },
  });
});

t.test('extractPoint slices a response; decodeResponse decodes it', async (t) => {
  const points = [pt('a'), pt('t', { address: 1, type: 'float32' }), pt('bit', { address: 4, type: 'bool', bit: 3 })];
  const [req] = planReads(points, limits) as [ReadRequest];
  const words = [7, 0x3fc0, 0x0000, 0xdead, 0b1000];
  t.same(req.points.map((e) => extractPoint(req, words, e)), [[7], [0x3fc0, 0], [0b1000]]);
  t.same(decodeResponse(req, words).map((r) => [r.point.name, r.value]), [['a', 7], ['t', 1.5], ['bit', true]]);
  t.throws(() => extractPoint(req, words.slice(0, 2), req.points[1] as ReadRequest['points'][number]), {
    code: 'GW_ERR_DECODE',
    message: /point 't': response has 2 holding values, needs 3/,
  });
  const [coils] = planReads([pt('c0', { table: 'coil', type: 'bool' }), pt('c2', { table: 'coil', address: 2, type: 'bool' })], limits) as [ReadRequest];
  const padded = [true, false, false, false, false, false, false, false]; // FC 1 answers whole bytes
  t.same(decodeResponse(coils, padded).map((r) => [r.point.name, r.value]), [['c0', true], ['c2', false]]);
});
