/**
 * The PostgreSQL backend of the configuration and firmware ports —
 * PgConfigStore, PgFirmwareDb, PgImageStore on one PgPool per instance, each
 * test in its own schema migrated to the newest version — against
 * state-conformance-config.ts. Two instances on one schema are two pools:
 * the concurrency tests are between two hub processes' worth of connections.
 * Skipped with one line where no PostgreSQL answers (a failure under CI=true).
 */
import t from 'tap';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, pgSchema, skipUnlessPostgres } from '../../../test/support/postgres.js';
import { migrate } from '../postgres/migrations.js';
import { PgConfigStore } from '../postgres/pg-config.js';
import { PgFirmwareDb, PgImageStore } from '../postgres/pg-firmware.js';
import { PgPool } from '../postgres/pg-pool.js';
import { configFirmwareConformance, type ConfigFirmwareStores } from './state-conformance-config.js';

const PIECE = 1000;
const skip = await skipUnlessPostgres();
if (skip) {
  t.pass(skip);
} else {
  configFirmwareConformance(t, 'PostgreSQL (PgConfigStore, PgFirmwareDb, PgImageStore)', {
    location: async (t) => pgSchema(t, 'tcfg'),
    pieceBytes: PIECE,
    open: (schema, opts): ConfigFirmwareStores => {
      const db = new PgPool({ url: PG_URL, schema, max: 3 }, silentLogger());
      const clock = opts?.clock ? { clock: opts.clock } : {};
      let config: PgConfigStore;
      try {
        config = new PgConfigStore({ db, ...(opts?.eventsPerGateway !== undefined ? { eventsPerGateway: opts.eventsPerGateway } : {}) });
      } catch (err) {
        void db.end();
        throw err;
      }
      const firmware = new PgFirmwareDb({ db, ...clock });
      return {
        config, firmware, images: new PgImageStore({ db, pieceBytes: PIECE, ...clock }),
        async start() {
          await migrate(db);
          await config.start();
          await firmware.start();
        },
        async stop() {
          await firmware.stop();
          await config.stop();
          await db.end();
        },
      };
    },
  });
}
