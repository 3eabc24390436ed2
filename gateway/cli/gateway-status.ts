/**
 * `ioc-edge gateway status`: what the running gateway on this machine is
 * doing with its hub link — connected or not, which hub address it uses now
 * (of the several `hub.url` may list, issue 16.4) and the IP it resolved to,
 * failovers, backlog. Read from the gateway's own HTTP endpoint (`/metrics`,
 * `/readyz`; `http` in its configuration), so it needs no credentials and
 * works while the hub is away. Exit code 0 when connected to a hub, 1 when
 * not (or the gateway does not answer), 2 on a usage error.
 */
import { parseArgs } from 'node:util';
import { isIocError } from '../../contract/index.js';
import { loadGatewayConfig } from '../config.js';
import type { Command } from './command.js';

const HELP = `Usage: ioc-edge gateway status (--config FILE | --url URL) [--json]

Shows the running gateway's hub link: connected or not, the hub address in use
and what it resolved to, every configured hub address, failovers, backlog.
Reads the gateway's local HTTP endpoint: --config takes its address from the
configuration's "http" setting; --url names it (e.g. http://127.0.0.1:9100).`;

/** One sample of the Prometheus text format: name, labels, value. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (0.0.4) into samples; comments and malformed lines are skipped. */
export function parseMetrics(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The hub link as `gateway status` shows it. */
export interface HubLinkStatus {
  gateway: string | null;
  connected: boolean;
  /** The hub address in use (a `hub.url` entry) and the IP it resolved to; null while not connected. */
  hub: string | null;
  address: string | null;
  /** Every configured hub address, in ring order. */
  hubs: string[];
  failovers: number;
  connects: number;
  backlogReadings: number;
  drainPerS: number;
}

/** Builds the status from the gateway's metrics. */
export function hubLinkStatus(samples: readonly MetricSample[]): HubLinkStatus {
  const one = (name: string): number => samples.find((s) => s.name === name)?.value ?? 0;
  const hubs = samples.filter((s) => s.name === 'ioc_edge_uplink_hub');
  const inUse = hubs.find((s) => s.value === 1);
  return {
    gateway: samples.find((s) => s.name === 'ioc_edge_gateway_info')?.labels.gateway ?? null,
    connected: one('ioc_edge_uplink_connected') === 1,
    hub: inUse?.labels.hub ?? null,
    address: inUse?.labels.address || null,
    hubs: hubs.map((s) => s.labels.hub!),
    failovers: one('ioc_edge_uplink_failovers_total'),
    connects: one('ioc_edge_uplink_connects_total'),
    backlogReadings: one('ioc_edge_outbox_readings'),
    drainPerS: one('ioc_edge_uplink_drain_readings_per_second'),
  };
}

/** Renders the status for a terminal. */
export function formatHubLinkStatus(s: HubLinkStatus): string {
  const lines = [
    `gateway ${s.gateway ?? '(unknown)'}: ${s.connected ? `connected to hub ${s.hub ?? '?'}${s.address ? ` (${s.address})` : ''}` : 'NOT connected to any hub; buffering in the outbox'}`,
    `hub addresses: ${s.hubs.map((h) => (h === s.hub ? `${h} (in use)` : h)).join(', ') || '(none reported)'}`,
    `failovers since start: ${s.failovers}; connections: ${s.connects}`,
    `backlog: ${s.backlogReadings} readings; drain ${s.drainPerS} readings/s`,
  ];
  return `${lines.join('\n')}\n`;
}

async function endpointOf(values: { config?: string; url?: string }): Promise<string> {
  if (values.url) return values.url.replace(/\/+$/, '');
  const cfg = await loadGatewayConfig(values.config!);
  if (!cfg.http) throw new Error(`the gateway's HTTP endpoint is off in ${values.config}: add "http": {"host": "127.0.0.1", "port": 9100} and restart it, or give --url`);
  if (cfg.http.port === 0) throw new Error(`${values.config} sets http.port 0 (a free port picked at start): give --url with the port the gateway logged`);
  const host = cfg.http.host === '0.0.0.0' || cfg.http.host === '::' ? '127.0.0.1' : cfg.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${cfg.http.port}`;
}

export const gatewayStatus: Command = {
  name: 'gateway status',
  summary: "the running gateway's hub link: hub address in use, failovers, backlog (local HTTP endpoint)",
  async run(args, { out, err }) {
    let values;
    try {
      values = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, url: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }).values;
    } catch (e) {
      err.write(`${(e as Error).message}\n${HELP}\n`);
      return 2;
    }
    if (values.help) {
      out.write(`${HELP}\n`);
      return 0;
    }
    if (!values.config === !values.url) {
      err.write(`give exactly one of --config and --url\n${HELP}\n`);
      return 2;
    }
    let base: string;
    try {
      base = await endpointOf(values);
    } catch (e) {
      err.write(`${isIocError(e) ? e.message : (e as Error).message}\n`);
      return 2;
    }
    let text: string;
    try {
      const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      text = await res.text();
    } catch (e) {
      const why = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      err.write(`cannot read the gateway's status at ${base}/metrics (${why}): is the gateway running with its HTTP endpoint on?\n`);
      return 1;
    }
    const status = hubLinkStatus(parseMetrics(text));
    out.write(values.json ? `${JSON.stringify(status)}\n` : formatHubLinkStatus(status));
    return status.connected ? 0 : 1;
  },
};
