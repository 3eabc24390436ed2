/**
 * Choosing the hub's store (issue 15 item 5): `--store` over the
 * environment (IOC_EDGE_STORE, or IOC_EDGE_HUB_STORE) over the `store` key
 * of the `--config` file over the default (SQLite in the data directory);
 * the configuration file checked by its schema; the chosen store logged
 * with where it came from and never with its password.
 */
import t from 'tap';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { runCli } from '../../../test/support/cli.js';
import { tempDir } from '../../test/support.js';
import { chooseStore, readHubConfig } from '../../cli/hub-run.js';

/** Runs `fn` with these environment variables set (undefined: unset), restoring them after. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T> | T): Promise<T> {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>): void => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  set(vars);
  try {
    return await fn();
  } finally {
    set(before);
  }
}

t.test('precedence: flag > environment > file > default', async (t) => {
  await withEnv({ IOC_EDGE_STORE: undefined, IOC_EDGE_HUB_STORE: undefined }, () => {
    t.same(chooseStore(undefined), { store: undefined, from: 'default' }, 'nothing: SQLite in the data directory');
    t.same(chooseStore(undefined, 'postgres://file/x'), { store: 'postgres://file/x', from: 'file' });
    t.same(chooseStore('sqlite:/d', 'postgres://file/x'), { store: 'sqlite:/d', from: 'flag' });
  });
  await withEnv({ IOC_EDGE_STORE: 'postgres://env/x', IOC_EDGE_HUB_STORE: 'postgres://old/x' }, () => {
    t.same(chooseStore(undefined, 'postgres://file/x'), { store: 'postgres://env/x', from: 'env' }, 'the environment over the file; IOC_EDGE_STORE over the older name');
    t.same(chooseStore('sqlite:/d', 'postgres://file/x'), { store: 'sqlite:/d', from: 'flag' }, 'the flag over the environment');
  });
  await withEnv({ IOC_EDGE_STORE: undefined, IOC_EDGE_HUB_STORE: 'postgres://old/x' }, () => {
    t.same(chooseStore(undefined, 'postgres://file/x'), { store: 'postgres://old/x', from: 'env' }, 'IOC_EDGE_HUB_STORE still read');
  });
});

t.test('the configuration file is checked: unknown keys, wrong types, not JSON, missing', async (t) => {
  const dir = tempDir(t, 'ioc-edge-hubcfg-');
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  t.same(await readHubConfig(file('ok.json', '{"store": "sqlite:/x"}')), { store: 'sqlite:/x' });
  t.same(await readHubConfig(file('empty.json', '{}')), {}, 'no store key: the default');
  await t.rejects(readHubConfig(file('typo.json', '{"stroe": "x"}')), { code: 'CONFIG_ERR_INVALID', message: /typo\.json: \/ must NOT have additional properties \('stroe'\)/ }, 'a misspelt key names itself');
  await t.rejects(readHubConfig(file('num.json', '{"store": 5}')), { code: 'CONFIG_ERR_INVALID', message: /\/store must be string/ });
  await t.rejects(readHubConfig(file('blank.json', '{"store": ""}')), { code: 'CONFIG_ERR_INVALID', message: /\/store must NOT have fewer than 1 characters/ });
  await t.rejects(readHubConfig(file('bad.json', '{store')), { code: 'CONFIG_ERR_INVALID', message: /is not JSON/ });
  await t.rejects(readHubConfig(path.join(dir, 'none.json')), { code: 'CONFIG_ERR_READ', message: /cannot read hub configuration/ });
  const r = await runCli(['hub', 'run', '--data-dir', dir, '--config', path.join(dir, 'typo.json')]);
  t.match(r, { code: 2, err: /additional properties \('stroe'\)/ }, 'hub run refuses a bad file before starting');
});

t.test('hub run: the store from the file or the environment, logged with its source, password redacted everywhere', async (t) => {
  const dir = tempDir(t, 'ioc-edge-hubcfg-run-');
  // Port 1 refuses at once: the hub does not start, but only after choosing and logging its store.
  const cfg = path.join(dir, 'hub.json');
  writeFileSync(cfg, JSON.stringify({ store: 'postgres://hub:file-s3cret@127.0.0.1:1/ioc?schema=city' }));
  const args = ['hub', 'run', '--data-dir', path.join(dir, 'data'), '--config', cfg, '--mqtt-port', '0', '--http-port', '0'];
  const fromFile = await withEnv({ IOC_EDGE_STORE: undefined, IOC_EDGE_HUB_STORE: undefined }, () => runCli(args));
  t.equal(fromFile.code, 1, 'not started: PostgreSQL unreachable');
  const chosen = fromFile.out.split('\n').filter((l) => l.includes('hub store chosen')).map((l) => JSON.parse(l) as { store: string; from: string });
  t.match(chosen, [{ store: 'postgres://hub:***@127.0.0.1:1/ioc?schema=city', from: 'file' }], 'the file was used, logged redacted');
  t.match(fromFile.err, /hub not started: .*unreachable/);
  t.notMatch(`${fromFile.out}${fromFile.err}`, /file-s3cret/, 'the password is in no line');

  const fromEnv = await withEnv({ IOC_EDGE_STORE: 'postgres://hub:env-s3cret@127.0.0.1:1/other', IOC_EDGE_HUB_STORE: undefined }, () => runCli(args));
  t.equal(fromEnv.code, 1);
  t.match(fromEnv.out, /"store":"postgres:\/\/hub:\*\*\*@127\.0\.0\.1:1\/other","from":"env"/, 'the environment over the file');
  t.notMatch(`${fromEnv.out}${fromEnv.err}`, /s3cret/, 'no password in any line');

  const fromFlag = await withEnv({ IOC_EDGE_STORE: 'postgres://hub:env-s3cret@127.0.0.1:1/other', IOC_EDGE_HUB_STORE: undefined }, () => runCli([...args, '--store', 'postgres://hub:flag-s3cret@127.0.0.1:1/flag']));
  t.match(fromFlag.out, /"store":"postgres:\/\/hub:\*\*\*@127\.0\.0\.1:1\/flag","from":"flag"/, 'the flag over both');
  t.notMatch(`${fromFlag.out}${fromFlag.err}`, /s3cret/);
});
