/**
 * The northbound chosen by remote configuration, through the hub (push,
 * apply, commit-confirm): ioc/v1 → Sparkplug (births at the Sparkplug
 * broker, the hub's telemetry stops) → ioc/v1 again (NDEATH, telemetry at the
 * hub again); a Sparkplug configuration without a group id (and no site in
 * a credential) fails at the gateway and is rolled back with the reason.
 */
import t from 'tap';
import { push, pushable, reportOf, startRemoteStack } from '../../../test/support/remote-config.js';
import { waitFor } from '../../../test/support/wait.js';
import { GROUP, NODE, startAedes, startHost } from './sparkplug-fixture.js';

t.test('northbound switched by remote configuration, with commit-confirm and rollback', async (t) => {
  const { hub, gw, cfg } = await startRemoteStack(t, t.testdir(), { confirmWindowMs: 3000 });
  const spPort = await startAedes(t);
  const host = await startHost(t, spPort);
  let committed = 0;
  hub.events.on('batch', ({ readings, duplicate }: { readings: unknown[]; duplicate: boolean }) => {
    if (!duplicate) committed += readings.length;
  });
  await waitFor(() => committed > 20, 'ioc/v1 telemetry committed at the hub');

  // No group id and no provisioned site: refused at the gateway, rolled back, reported.
  const noGroup = { ...pushable(cfg), northbound: { type: 'sparkplug', url: `mqtt://127.0.0.1:${spPort}` } };
  t.equal((await push(hub, NODE, { config: noGroup })).status, 201, 'the hub accepts it (the schema allows a group id from the site)');
  const refused = await reportOf(gw, 1, 'rolled-back');
  t.match(JSON.stringify(refused), /GW_ERR_SPARKPLUG_CONFIG|no group id/, 'the report names the missing group id');
  t.equal(gw.sparkplug, null, 'still ioc/v1');

  const sparkplug = { ...pushable(cfg), northbound: { type: 'sparkplug', url: `mqtt://127.0.0.1:${spPort}`, groupId: GROUP, reconnectMinMs: 100, reconnectMaxMs: 500 } };
  await push(hub, NODE, { config: sparkplug });
  await reportOf(gw, 2, 'applied');
  const node = host.node(GROUP, NODE);
  await host.until(() => node.births === 1 && (node.devices.get('flood-1')?.live.length ?? 0) > 5, 'Sparkplug births and data after the push');
  const atHub = committed;
  await host.until(() => node.devices.get('flood-1')!.live.length > 30, 'more Sparkplug data');
  t.ok(committed - atHub <= 1000, `the hub gets no new telemetry (${committed - atHub} readings: at most batches already reserved)`);

  await push(hub, NODE, { config: pushable(cfg) });
  await reportOf(gw, 3, 'applied');
  await host.until(() => !node.online, 'NDEATH when switched back to ioc/v1');
  const back = committed;
  await waitFor(() => committed > back + 20, 'ioc/v1 telemetry at the hub again');
  t.same(host.violations, [], 'no conformance statement broken');
});
