/**
 * The gateway as a Sparkplug B edge node against a test host application
 * written from the specification (test/support/sparkplug-host.ts, decoding
 * with Tahu's sparkplug-payload), on Aedes (in process) and on a private
 * Mosquitto: births, seq, aliases, Rebirth, DCMD writes and refusals, bad
 * input, device deaths, clean NDEATH; and the northbound switched by
 * reconfiguration. Host outages and SIGKILL: sparkplug-outage.test.ts.
 */
import t from 'tap';
import { ModbusTcpSimulator } from '../../../scripts/sim/modbus-tcp-sim.js';
import { gatewayConfig, startSim, startTestGateway } from '../../../test/support/stack.js';
import { waitFor } from '../../../test/support/wait.js';
import { BROKERS, capturingLogger, GROUP, NODE, spConfig, startAedes, startHost } from './sparkplug-fixture.js';

for (const broker of BROKERS) {
  t.test(`${broker.name}: births, seq, aliases, Rebirth, DCMD writes and refusals, bad input`, { skip: broker.skip }, async (t) => {
    const port = await broker.start(t);
    const sim = await startSim(t);
    const host = await startHost(t, port);
    const { logger, lines } = capturingLogger();
    const gw = await startTestGateway(t, spConfig(t.testdir(), port, sim.port), logger);
    const node = host.node(GROUP, NODE);
    await host.until(() => node.births === 1 && node.devices.get('flood-1')?.online && node.devices.get('tsc-1')?.online, 'NBIRTH and both DBIRTHs');
    t.equal(node.bdSeq, 0, 'first CONNECT: bdSeq 0');
    const flood = node.devices.get('flood-1')!;
    t.same([...flood.metrics.keys()].sort(), ['alarm_level', 'battery', 'float_switch', 'level', 'level_rate', 'sample_count', 'water_temp'], 'every profile point is a metric');
    t.match(flood.metrics.get('level'), { datatype: 10 }, 'scaled uint16 → Double');
    t.match(flood.metrics.get('sample_count'), { datatype: 7 }, 'uint32 → UInt32');
    t.match(flood.metrics.get('float_switch'), { datatype: 11 }, 'discrete input → Boolean');
    t.match(node.devices.get('tsc-1')!.metrics.get('fw_version'), { datatype: 12 }, 'string → String');
    t.match(node.devices.get('tsc-1')!.metrics.get('red_lamp_ok'), { datatype: 11 }, 'register bit → Boolean');
    // Units and limits are the DBIRTH's: read them from the birth itself, not from `current`, which the
    // first live DDATA (every point, no engUnit/engLow/engHigh) may already have replaced.
    const floodBirth = host.messages.find((m) => m.type === 'DBIRTH' && m.device === 'flood-1')!.payload.metrics;
    t.match(floodBirth.find((m) => m.name === 'level')?.properties, { engUnit: { value: 'm' } }, 'unit as engUnit');
    t.match(floodBirth.find((m) => m.name === 'alarm_level')?.properties, { engLow: { value: 0 }, engHigh: { value: 10 } }, 'limits as engLow/engHigh');
    // Data with aliases, seq continuing.
    const seen = flood.live.length;
    await host.until(() => flood.live.filter((m) => m.metric === 'sample_count').length >= 3 && flood.live.length > seen, 'DDATA of flood-1');
    const counts = flood.live.filter((m) => m.metric === 'sample_count').map((m) => m.value as number);
    t.ok(counts.every((v, i) => i === 0 || v > counts[i - 1]!), 'sample_count rises in live data');

    // Rebirth: a complete new birth sequence, same bdSeq.
    const tscBirths = node.devices.get('tsc-1')!.births;
    await host.rebirth(GROUP, NODE);
    await host.until(() => node.births === 2 && node.devices.get('tsc-1')!.births === tscBirths + 1, 'births after Rebirth');
    t.equal(node.bdSeq, 0, 'Rebirth keeps the bdSeq of the connection');

    // DCMD by alias and by name, through the profile's write path.
    const tsc = node.devices.get('tsc-1')!;
    await host.dcmd(GROUP, NODE, 'tsc-1', [{ alias: tsc.metrics.get('plan')!.alias, type: 'UInt16', value: 7 }]);
    await host.until(() => tsc.current.get('plan')?.value === 7, 'plan written to 7 and reported');
    await host.dcmd(GROUP, NODE, 'tsc-1', [{ name: 'flash_mode', type: 'Boolean', value: true }]);
    await host.until(() => tsc.current.get('flash_mode')?.value === true, 'flash_mode written and reported');

    // Refused writes are answered (current value + writeError) and logged; the session goes on.
    await host.dcmd(GROUP, NODE, 'tsc-1', [{ name: 'plan', type: 'UInt16', value: 99 }]);
    const answered = await host.until(() => tsc.live.find((m) => m.metric === 'plan' && m.properties.writeError), 'refusal answered with writeError');
    t.equal(answered.value, 7, 'the answer carries the value in force');
    t.match(answered.properties.writeError?.value, /GW_ERR_WRITE_VALUE: .*99/, 'writeError names the code and the value');
    t.equal(sim.devices.get(2)!.served.plan, 7, 'the device still holds 7');
    const refusals: Array<[string, Array<Record<string, unknown>>, RegExp]> = [
      ['unknown metric', [{ name: 'no_such_point', type: 'Int32', value: 1 }], /not a metric of device 'tsc-1'/],
      ['wrong datatype', [{ name: 'plan', type: 'String', value: '7' }], /the command says datatype String, the birth announced UInt16/],
      ['out of the datatype\'s range', [{ name: 'plan', type: 'UInt16', value: 70000 }], /outside 0\.\.65535/],
      ['read-only point', [{ name: 'phase', type: 'UInt16', value: 2 }], /not writable/],
    ];
    for (const [what, metrics, message] of refusals) {
      await host.dcmd(GROUP, NODE, 'tsc-1', metrics);
      await waitFor(() => lines.some((l) => l.msg === 'Sparkplug command refused' && message.test(String(l.err))), `log line for ${what}`);
      t.pass(`${what}: refused with a log line`);
    }
    await host.ncmd(GROUP, NODE, [{ name: 'Node Control/Reboot', type: 'Boolean', value: true }]);
    await waitFor(() => lines.some((l) => l.msg === 'Sparkplug command refused' && /accepts only 'Node Control\/Rebirth'/.test(String(l.err))), 'unknown NCMD metric logged');
    await host.ncmd(GROUP, NODE, [{ name: 'Node Control/Rebirth', type: 'Int32', value: 1 }]);
    await waitFor(() => lines.some((l) => l.msg === 'Sparkplug command refused' && /must be the Boolean true/.test(String(l.err))), 'Rebirth of the wrong type logged');
    await host.raw(`spBv1.0/${GROUP}/DCMD/${NODE}/tsc-1`, Buffer.from([0x12, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    await waitFor(() => lines.some((l) => l.code === 'GW_ERR_SPARKPLUG_PAYLOAD' && l.type === 'DCMD'), 'malformed protobuf logged');
    await host.dcmd(GROUP, NODE, 'no-such-device', [{ name: 'plan', type: 'UInt16', value: 1 }]);
    await waitFor(() => lines.some((l) => l.msg === 'Sparkplug command refused' && /device 'no-such-device'/.test(String(l.err))), 'unknown device logged');
    t.equal(node.births, 2, 'no bad input caused a rebirth');
    const before = flood.live.length;
    await host.until(() => flood.live.length > before + 3, 'data keeps flowing after bad input');
    t.ok(gw.sparkplug!.stats().commandsRefused >= 8, 'refusals counted');

    // Devices down → DDEATH, after their last readings (reported STALE before the death).
    await sim.stop();
    await host.until(() => !flood.online && !tsc.online, 'DDEATH of both devices');
    t.equal(gw.sparkplug!.stats().readingsSkipped, 0, 'no reading of a dead device left behind');
    t.ok(node.online, 'the node stays online');
    t.equal(flood.current.get('level')?.properties.Quality?.value, 500, 'the last word on level before DDEATH: STALE');
    // The devices answer again (a new simulator on the same port): DBIRTH, then data.
    const again = new ModbusTcpSimulator(sim.devices, { port: sim.port, tickMs: 100 });
    await again.start();
    t.teardown(() => again.stop());
    const floodBirths = flood.births;
    await host.until(() => flood.online && flood.births === floodBirths + 1, 'DBIRTH of flood-1 when it answers again', 30_000);
    t.equal(node.births, 2, 'a device coming back does not rebirth the node');
    const after = flood.live.length;
    await host.until(() => flood.live.length > after, 'data after the DBIRTH');
    await gw.stop();
    await host.until(() => !node.online, 'NDEATH on a clean stop');
    t.same(node.deaths.map((d) => d.matched), [true], 'the NDEATH matches the NBIRTH bdSeq');
    t.same(host.violations, [], 'no conformance statement broken');
  });

}

t.test('northbound switched by reconfiguration: ioc/v1 → sparkplug → ioc/v1, one outbox', async (t) => {
  const port = await startAedes(t);
  const sim = await startSim(t);
  const host = await startHost(t, port);
  const dir = t.testdir();
  const base = gatewayConfig(dir, port, sim.port);
  const gw = await startTestGateway(t, base);
  await waitFor(() => gw.uplink.stats().readingsAcked > 20, 'ioc/v1 telemetry acknowledged');
  t.equal(gw.sparkplug, null, 'no Sparkplug node under ioc/v1');
  const { parseGatewayConfig } = await import('../../config.js');
  await gw.reconfigure(parseGatewayConfig(spConfig(dir, port, sim.port), '<test>'));
  const node = host.node(GROUP, NODE);
  await host.until(() => node.births === 1 && node.devices.get('flood-1')?.live.length, 'Sparkplug births and data after the switch');
  const acked = gw.uplink.stats().readingsAcked;
  await host.until(() => node.devices.get('flood-1')!.live.length > 10, 'more Sparkplug data');
  t.ok(gw.uplink.stats().readingsAcked - acked <= 1000, 'the uplink drains no new telemetry (at most batches it had reserved)');
  // A device disabled: a new birth sequence without it (aliases reassigned), same connection.
  const oneDevice = spConfig(dir, port, sim.port);
  (oneDevice.devices as Array<Record<string, unknown>>)[1]!.enabled = false;
  const dbirths = (): string[] => host.messages.filter((m) => m.type === 'DBIRTH').map((m) => m.device!);
  const before = dbirths().length;
  await gw.reconfigure(parseGatewayConfig(oneDevice, '<test>'));
  await host.until(() => node.births === 2 && dbirths().length > before, 'rebirth after the configuration change');
  t.same(dbirths().slice(before), ['flood-1'], 'the new birth has the enabled device only');
  t.equal(node.bdSeq, 0, 'same connection, same bdSeq');
  await gw.reconfigure(parseGatewayConfig(base, '<test>'));
  await host.until(() => !node.online, 'NDEATH when switched back');
  const again = gw.uplink.stats().readingsAcked;
  await waitFor(() => gw.uplink.stats().readingsAcked > again + 20, 'ioc/v1 telemetry again');
  t.equal(gw.sparkplug, null);
  t.same(host.violations, []);
});
