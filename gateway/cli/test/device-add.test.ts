/**
 * `ioc-edge device add` on buses of each kind (issue 14.8): on an OPC UA or
 * serial-line bus there are no unit ids — none written, none mentioned, and
 * `--unit-id` refused with a reason; on a Modbus bus as before.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { captureIo } from '../../../test/support/capture-io.js';
import { deviceAdd } from '../device-add.js';

function configFile(dir: string): string {
  const file = path.join(dir, 'gateway.json');
  writeFileSync(file, JSON.stringify({
    gatewayId: 'gw-1', dataDir: path.join(dir, 'data'), hub: { url: 'mqtt://127.0.0.1:1883' },
    buses: [
      { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 502 },
      { id: 'cams', type: 'opcua', endpointUrl: 'opc.tcp://127.0.0.1:4840/UA/Camera' },
      { id: 'radar', type: 'serial-line', path: '/dev/ttyS1' },
    ],
    devices: [],
  }));
  return file;
}

t.test('OPC UA bus: no unit id written or mentioned; --unit-id refused', async (t) => {
  const file = configFile(t.testdir());
  const io = captureIo();
  t.equal(await deviceAdd.run(['--config', file, '--id', 'cam-1', '--bus', 'cams', '--profile', 'camera-health-opcua'], io), 0, io.errText());
  t.equal(io.text().split('\n')[0], `added device cam-1 (camera-health-opcua, on OPC UA bus cams) to ${file}`);
  t.notMatch(io.text().replace(file, 'FILE'), /unit/i, 'no talk of unit ids');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { devices: Record<string, unknown>[] };
  t.same(doc.devices, [{ id: 'cam-1', bus: 'cams', profile: 'camera-health-opcua' }], 'no "unitId" in the file');

  const refused = captureIo();
  t.equal(await deviceAdd.run(['--config', file, '--id', 'cam-2', '--bus', 'cams', '--profile', 'camera-health-opcua', '--unit-id', '3'], refused), 1);
  t.match(refused.errText(), /--unit-id: bus 'cams' is opcua, which has no unit ids; leave --unit-id out \(CONFIG_ERR_INVALID\)/);
});

t.test('serial-line bus: no unit id either; Modbus bus: unit id as before', async (t) => {
  const file = configFile(t.testdir());
  const line = captureIo();
  t.equal(await deviceAdd.run(['--config', file, '--id', 'radar-1', '--bus', 'radar', '--profile', 'water-level-radar'], line), 0, line.errText());
  t.match(line.text(), /\(water-level-radar, on serial-line bus radar\)/);
  const modbus = captureIo();
  t.equal(await deviceAdd.run(['--config', file, '--id', 'flood-1', '--bus', 'lan', '--profile', 'flood-level-sensor', '--unit-id', '4'], modbus), 0, modbus.errText());
  t.match(modbus.text(), /\(flood-level-sensor, unit 4 on bus lan\)/);
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { devices: Record<string, unknown>[] };
  t.same(doc.devices, [{ id: 'radar-1', bus: 'radar', profile: 'water-level-radar' }, { id: 'flood-1', bus: 'lan', profile: 'flood-level-sensor', unitId: 4 }]);
});

t.test('several devices of one profile on one bus in one command; ids and unit ids pair up', async (t) => {
  const file = configFile(t.testdir());
  const io = captureIo();
  t.equal(await deviceAdd.run(['--config', file, '--bus', 'lan', '--profile', 'eastron-sdm120', '--id', 'meter-1', '--unit-id', '1', '--id', 'meter-2', '--unit-id', '2'], io), 0, io.errText());
  t.match(io.text(), /added device meter-1 \(eastron-sdm120, unit 1 on bus lan\)[^\n]*\nadded device meter-2 \(eastron-sdm120, unit 2 on bus lan\)/);
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { devices: Record<string, unknown>[] };
  t.same(doc.devices.map((d) => [d.id, d.unitId]), [['meter-1', 1], ['meter-2', 2]]);
  const short = captureIo();
  t.equal(await deviceAdd.run(['--config', file, '--bus', 'lan', '--profile', 'eastron-sdm120', '--id', 'meter-3', '--id', 'meter-4', '--unit-id', '3'], short), 1);
  t.match(short.errText(), /2 devices \(--id\) need 2 --unit-id, one each in the same order; got 1/);
  const dup = captureIo();
  t.equal(await deviceAdd.run(['--config', file, '--bus', 'lan', '--profile', 'eastron-sdm120', '--id', 'meter-5', '--unit-id', '2'], dup), 1, 'a unit id already taken on the bus is refused');
  t.equal((JSON.parse(readFileSync(file, 'utf8')) as { devices: unknown[] }).devices.length, 2, 'file untouched by refused commands');
});
