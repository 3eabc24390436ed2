/**
 * StopSignals (lib/stop-signals.ts): a stop asked during the start is kept
 * and reported once the process waits for it; one asked while running is
 * reported at once; the listeners go away after. The signals are emitted on
 * `process` (the listeners run as for a real signal, without one being sent).
 */
import t from 'tap';
import { silentLogger, StopSignals } from '../index.js';

const listeners = (): number => process.listenerCount('SIGTERM') + process.listenerCount('SIGINT');

t.test('a stop asked during the start is carried out when the process is running', async (t) => {
  const before = listeners();
  const s = new StopSignals('test', () => silentLogger());
  t.equal(listeners(), before + 2, 'listens from construction on');
  process.emit('SIGTERM', 'SIGTERM');
  t.equal(await s.wait(), 'SIGTERM', 'the kept stop comes out at once');
  t.equal(listeners(), before, 'listeners removed');
});

t.test('a stop asked while running resolves the wait', async (t) => {
  const before = listeners();
  const s = new StopSignals('test', () => null);
  let got: string | null = null;
  const waiting = s.wait().then((sig) => void (got = sig));
  await new Promise((r) => setImmediate(r));
  t.equal(got, null, 'nothing before a signal');
  process.emit('SIGINT', 'SIGINT');
  await waiting;
  t.equal(got, 'SIGINT');
  t.equal(listeners(), before, 'listeners removed');
});

t.test('dispose after a failed start removes the listeners', async (t) => {
  const before = listeners();
  new StopSignals('test', () => null).dispose();
  t.equal(listeners(), before);
});
