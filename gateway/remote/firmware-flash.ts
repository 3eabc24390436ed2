/**
 * Flashing one field device with the flasher its profile names (issue 7),
 * on the line its configuration puts it on, then confirming the new version:
 *
 * - `xmodem-crc` / `xmodem-1k`: the device sits alone on a `serial-line`
 *   bus. Its driver is stopped so the port is free, the port is opened with
 *   the bus's settings, the profile's `enterBootloader` bytes are sent, the
 *   image goes out with XMODEM (firmware-bridge/xmodem.ts), the port is
 *   closed and the driver started again; the version is the next reading of
 *   the version point taken after the flash.
 * - `modbus-file-record`: the device is on a `modbus-tcp` bus. A connection
 *   of its own carries FC 21 file records, the size and commit points, then
 *   reads the version point until it names the new version (polling goes on
 *   meanwhile on the bus's own connection).
 *
 * Other combinations (XMODEM on a shared RTU line, FC 21 over RTU) are
 * refused up front with FW_ERR_UNSUPPORTED, before anything is downloaded.
 */
import { IocError, type FirmwareManifest, type Reading, type ReadingValue } from '../../contract/index.js';
import { byteString, isModbusProfile, profileFirmware, type DeviceProfile, type FirmwareSettings, type ModbusPoint } from '../../device-profiles/index.js';
import { MbapClient, confirmVersion, flashModbusFileRecords, readModbusPoint, xmodemSend } from '../../firmware-bridge/index.js';
import type { Logger } from '../../lib/index.js';
import type { BusConfig, DeviceConfig, GatewayConfig } from '../config.js';
import type { DeviceDriver } from '../southbound/device-state.js';
import type { SerialPortFactory } from '../southbound/drivers/byte-link.js';

/** What flashing needs from the running gateway. */
export interface FlashDeps {
  config: () => GatewayConfig;
  profiles: () => ReadonlyMap<string, DeviceProfile>;
  openPort: SerialPortFactory;
  /** The running driver of a device (stopped while its port carries XMODEM). */
  driver: (deviceId: string) => DeviceDriver | undefined;
  /** The latest reading of a device's point, as the drivers reported it. */
  latest: (deviceId: string, point: string) => Reading | undefined;
  logger: Logger;
}

/** A device that can take a firmware update, and how. */
export interface FlashPlan {
  device: DeviceConfig;
  bus: BusConfig;
  profile: DeviceProfile;
  fw: FirmwareSettings;
}

/**
 * Decides how `deviceId` is flashed. Throws FW_ERR_UNSUPPORTED when the
 * device is unknown, its profile names no flasher, or its line cannot carry
 * the flasher; the caller fails the job with result 6 before downloading.
 */
export function planFlash(deps: Pick<FlashDeps, 'config' | 'profiles'>, deviceId: string): FlashPlan {
  const config = deps.config();
  const device = config.devices.find((d) => d.id === deviceId && d.enabled);
  if (!device) throw new IocError('FW_ERR_UNSUPPORTED', `no enabled device '${deviceId}' on this gateway`, { context: { device: deviceId } });
  const profile = deps.profiles().get(device.profile);
  const bus = config.buses.find((b) => b.id === device.bus);
  if (!profile || !bus) throw new IocError('FW_ERR_UNSUPPORTED', `device '${deviceId}' has no loaded profile or bus`, { context: { device: deviceId } });
  const fw = profileFirmware(profile);
  if (!fw) throw new IocError('FW_ERR_UNSUPPORTED', `profile '${profile.model}' of device '${deviceId}' names no firmware flasher`, { context: { device: deviceId } });
  if (fw.flasher === 'modbus-file-record' && bus.type !== 'modbus-tcp') {
    throw new IocError('FW_ERR_UNSUPPORTED', `device '${deviceId}' is on a ${bus.type} bus; FC 21 firmware writes are supported on modbus-tcp buses`, { context: { device: deviceId } });
  }
  if (fw.flasher !== 'modbus-file-record' && bus.type !== 'serial-line') {
    throw new IocError('FW_ERR_UNSUPPORTED', `device '${deviceId}' is on a ${bus.type} bus; an XMODEM bootloader needs the device alone on a serial-line bus`, { context: { device: deviceId } });
  }
  return { device, bus, profile, fw };
}

/** Options of one flash. */
export interface FlashOptions {
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
}

/**
 * Flashes `image` (already verified against `manifest`) into the device of
 * `plan` and confirms the version. Resolves with the version read back;
 * rejects with the flasher's error or FW_ERR_VERSION_MISMATCH.
 */
export async function flashDevice(deps: FlashDeps, plan: FlashPlan, image: Buffer, manifest: FirmwareManifest, o: FlashOptions = {}): Promise<string> {
  return plan.fw.flasher === 'modbus-file-record' ? flashModbus(deps, plan, image, manifest, o) : flashXmodem(deps, plan, image, manifest, o);
}

async function flashXmodem(deps: FlashDeps, plan: FlashPlan, image: Buffer, manifest: FirmwareManifest, o: FlashOptions): Promise<string> {
  const { device, fw } = plan;
  const bus = plan.bus as Extract<BusConfig, { type: 'serial-line' }>;
  const log = deps.logger.child({ device: device.id });
  const driver = deps.driver(device.id);
  await driver?.stop();
  let flashedAt = 0;
  try {
    const link = await deps.openPort({ path: bus.path, baudRate: bus.baudRate, parity: bus.parity, dataBits: bus.dataBits, stopBits: bus.stopBits });
    try {
      if (fw.enterBootloader) link.write(byteString(fw.enterBootloader));
      const r = await xmodemSend(link, image, {
        mode: fw.flasher as 'xmodem-crc' | 'xmodem-1k', startTimeoutMs: fw.startTimeoutMs, blockTimeoutMs: fw.blockTimeoutMs, maxRetries: fw.maxRetries,
        ...(o.signal ? { signal: o.signal } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      });
      log.info({ blocks: r.blocks, retransmits: r.retransmits, ms: r.durationMs, crc: r.crc }, 'XMODEM transfer done');
    } finally {
      await link.close();
    }
    flashedAt = Date.now();
  } finally {
    // Polling resumes whatever happened: the device's readings are how the new version shows.
    await driver?.start().catch((err: unknown) => log.error({ err }, 'driver did not start again after flashing'));
  }
  const read = async (): Promise<ReadingValue | undefined> => {
    const r = deps.latest(device.id, fw.versionPoint);
    return r && r.ts >= flashedAt && r.quality === 'good' ? r.value : undefined;
  };
  return confirmVersion(read, manifest, { timeoutMs: fw.confirmTimeoutMs, intervalMs: 100, ...(o.signal ? { signal: o.signal } : {}) });
}

async function flashModbus(deps: FlashDeps, plan: FlashPlan, image: Buffer, manifest: FirmwareManifest, o: FlashOptions): Promise<string> {
  const { device, fw, profile } = plan;
  const bus = plan.bus as Extract<BusConfig, { type: 'modbus-tcp' }>;
  if (!isModbusProfile(profile)) throw new IocError('FW_ERR_UNSUPPORTED', `profile '${profile.model}' is not a Modbus profile`);
  const point = (name: string | undefined): ModbusPoint | undefined => (name === undefined ? undefined : profile.points.find((p) => p.name === name));
  const channel = new MbapClient(bus.host, bus.port, bus.timeoutMs);
  const timeoutMs = Math.max(fw.blockTimeoutMs, device.timeoutMs ?? bus.timeoutMs);
  try {
    const r = await flashModbusFileRecords(image, {
      channel, unitId: device.unitId, firstFile: fw.firstFile, recordsPerRequest: fw.recordsPerRequest, timeoutMs, retries: Math.min(fw.maxRetries, 10),
      commitValue: fw.commitValue, ...(point(fw.sizePoint) ? { sizePoint: point(fw.sizePoint)! } : {}), ...(point(fw.commitPoint) ? { commitPoint: point(fw.commitPoint)! } : {}),
      ...(o.signal ? { signal: o.signal } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
    deps.logger.info({ device: device.id, requests: r.requests, retries: r.retries, ms: r.durationMs }, 'FC 21 transfer done');
    const vp = point(fw.versionPoint)!;
    return await confirmVersion(() => readModbusPoint({ channel, unitId: device.unitId, timeoutMs }, vp), manifest, { timeoutMs: fw.confirmTimeoutMs, intervalMs: 250, ...(o.signal ? { signal: o.signal } : {}) });
  } finally {
    await channel.close();
  }
}
