/**
 * The SQLite backend of the configuration and firmware ports — ConfigStore
 * (a registry.sqlite connection), FirmwareDb (firmware.sqlite) and the image
 * folder (DiskImages) — against state-conformance-config.ts.
 */
import path from 'node:path';
import t from 'tap';
import { silentLogger, SqliteDb } from '../../../lib/index.js';
import { ConfigStore } from '../sqlite/config-store.js';
import { DiskImages } from '../sqlite/disk-images.js';
import { FirmwareDb } from '../sqlite/firmware-db.js';
import { configFirmwareConformance, type ConfigFirmwareStores } from './state-conformance-config.js';

configFirmwareConformance(t, 'SQLite (ConfigStore, FirmwareDb, DiskImages)', {
  location: async (t) => t.testdir(),
  open: (dir, opts): ConfigFirmwareStores => {
    // The registry database's connection, as RegistryDb gives it to ConfigStore.
    const holder: { conn: SqliteDb | null; readonly db: SqliteDb } = {
      conn: null,
      get db(): SqliteDb {
        if (!this.conn) throw new Error('registry database not open');
        return this.conn;
      },
    };
    const config = new ConfigStore({ db: holder, ...(opts?.eventsPerGateway !== undefined ? { eventsPerGateway: opts.eventsPerGateway } : {}) });
    const firmware = new FirmwareDb({ file: path.join(dir, 'firmware.sqlite'), logger: silentLogger(), ...(opts?.clock ? { clock: opts.clock } : {}) });
    return {
      config, firmware, images: new DiskImages(path.join(dir, 'firmware')),
      async start() {
        holder.conn = await SqliteDb.open(path.join(dir, 'registry.sqlite'));
        await holder.conn.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;');
        await config.start();
        await firmware.start();
      },
      async stop() {
        await firmware.stop();
        await config.stop();
        await holder.conn?.close();
        holder.conn = null;
      },
    };
  },
});
