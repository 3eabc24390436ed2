/**
 * `ioc-edge hub status`: the hub nodes, their load and which node holds
 * which singleton (issue 16 item 5), from GET /api/v1/cluster of any node
 * (hub/cluster/status-routes.ts). `--json` prints the API's answer as is.
 * Exit 0 when every node shown is alive and every singleton has a holder,
 * 3 when not (a dead node, or work nobody holds), 1 when the hub cannot be
 * asked.
 */
import { isIocError } from '../../contract/index.js';
import type { ClusterView } from '../cluster/nodes.js';
import { API_HELP, API_OPTIONS, apiTarget, callApi } from './api-client.js';
import type { Command } from './command.js';
import { parse } from './parse.js';

const HELP = `Usage: ioc-edge hub status [--json]

Shows the hub nodes sharing the hub's database (one line each: id, alive or
not, MQTT connections, readings committed per second, singletons it holds) and
every singleton with its holder and fencing epoch. Any node answers for all.

Exit status: 0 all nodes alive and every singleton held, 3 a node is dead or a
singleton has no holder, 1 the hub could not be asked.

${API_HELP}`;

const ago = (ms: number, now: number): string => {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};

/** The view as text lines (exported for the test). */
export function renderClusterView(v: ClusterView, now = Date.now()): string {
  const out: string[] = [`backend ${v.backend}; answered by ${v.self}`, '', 'NODES'];
  for (const n of v.nodes) {
    const state = n.stoppedAt !== null ? `stopped ${ago(n.stoppedAt, now)}` : n.alive ? 'alive' : `DEAD (last seen ${ago(n.lastSeen, now)})`;
    out.push(`  ${n.id}  ${state}  ${n.host} pid ${n.pid} v${n.version}  connections ${n.load.connections}  readings/s ${n.load.readingsPerS}  holds ${n.holds.length ? n.holds.join(', ') : '-'}`);
  }
  out.push('', 'SINGLETONS');
  if (v.singletons.length === 0) out.push('  (none yet)');
  for (const s of v.singletons) out.push(`  ${s.name}  ${s.live ? `held by ${s.holder}${s.epoch !== null ? ` (epoch ${s.epoch})` : ''}` : `NOT HELD${s.epoch !== null ? ` (last epoch ${s.epoch})` : ''}`}`);
  return `${out.join('\n')}\n`;
}

export const hubStatus: Command = {
  name: 'hub status',
  summary: 'hub nodes, their load, and which node holds which singleton',
  async run(args, io) {
    const p = parse(args, { ...API_OPTIONS, json: { type: 'boolean' } }, HELP, io);
    if ('exit' in p) return p.exit;
    let v: ClusterView;
    try {
      v = await callApi<ClusterView>(apiTarget(p.values), 'GET', '/api/v1/cluster');
    } catch (e) {
      io.err.write(`${isIocError(e) ? e.message : String(e)}\n`);
      return 1;
    }
    io.out.write(p.values.json ? `${JSON.stringify(v, null, 2)}\n` : renderClusterView(v));
    // Stopped nodes left cleanly; a node that stopped beating without saying so, or work with no holder, needs a look.
    const bad = v.nodes.some((n) => !n.alive && n.stoppedAt === null) || v.singletons.some((s) => !s.live);
    return bad ? 3 : 0;
  },
};
