/** The optional `firmware` section of device profiles (issue 7): schema and second-pass checks. */
import t from 'tap';
import path from 'node:path';
import { loadProfileDir, profileFirmware, validateProfile } from '../index.js';

const modbus = {
  model: 'm', manufacturer: 'x', protocol: 'modbus',
  points: [
    { name: 'fw_version', table: 'input', address: 10, type: 'string', length: 8 },
    { name: 'fw_commit', table: 'holding', address: 20, type: 'uint16', writable: true },
    { name: 'coil', table: 'coil', address: 0, type: 'bool' },
  ],
};

t.test('a valid firmware section gets its defaults', async (t) => {
  const p = validateProfile({ ...modbus, firmware: { flasher: 'modbus-file-record', versionPoint: 'fw_version', commitPoint: 'fw_commit' } }, 'm.json');
  const fw = profileFirmware(p)!;
  t.equal(fw.flasher, 'modbus-file-record');
  t.equal(fw.firstFile, 1);
  t.equal(fw.recordsPerRequest, 122);
  t.equal(fw.commitValue, 1);
  t.equal(profileFirmware(validateProfile(modbus, 'm.json')), undefined, 'absent: no firmware updates for the model');
});

t.test('bad firmware sections are refused with a pointer', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ flasher: 'ymodem', versionPoint: 'fw_version' }, /\/firmware\/flasher/],
    [{ flasher: 'xmodem-1k' }, /\/firmware: must have required property 'versionPoint'/],
    [{ flasher: 'modbus-file-record', versionPoint: 'nope' }, /\/firmware\/versionPoint: no point named 'nope'/],
    [{ flasher: 'modbus-file-record', versionPoint: 'fw_version', commitPoint: 'coil' }, /\/firmware\/commitPoint: point 'coil' must be a holding register point/],
    [{ flasher: 'modbus-file-record', versionPoint: 'fw_version', recordsPerRequest: 123 }, /\/firmware\/recordsPerRequest/],
    [{ flasher: 'xmodem-crc', versionPoint: 'fw_version', commitPoint: 'fw_commit' }, /sizePoint and commitPoint belong to the modbus-file-record flasher/],
  ];
  for (const [firmware, re] of cases) t.throws(() => validateProfile({ ...modbus, firmware }, 'm.json'), { code: 'PROFILE_ERR_INVALID', message: re });
  const line = {
    model: 'l', manufacturer: 'x', protocol: 'serial-line',
    serialLine: { framing: { mode: 'delimiter', delimiter: '\n' }, checksum: { type: 'none' }, fields: { mode: 'delimited', separator: ',' } },
    points: [{ name: 'v', field: 0, type: 'string' }],
  };
  t.throws(() => validateProfile({ ...line, firmware: { flasher: 'modbus-file-record', versionPoint: 'v' } }, 'l.json'), { message: /modbus-file-record needs a modbus profile/ });
  t.ok(validateProfile({ ...line, firmware: { flasher: 'xmodem-1k', versionPoint: 'v', enterBootloader: 'BOOT\r\n' } }, 'l.json'));
});

t.test('the simulators’ profiles load', async (t) => {
  const dir = path.resolve(import.meta.dirname, '../../scripts/sim/firmware-profiles');
  const all = await loadProfileDir(dir);
  t.same([...all.keys()].sort(), ['sim-fc21-device', 'sim-xmodem-sensor']);
  t.equal(profileFirmware(all.get('sim-xmodem-sensor')!)?.flasher, 'xmodem-1k');
});
