/**
 * Schema version 5 of the PostgreSQL store: the node holding each gateway's
 * connection (issue 16, docs/cluster.md "Takeover"). Entry in migrations.ts;
 * used by pg-telemetry-store.ts when the hub runs as a cluster node.
 *
 * - `gateways.node`: the broker id (`<node id>.<boot id>`, the `id` of the
 *   node's `cluster_nodes` row, what `ioc-edge hub status` lists) of the
 *   node holding the gateway's MQTT connection, NULL when none does. An
 *   `online: false` from another node is ignored (a takeover), and rows of
 *   dead nodes are cleared by the connection sweep. Before this version the
 *   store added the column itself at start; `IF NOT EXISTS` keeps a schema
 *   that got it that way migrating cleanly.
 */
export const SCHEMA_V5_GATEWAY_NODE = `
ALTER TABLE gateways ADD COLUMN IF NOT EXISTS node text COLLATE "C";
`;
