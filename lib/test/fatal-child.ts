/**
 * Child process for process-policy.test.ts: installs the process policy on a
 * JSON logger to stdout, then fails the way argv[2] says.
 */
import { createLogger, installProcessPolicy } from '../index.js';

const logger = createLogger({ level: 'info', name: 'fatal-child' });
installProcessPolicy(logger, { name: 'fatal-child' });
logger.info('started');
const how = process.argv[2];
setImmediate(() => {
  if (how === 'throw') throw new Error('boom from a timer');
  if (how === 'reject') void Promise.reject(new Error('rejected and never handled'));
  if (how === 'reject-string') void Promise.reject('a bare string');
});
// Keeps the event loop alive like a server would.
setTimeout(() => undefined, 10_000);
