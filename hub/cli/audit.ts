/**
 * `ioc-edge audit verify`: checks the hub's audit log hash chain through the
 * API (operator role) and prints the head to keep elsewhere. Exit 0 when the
 * chain holds, 3 when it is broken, 1 when the hub cannot be asked.
 */
import { isIocError } from '../../contract/index.js';
import { API_HELP, API_OPTIONS, apiTarget, callApi } from './api-client.js';
import type { Command } from './command.js';
import { parse } from './parse.js';

const HELP = `Usage: ioc-edge audit verify [--expect-head N:HASH]

Checks that no audit entry was changed or removed since it was written: each
entry's hash covers the one before it. Prints the newest entry (the head);
keep it somewhere else (ticket, IOC log) and pass it back later with
--expect-head to also detect that newest entries were removed.

Exit status: 0 the chain holds, 3 it is broken (the first entry that does not
fit is named), 1 the hub could not be asked.

${API_HELP}`;

interface Verification {
  ok: boolean;
  entries: number;
  head: { n: number; hash: string } | null;
  firstBad?: { n: number; reason: string };
}

export const auditVerify: Command = {
  name: 'audit verify',
  summary: "check the audit log's hash chain (tamper evidence)",
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS, 'expect-head': { type: 'string' } }, HELP, io);
    if ('exit' in p) return p.exit;
    const expect = p.values['expect-head'] as string | undefined;
    const m = expect === undefined ? null : /^(\d+):([0-9a-f]{64})$/.exec(expect);
    if (expect !== undefined && !m) {
      io.err.write(`--expect-head takes N:HASH as printed by this command\n${HELP}\n`);
      return 2;
    }
    let v: Verification;
    try {
      v = (await callApi(apiTarget(p.values), 'GET', `/api/v1/audit/verify${expect ? `?head=${expect}` : ''}`)) as Verification;
    } catch (e) {
      io.err.write(`${isIocError(e) ? e.message : String(e)}\n`);
      return 1;
    }
    if (!v.ok) {
      io.out.write(`audit chain BROKEN at entry ${v.firstBad!.n}: ${v.firstBad!.reason} (${v.entries} entries before it hold)\n`);
      return 3;
    }
    io.out.write(`audit chain holds: ${v.entries} entries${v.head ? `, head ${v.head.n}:${v.head.hash}` : ''}${expect ? ', expected head found' : ''}\n`);
    return 0;
  },
};
