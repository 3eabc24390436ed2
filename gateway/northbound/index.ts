/**
 * The gateway's northbound choices besides the ioc/v1 uplink (uplink/):
 * Sparkplug B 3.0 edge node (issue 17, docs/sparkplug.md). The composition
 * root (gateway.ts) builds a {@link SparkplugNode} when the configuration's
 * `northbound.type` is `sparkplug` and closes the uplink's view of the outbox
 * ({@link TelemetryGate}) so that one outbox feeds one telemetry consumer.
 */
export { SparkplugNode, type SparkplugNodeDeps, type SparkplugSettings, type SparkplugStats } from './sparkplug-node.js';
export { sparkplugSettings } from './sparkplug-settings.js';
export { TelemetryGate } from './telemetry-gate.js';
export type { SparkplugDevice } from './sparkplug-session.js';
