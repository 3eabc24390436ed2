/** The SQLite state stores (registry.sqlite, opened by hub/store/state.ts) against the registry/identity/audit conformance suite. */
import t from 'tap';
import path from 'node:path';
import { SqliteDb, silentLogger } from '../../../lib/index.js';
import { openStateStores } from '../state.js';
import { identityStateConformance } from './state-conformance-identity.js';

identityStateConformance(t, 'SQLite', {
  location: async (t) => t.testdir(),
  open: (dir, clock) => openStateStores({ dataDir: dir, logger: silentLogger(), clock }),
  exec: async (dir, sql) => {
    const db = await SqliteDb.open(path.join(dir, 'registry.sqlite'));
    try {
      await db.exec(sql);
    } finally {
      await db.close();
    }
  },
});
