/** Choosing the store: `--store` / IOC_EDGE_HUB_STORE values, and a hub on `sqlite:DIR`. */
import t from 'tap';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../../lib/index.js';
import { startHub } from '../../index.js';
import { tempDir } from '../../test/support.js';
import { storeOption } from '../../cli/hub-run.js';
import { parseStoreUrl, redact } from '../postgres/pg-pool.js';

t.test('store URLs', async (t) => {
  t.same(parseStoreUrl(undefined), { kind: 'sqlite', dir: null }, 'nothing: SQLite in the data directory');
  t.same(parseStoreUrl(''), { kind: 'sqlite', dir: null });
  t.same(parseStoreUrl('sqlite:/var/lib/x'), { kind: 'sqlite', dir: '/var/lib/x' });
  t.same(parseStoreUrl('postgres://hub@db:5432/ioc?schema=city_a'), { kind: 'postgres', url: 'postgres://hub@db:5432/ioc', schema: 'city_a' });
  t.same(parseStoreUrl('postgresql://hub@db/ioc'), { kind: 'postgres', url: 'postgresql://hub@db/ioc', schema: 'ioc_edge' }, 'default schema');
  t.throws(() => parseStoreUrl('mysql://db/x'), { code: 'HUB_ERR_STORE_URL', message: /neither postgres:\/\/… nor sqlite:DIR/ });
  t.throws(() => parseStoreUrl('postgres://db/x?schema=Robert%27);DROP'), { code: 'HUB_ERR_STORE_URL', message: /not a plain lower-case identifier/ }, 'the schema name goes into SQL text: only plain identifiers');
  t.throws(() => parseStoreUrl('postgres://u:secret@db:5432/x?schema=a b'), { code: 'HUB_ERR_STORE_URL' });
  t.equal(redact('postgres://u:secret@db:5432/x'), 'postgres://u:***@db:5432/x', 'passwords never reach messages');
  const before = process.env.IOC_EDGE_HUB_STORE;
  t.teardown(() => {
    if (before === undefined) delete process.env.IOC_EDGE_HUB_STORE;
    else process.env.IOC_EDGE_HUB_STORE = before;
  });
  process.env.IOC_EDGE_HUB_STORE = 'postgres://env/x';
  t.equal(storeOption(undefined), 'postgres://env/x', 'the environment when no flag');
  t.equal(storeOption('sqlite:/d'), 'sqlite:/d', 'the flag wins');
});

t.test('a hub on sqlite:DIR keeps its telemetry store there', async (t) => {
  const data = tempDir(t);
  const other = tempDir(t);
  const hub = await startHub({ dataDir: data, logger: silentLogger(), mqttPort: 0, httpPort: 0, store: `sqlite:${other}` });
  t.teardown(() => hub.stop());
  t.ok(existsSync(path.join(other, 'hub.sqlite')), 'hub.sqlite in the named folder');
  t.notOk(existsSync(path.join(data, 'hub.sqlite')), 'not in the data directory');
});
