/**
 * The process policy (issue 13 item 11) in a real child process: an uncaught
 * exception and an unhandled rejection end the process with code 70 after a
 * fatal JSON line carrying the stack; nothing but JSON lines on stdout.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FATAL_EXIT_CODE } from '../process-policy.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fatal-child.ts');

function run(how: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, how], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

for (const [how, message, kind] of [
  ['throw', 'boom from a timer', 'uncaughtException'],
  ['reject', 'rejected and never handled', 'unhandledRejection'],
  ['reject-string', 'non-Error unhandledRejection: "a bare string"', 'unhandledRejection'],
] as const) {
  t.test(`${kind} (${how}): fatal JSON line with the stack, exit ${FATAL_EXIT_CODE}`, async (t) => {
    const r = await run(how);
    t.equal(r.code, FATAL_EXIT_CODE, 'exit code');
    const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    t.equal(lines.length, 2, 'every stdout line is JSON: started, then fatal');
    const fatal = lines[1]!;
    t.match(fatal, { level: 60, kind, code: 'PROCESS_FATAL', process: 'fatal-child', err: { message } });
    t.match(fatal.err.stack, /fatal-child\.ts|process-policy\.ts/, 'the stack is in the line');
    t.notMatch(r.stderr, /boom|rejected/, 'nothing about it on stderr in plain text');
  });
}
