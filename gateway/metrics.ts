/**
 * The gateway's Prometheus metrics (prom-client, text exposition format
 * 0.0.4). Every value is read from the services' own statistics at scrape
 * time (`outbox.stats()`, `uplink.stats()`, `pollStats()`), so nothing on
 * the polling or telemetry path pays for metrics. Each gateway has its own
 * `Registry` — never prom-client's global one: tests run many gateways in
 * one process. Names follow `ioc_edge_<what>_<unit>`.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { OutboxStats } from './outbox/outbox.js';
import type { DevicePollStats } from './southbound/device-state.js';
import type { PollPacerStats } from './southbound/poll-pacer.js';
import type { UplinkStats } from './uplink/uplink.js';

/** Where the metrics come from. */
export interface GatewayMetricsSources {
  gatewayId: string;
  version: string;
  outbox: { stats(): OutboxStats };
  uplink: { stats(): UplinkStats };
  pollStats(): Record<string, DevicePollStats>;
  /** The poll pacer (overload: stretched polls, overruns), issue 14.10. */
  pacer?: { stats(): PollPacerStats };
  /** Alarms raised now, and raised/cleared since start. */
  alarms?: () => { active: number; raised: number; cleared: number };
  clock?: () => number;
}

type Source<T> = () => T;

/** A gauge whose value is read at scrape time. */
function gauge(reg: Registry, name: string, help: string, read: Source<number>): void {
  new Gauge({ name, help, registers: [reg], collect() { this.set(read()); } });
}

/** A counter whose running total is kept by a service and read at scrape time. */
function counter(reg: Registry, name: string, help: string, read: Source<number>): void {
  new Counter({ name, help, registers: [reg], collect() { this.reset(); this.inc(read()); } });
}

/** A per-device gauge or counter read from the poll statistics. */
function perDevice(reg: Registry, kind: 'gauge' | 'counter', name: string, help: string, stats: Source<Record<string, DevicePollStats>>, read: (s: DevicePollStats) => number): void {
  const collect = function (this: Gauge<'device'> | Counter<'device'>): void {
    this.reset();
    for (const [device, s] of Object.entries(stats())) {
      if (this instanceof Gauge) this.set({ device }, read(s));
      else this.inc({ device }, read(s));
    }
  };
  if (kind === 'gauge') new Gauge({ name, help, labelNames: ['device'], registers: [reg], collect });
  else new Counter({ name, help, labelNames: ['device'], registers: [reg], collect });
}

/** The gateway's metrics registry. */
export class GatewayMetrics {
  /** This gateway's registry (not prom-client's global one). */
  readonly registry = new Registry();
  private readonly started: number;

  constructor(src: GatewayMetricsSources) {
    const reg = this.registry;
    const clock = src.clock ?? Date.now;
    this.started = clock();
    reg.setDefaultLabels({ gateway: src.gatewayId });
    new Gauge({ name: 'ioc_edge_gateway_info', help: 'Gateway software version (value 1).', labelNames: ['version'], registers: [reg] }).set({ version: src.version }, 1);
    gauge(reg, 'ioc_edge_process_uptime_seconds', 'Seconds since the gateway started.', () => (clock() - this.started) / 1000);
    gauge(reg, 'ioc_edge_process_resident_memory_bytes', 'Resident set size of the gateway process.', () => process.memoryUsage.rss());
    gauge(reg, 'ioc_edge_process_heap_used_bytes', 'V8 heap in use.', () => process.memoryUsage().heapUsed);

    const polls = (): Record<string, DevicePollStats> => src.pollStats();
    perDevice(reg, 'gauge', 'ioc_edge_device_poll_latency_seconds', 'Duration of the last poll of the device (all its read requests).', polls, (s) => s.lastLatencyMs / 1000);
    perDevice(reg, 'counter', 'ioc_edge_device_polls_total', 'Polls of the device since start.', polls, (s) => s.polls);
    perDevice(reg, 'counter', 'ioc_edge_device_poll_failures_total', 'Failed polls of the device since start.', polls, (s) => s.failures);
    perDevice(reg, 'counter', 'ioc_edge_device_poll_timeouts_total', 'Requests to the device that timed out since start.', polls, (s) => s.timeouts ?? 0);
    perDevice(reg, 'counter', 'ioc_edge_device_poll_overruns_total', 'Polls that took longer than their interval.', polls, (s) => s.overruns);
    perDevice(reg, 'gauge', 'ioc_edge_device_up', '1 while the device answers, 0 when it is down or not yet polled.', polls, (s) => (s.health === 'up' ? 1 : 0));

    if (src.pacer) {
      const pacer = src.pacer;
      counter(reg, 'ioc_edge_poll_overruns_total', 'Polls of all devices that could not keep their interval (stretched under overload, started an interval late, or longer than it) since start.', () => pacer.stats().overruns);
      gauge(reg, 'ioc_edge_poll_stretch_ratio', 'Factor poll intervals are stretched by now so the uplink keeps its share (1 = on time).', () => pacer.stats().stretch);
      gauge(reg, 'ioc_edge_event_loop_utilization_ratio', 'Share of the last pacer tick the event loop was busy, 0..1.', () => pacer.stats().eventLoopUtilization);
    }

    const ob = (): OutboxStats => src.outbox.stats();
    gauge(reg, 'ioc_edge_outbox_readings', 'Readings waiting in the outbox (depth).', () => ob().rows);
    gauge(reg, 'ioc_edge_outbox_bytes', 'Approximate payload bytes waiting in the outbox.', () => ob().bytes);
    gauge(reg, 'ioc_edge_outbox_oldest_age_seconds', 'Age of the oldest waiting reading (0 when empty).', () => {
      const oldest = ob().oldestTs;
      return oldest === null ? 0 : Math.max(0, (clock() - oldest) / 1000);
    });
    gauge(reg, 'ioc_edge_outbox_uncommitted_age_seconds', 'Age of the oldest reading not yet committed to disk: what a process crash now would lose (docs/durability.md).', () => (ob().uncommittedMs ?? 0) / 1000);
    gauge(reg, 'ioc_edge_outbox_commit_lag_max_seconds', 'Longest time from append to commit of a reading since start (the crash window seen so far).', () => (ob().commitLagMaxMs ?? 0) / 1000);
    gauge(reg, 'ioc_edge_outbox_historical_readings', 'Waiting readings in the backlog region (sent as historical).', () => ob().historical);
    gauge(reg, 'ioc_edge_outbox_events', 'Events waiting in the outbox.', () => ob().events);
    counter(reg, 'ioc_edge_outbox_appended_readings_total', 'Readings appended since start.', () => ob().appended);
    counter(reg, 'ioc_edge_outbox_dropped_readings_total', 'Readings dropped by an outbox budget since start.', () => ob().dropped);
    counter(reg, 'ioc_edge_outbox_acked_readings_total', 'Readings acknowledged by the hub since start.', () => ob().acked);

    const up = (): UplinkStats => src.uplink.stats();
    gauge(reg, 'ioc_edge_uplink_connected', '1 while connected to the hub.', () => (up().connected ? 1 : 0));
    gauge(reg, 'ioc_edge_uplink_drain_readings_per_second', 'Readings acknowledged per second over the last 10 s (drain rate).', () => up().drainPerS);
    gauge(reg, 'ioc_edge_uplink_batch_size_readings', 'Current adaptive batch size.', () => up().batchSize);
    gauge(reg, 'ioc_edge_uplink_in_flight_messages', 'Telemetry messages sent and not yet acknowledged.', () => up().inFlight);
    counter(reg, 'ioc_edge_uplink_messages_sent_total', 'Telemetry messages (batches) published to the hub since start.', () => up().batchesSent);
    counter(reg, 'ioc_edge_uplink_messages_acked_total', 'Telemetry messages acknowledged by the hub since start.', () => up().batchesAcked);
    counter(reg, 'ioc_edge_uplink_events_acked_total', 'Events acknowledged by the hub since start.', () => up().eventsAcked);
    counter(reg, 'ioc_edge_uplink_connects_total', 'Successful connections to the hub since start.', () => up().connects);
    counter(reg, 'ioc_edge_uplink_failovers_total', 'Connections made to a different hub address than the one before, since start (hub.url with several addresses, docs/hub-failover.md).', () => up().failovers ?? 0);
    new Gauge({
      name: 'ioc_edge_uplink_hub', help: 'One series per configured hub address (hub.url): 1 for the one connected to now, its label address the IP it resolved to; 0 for the others.',
      labelNames: ['hub', 'address'], registers: [reg],
      collect() {
        this.reset();
        const s = up();
        for (const hub of s.hubs ?? []) this.set({ hub, address: hub === s.hub ? s.hubAddress ?? '' : '' }, hub === s.hub ? 1 : 0);
      },
    });

    if (src.alarms) {
      const al = src.alarms;
      gauge(reg, 'ioc_edge_alarms_active', 'Threshold alarms raised now.', () => al().active);
      counter(reg, 'ioc_edge_alarms_raised_total', 'Alarms raised since start.', () => al().raised);
      counter(reg, 'ioc_edge_alarms_cleared_total', 'Alarms cleared since start.', () => al().cleared);
    }
  }

  /** The exposition text for GET /metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Content type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
