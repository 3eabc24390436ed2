/** The SQLite backend of the storage port (hub/store/sqlite/hub-store.ts) against the port's conformance suite. */
import t from 'tap';
import path from 'node:path';
import { silentLogger } from '../../../lib/index.js';
import { resolveDataLimits } from '../../data-limits.js';
import { HubStore } from '../sqlite/hub-store.js';
import type { TelemetryPort } from '../port.js';
import { storeConformance } from './store-conformance.js';

storeConformance(t, 'SQLite (HubStore)', {
  location: async (t) => t.testdir(),
  open: (dir, opts): TelemetryPort =>
    new HubStore({
      file: path.join(dir, 'hub.sqlite'), logger: silentLogger(), retentionTimer: false, ...(opts?.clock ? { clock: opts.clock } : {}),
      ...(opts?.maxSeriesPerGateway ? { limits: resolveDataLimits({ maxSeriesPerGateway: opts.maxSeriesPerGateway }) } : {}),
    }),
});
