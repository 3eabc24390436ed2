/**
 * Sparkplug commands to the edge node (spec §6.4.19–§6.4.20, §5 "Commands"):
 *
 * - NCMD `Node Control/Rebirth` = true → a complete new birth sequence
 *   ([tck-id-operational-behavior-data-commands-ncmd-rebirth-name], [...-value]);
 *   any other NCMD metric is refused (the node has no other writable metric).
 * - DCMD metrics (by alias or name) → the gateway's write path, which applies
 *   the profile's checks (writable, type, min/max) before the driver writes.
 *
 * Nothing is dropped silently. A metric that is unknown, of the wrong datatype
 * ([tck-id-operational-behavior-data-commands-dcmd-metric-value]: "MUST
 * include a compatible metric value") or refused by the profile or the device
 * is logged (warn, GW_ERR_SPARKPLUG_CMD with the write's own code) and, for a
 * device metric the birth announced, answered with a DDATA carrying the value
 * in force and a `writeError` String property `CODE: message`: the host's tag
 * shows what the device really holds, with the reason beside it. The
 * specification has no negative acknowledgement; reporting the current value
 * follows its rule that DATA carries what changed or is current
 * ([tck-id-operational-behavior-data-publish-dbirth-change]). A payload that
 * is not a Sparkplug protobuf is logged (GW_ERR_SPARKPLUG_PAYLOAD) and ignored.
 */
import { IocError, isIocError, type Reading } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import { decodePayload, toNumber, type SpMetric } from './sparkplug-codec.js';
import { commandValue, type MetricDef } from './sparkplug-metrics.js';
import { REBIRTH_METRIC, type SparkplugSession } from './sparkplug-session.js';

/** One command message and what it may act on. */
export interface CommandContext {
  type: 'NCMD' | 'DCMD';
  device?: string;
  payload: Buffer;
  session: SparkplugSession;
  born: boolean;
  logger: Logger;
  writePoint(device: string, point: string, value: unknown): Promise<void>;
  latest(device: string): Reading[];
  clock: () => number;
  rebirth(): void;
  /** Publishes a DDATA of `device` (a refused write's answer). */
  answer(device: string, payload: Uint8Array): void;
  /** Counts one refused metric. */
  refused(): void;
}

/** Outcome of one command message, per metric (tests). */
export interface CommandOutcome {
  type: 'NCMD' | 'DCMD';
  device?: string;
  results: Array<{ metric: string; ok: boolean; code?: string }>;
}

/** Handles one NCMD or DCMD message; never throws. */
export async function handleCommand(c: CommandContext): Promise<CommandOutcome> {
  const out: CommandOutcome = { type: c.type, ...(c.device !== undefined ? { device: c.device } : {}), results: [] };
  let metrics: SpMetric[];
  try {
    metrics = decodePayload(c.payload).metrics;
  } catch (err) {
    c.refused();
    c.logger.warn({ code: 'GW_ERR_SPARKPLUG_PAYLOAD', type: c.type, device: c.device, bytes: c.payload.length, err: (err as Error).message }, `${c.type} is not a Sparkplug B payload; ignored`);
    out.results.push({ metric: '(payload)', ok: false, code: 'GW_ERR_SPARKPLUG_PAYLOAD' });
    return out;
  }
  for (const m of metrics) {
    const label = m.name ?? (m.alias !== undefined ? `alias ${toNumber(m.alias)}` : '(no name or alias)');
    try {
      if (c.type === 'NCMD') node(c, m, label);
      else await device(c, m, label);
      out.results.push({ metric: label, ok: true });
    } catch (err) {
      c.refused();
      const code = isIocError(err) ? err.code : 'GW_ERR_SPARKPLUG_CMD';
      c.logger.warn({ code, type: c.type, device: c.device, metric: label, err: (err as Error).message }, 'Sparkplug command refused');
      out.results.push({ metric: label, ok: false, code });
      const def = c.device !== undefined ? resolve(c, m) : undefined;
      if (def && c.device !== undefined && c.born && c.session.isBorn(c.device)) {
        const r = c.latest(c.device).find((x) => x.point === def.name);
        c.answer(c.device, c.session.refusal(def, r, `${code}: ${(err as Error).message}`.slice(0, 512), c.clock()));
      }
    }
  }
  return out;
}

function node(c: CommandContext, m: SpMetric, label: string): void {
  if (m.name !== REBIRTH_METRIC) {
    throw new IocError('GW_ERR_SPARKPLUG_CMD', `NCMD metric ${quote(label)} is unknown: this edge node accepts only '${REBIRTH_METRIC}'`);
  }
  if (m.booleanValue !== true) {
    throw new IocError('GW_ERR_SPARKPLUG_CMD', `NCMD '${REBIRTH_METRIC}' must be the Boolean true; got ${describe(m)}`);
  }
  c.logger.info({ metric: REBIRTH_METRIC }, 'rebirth requested by a host');
  c.rebirth();
}

async function device(c: CommandContext, m: SpMetric, label: string): Promise<void> {
  const id = c.device!;
  if (!c.session.knows(id)) throw new IocError('GW_ERR_SPARKPLUG_CMD', `DCMD for device '${id}', which this edge node does not have (or has not born)`, { context: { device: id } });
  const def = resolve(c, m);
  if (!def) throw new IocError('GW_ERR_SPARKPLUG_CMD', `DCMD metric ${quote(label)} is not a metric of device '${id}' (its DBIRTH lists the names and aliases)`, { context: { device: id } });
  const value = commandValue(def, m);
  await c.writePoint(id, def.name, value);
  c.logger.info({ device: id, point: def.name, value }, 'point written by a Sparkplug DCMD');
}

/** The birth definition a command metric names (by alias of this device, or by name). */
function resolve(c: CommandContext, m: SpMetric): MetricDef | undefined {
  const id = c.device!;
  if (m.alias !== undefined && m.alias !== null) {
    const hit = c.session.byAliasOf(toNumber(m.alias) ?? -1);
    return hit && hit.device === id ? hit.def : undefined;
  }
  return m.name !== undefined ? c.session.def(id, m.name) : undefined;
}

function quote(label: string): string {
  return label.startsWith('alias ') || label.startsWith('(') ? label : `'${label}'`;
}

function describe(m: SpMetric): string {
  for (const k of ['booleanValue', 'intValue', 'longValue', 'floatValue', 'doubleValue', 'stringValue'] as const) {
    if (Object.prototype.hasOwnProperty.call(m, k)) return `${k} ${JSON.stringify(k === 'longValue' ? toNumber(m.longValue) : m[k])}`;
  }
  return 'no value';
}
