/**
 * Command groups answer for themselves (issue 14.8): `ioc-edge GROUP --help`
 * and `ioc-edge GROUP` alone list the group's commands and exit 0; an unknown
 * command in a group exits 2 with the same list on stderr.
 */
import t from 'tap';
import { gatewayCommands } from '../gateway/cli/index.js';
import { hubCommands } from '../hub/cli/index.js';
import { runCli } from './support/cli.js';

const all = [...gatewayCommands, ...hubCommands];
const NAMED = ['fw', 'config', 'claim', 'gateway', 'token', 'account', 'audit', 'profile', 'device', 'hub'];
/** Every group there is (the first word of commands with several words): the named ones and any added since. */
const GROUPS = [...new Set(all.map((c) => c.name.split(' ')).filter((w) => w.length > 1).map((w) => w[0]!))];

t.test('the groups the issue names exist', async (t) => {
  for (const g of NAMED) t.ok(GROUPS.includes(g), g);
});

for (const group of GROUPS) {
  t.test(`ioc-edge ${group}`, async (t) => {
    const members = all.filter((c) => c.name.startsWith(`${group} `));
    for (const argv of [[group, '--help'], [group, '-h'], [group, 'help'], [group]]) {
      const r = await runCli(argv);
      t.equal(r.code, 0, `'${argv.join(' ')}' exits 0`);
      t.equal(r.err, '');
      t.match(r.out, `Usage: ioc-edge ${group} <command>`);
      for (const c of members) t.match(r.out, `  ${c.name}`, `'${argv.join(' ')}' lists '${c.name}'`);
      t.notMatch(r.out, /undefined|unknown command/);
    }
    const bad = await runCli([group, 'no-such-thing']);
    t.equal(bad.code, 2, 'an unknown command in the group exits 2');
    t.match(bad.err, `unknown command '${group} no-such-thing'`);
    for (const c of members) t.match(bad.err, `  ${c.name}`);
    t.equal(bad.out, '');
  });
}

t.test('a command of a group still gets its own help; an unknown word still exits 2 with the full list', async (t) => {
  const own = await runCli(['fw', 'upload', '--help']);
  t.equal(own.code, 0);
  t.notMatch(own.out, 'Usage: ioc-edge fw <command>', 'the command\'s own help, not the group\'s');
  const unknown = await runCli(['frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.err, "unknown command 'frobnicate'");
  t.match(unknown.err, '  scan');
});
