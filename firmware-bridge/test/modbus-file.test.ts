/**
 * Modbus FC 21 Write File Record (Modbus Application Protocol v1.1b3 §6.15):
 * PDU layout, the image laid over files of 10 000 records, and the flasher
 * against the simulated device — version read back, an exception mid-flash,
 * a connection dropped mid-flash, a device that rejects the image.
 */
import t, { type Test } from 'tap';
import { buildSimImage } from '../../scripts/sim/sim-firmware.js';
import { ModbusFileDeviceSim, type ModbusFileDeviceOptions } from '../../scripts/sim/modbus-file-device.js';
import { loadProfileDir, profileFirmware, type ModbusPoint, type ModbusProfile } from '../../device-profiles/index.js';
import {
  MAX_RECORDS_PER_REQUEST, MbapClient, confirmVersion, flashModbusFileRecords, parseWriteFileRecord, planFileRecords, readModbusPoint, versionMatches, writeFileRecordPdu,
} from '../index.js';
import path from 'node:path';

const profile = (await loadProfileDir(path.resolve(import.meta.dirname, '../../scripts/sim/firmware-profiles'))).get('sim-fc21-device') as ModbusProfile;
const point = (name: string): ModbusPoint => profile.points.find((p) => p.name === name)!;

async function device(t: Test, o: ModbusFileDeviceOptions = {}): Promise<{ sim: ModbusFileDeviceSim; ch: MbapClient }> {
  const sim = new ModbusFileDeviceSim(o);
  await sim.start();
  const ch = new MbapClient('127.0.0.1', sim.port);
  t.teardown(async () => {
    await ch.close();
    await sim.stop();
  });
  return { sim, ch };
}

t.test('FC 21 PDU: reference type 6, file, record, length, data; at most 253 bytes', async (t) => {
  const pdu = writeFileRecordPdu({ file: 4, record: 7, data: Buffer.from([0x06, 0xaf, 0x04, 0xbe, 0x10, 0x0d]) });
  // The example of §6.15: file 4, record 7, three registers 06AF 04BE 100D.
  t.same([...pdu], [0x15, 0x0d, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xaf, 0x04, 0xbe, 0x10, 0x0d]);
  const full = writeFileRecordPdu({ file: 1, record: 0, data: Buffer.alloc(MAX_RECORDS_PER_REQUEST * 2) });
  t.equal(full.length, 253, 'a full request fills the PDU');
  t.equal(full[1], 0xfb, 'request data length 0xFB');
  t.throws(() => writeFileRecordPdu({ file: 1, record: 0, data: Buffer.alloc(246) }), { code: 'FW_ERR_UNSUPPORTED' });
  t.throws(() => writeFileRecordPdu({ file: 1, record: 9999, data: Buffer.alloc(4) }), { message: /cross the end of file/ });
  t.same(parseWriteFileRecord(pdu), [{ file: 4, record: 7, data: Buffer.from([0x06, 0xaf, 0x04, 0xbe, 0x10, 0x0d]) }]);
});

t.test('an image is laid over files of 10 000 records, never crossing a file', async (t) => {
  const plan = planFileRecords(Buffer.alloc(45_001), 3);
  t.equal(plan[0]!.file, 3);
  t.ok(plan.every((w) => w.record + w.data.length / 2 <= 10_000));
  t.same([...new Set(plan.map((w) => w.file))], [3, 4, 5]);
  t.equal(plan.reduce((n, w) => n + w.data.length, 0), 45_002, 'odd length padded to whole registers');
  const cut = plan.find((w) => w.file === 3 && w.record + w.data.length / 2 === 10_000);
  t.ok(cut, 'the last request of file 3 ends exactly at record 9999');
  t.throws(() => planFileRecords(Buffer.alloc(100), 1, 123), { code: 'FW_ERR_UNSUPPORTED' });
  t.throws(() => planFileRecords(Buffer.alloc(30_000), 65_535), { message: /file numbers are 1..65535/ });
});

t.test('flash, commit and read the new version back', async (t) => {
  const { sim, ch } = await device(t);
  const fw = profileFirmware(profile)!;
  const image = buildSimImage('2.3.0', 60_001);
  const before = await readModbusPoint({ channel: ch, unitId: 1 }, point('fw_version'));
  t.equal(before, '1.0.0');
  const progress: number[] = [];
  const r = await flashModbusFileRecords(image, {
    channel: ch, unitId: 1, firstFile: fw.firstFile, recordsPerRequest: fw.recordsPerRequest, sizePoint: point('fw_size'), commitPoint: point('fw_commit'), commitValue: fw.commitValue,
    onProgress: (b) => progress.push(b),
  });
  t.equal(r.requests, Math.ceil(30_001 / 122) + 1, 'one extra request where file 1 ends');
  t.equal(progress.at(-1), 60_001);
  const v = await confirmVersion(() => readModbusPoint({ channel: ch, unitId: 1 }, point('fw_version')), { version: '2.3.0' }, { timeoutMs: 3000, intervalMs: 20 });
  t.equal(v, '2.3.0');
  t.same(sim.image, image, 'the device stored exactly the image');
  t.equal(await readModbusPoint({ channel: ch, unitId: 1 }, point('fw_code')), 0x0203);
  t.ok(versionMatches(0x0203, { version: '2.3.0', versionCode: 0x0203 }), 'numeric point against versionCode');
  t.notOk(versionMatches(0x0202, { version: '2.3.0', versionCode: 0x0203 }));
});

t.test('an exception mid-flash is final (no retry)', async (t) => {
  const { sim, ch } = await device(t, { failAtRequest: 20 });
  await t.rejects(flashModbusFileRecords(buildSimImage('2.4.0', 20_000), { channel: ch, unitId: 1, commitPoint: point('fw_commit') }), { code: 'FW_ERR_FLASH_REJECTED', message: /exception 4 \(server device failure\)/ });
  t.equal(sim.stats.fc21Requests, 20, 'stopped at the failing request');
  t.equal(sim.stats.commits, 0);
  t.equal(sim.version, '1.0.0');
});

t.test('a connection dropped mid-flash is retried a bounded number of times', async (t) => {
  const { sim, ch } = await device(t, { dropAtRequest: 5 });
  const r = await flashModbusFileRecords(buildSimImage('2.5.0', 5000), { channel: ch, unitId: 1, timeoutMs: 300, sizePoint: point('fw_size'), commitPoint: point('fw_commit') });
  t.equal(r.retries, 1, 'the dropped request went out again on a new connection');
  t.equal(sim.stats.connections, 2);
  await confirmVersion(() => readModbusPoint({ channel: ch, unitId: 1 }, point('fw_version')), { version: '2.5.0' }, { timeoutMs: 3000, intervalMs: 20 });
});

t.test('a device that never answers fails with FW_ERR_FLASH_TIMEOUT after its retries', async (t) => {
  const { sim, ch } = await device(t, { unitId: 9 }); // answers only unit 9: silence for unit 1
  await t.rejects(flashModbusFileRecords(buildSimImage('2.6.0', 1000), { channel: ch, unitId: 1, timeoutMs: 60, retries: 2 }), { code: 'FW_ERR_FLASH_TIMEOUT' });
  t.equal(sim.stats.fc21Requests, 0);
});

t.test('a rejected image leaves the old version: the confirmation fails', async (t) => {
  const { ch } = await device(t, { rejectImage: true });
  await flashModbusFileRecords(buildSimImage('2.7.0', 3000), { channel: ch, unitId: 1, sizePoint: point('fw_size'), commitPoint: point('fw_commit') });
  await t.rejects(confirmVersion(() => readModbusPoint({ channel: ch, unitId: 1 }, point('fw_version')), { version: '2.7.0' }, { timeoutMs: 300, intervalMs: 20 }), { code: 'FW_ERR_VERSION_MISMATCH', message: /read '1.0.0', expected '2.7.0'/ });
});
