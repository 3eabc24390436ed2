/** The hub's dedupe record: committed batch seqs as ranges, against a plain Set as the model. */
import t from 'tap';
import { SeqRanges } from '../seq-ranges.js';

t.test('adds, merges and answers like a set', async (t) => {
  const s = SeqRanges.empty();
  for (const n of [1, 2, 3, 7, 5, 6, 10, 4, 9]) t.ok(s.add(n), `${n} is new`);
  t.notOk(s.add(3), '3 again is a replay');
  t.equal(s.toString(), '[[1,7],[9,10]]');
  t.equal(s.size, 2);
  s.add(8);
  t.equal(s.toString(), '[[1,10]]', 'filling the gap joins both neighbours');
  t.ok(s.has(1) && s.has(10) && !s.has(0) && !s.has(11));
});

t.test('random arrival orders against a Set model', async (t) => {
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n);
  for (let round = 0; round < 50; round++) {
    const s = SeqRanges.empty();
    const model = new Set<number>();
    let wrong = 0;
    for (let i = 0; i < 300; i++) {
      const n = 1 + rnd(120);
      if (s.add(n) !== !model.has(n)) wrong++;
      model.add(n);
    }
    t.equal(wrong, 0, 'add reports novelty like the model');
    for (let n = 0; n <= 121; n++) if (s.has(n) !== model.has(n)) t.fail(`membership of ${n} differs`);
    const back = SeqRanges.parse(s.toString());
    t.equal(back.toString(), s.toString(), 'round-trips through its stored form');
  }
});

t.test('a stored form that is not sorted disjoint ranges is refused', async (t) => {
  t.throws(() => SeqRanges.parse('{"a":1}'), /not an array/);
  t.throws(() => SeqRanges.parse('[[3,1]]'), /bad range/);
  t.throws(() => SeqRanges.parse('[[1,5],[6,9]]'), /not sorted and disjoint/, 'adjacent ranges should have been one');
  t.throws(() => SeqRanges.parse('[[1,5],[2,9]]'), /not sorted and disjoint/);
  t.equal(SeqRanges.fromSorted([1, 1, 2, 4]).toString(), '[[1,2],[4,4]]');
});
