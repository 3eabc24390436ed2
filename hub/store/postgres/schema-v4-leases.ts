/**
 * Schema version 4 of the PostgreSQL store: cluster coordination (issue 16
 * item 2). Entry in migrations.ts; used by hub/cluster/lease.ts and
 * hub/cluster/nodes.ts.
 *
 * - `leases(name, holder, epoch, acquired_at, expires_at, renewed_at)`: one
 *   row per singleton ever taken. Times are the database's (`now()`), never
 *   a node's clock. `epoch` only grows (a release keeps the row and empties
 *   `holder`), so it is a fencing token: a write made under epoch 3 after
 *   epoch 4 was handed out is refused.
 * - `cluster_nodes(id, host, pid, version, started_at, last_seen, load)`:
 *   one row per hub node, its heartbeat and load (`load` = JSON
 *   `{connections, readingsPerS}`); the source of `ioc-edge hub status`.
 */
export const SCHEMA_V4_LEASES = `
CREATE TABLE leases (
  name text COLLATE "C" PRIMARY KEY,
  holder text COLLATE "C",
  epoch bigint NOT NULL,
  acquired_at timestamptz NOT NULL,
  renewed_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL);
CREATE TABLE cluster_nodes (
  id text COLLATE "C" PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  version text NOT NULL,
  started_at timestamptz NOT NULL,
  last_seen timestamptz NOT NULL,
  stopped_at timestamptz,
  load jsonb NOT NULL DEFAULT '{}');
`;
