/**
 * ioc-edge device profiles: declarative JSON descriptions of device models
 * (`<model>.json`, checked against `profile.schema.json`), their loader, and
 * the pure code that plans Modbus reads and turns registers into engineering
 * values. Of ours it imports only `../contract` (IocError, ReadingValue).
 */
import { fileURLToPath } from 'node:url';

export * from './types.js';
export { checkAlarms, type PointAlarm } from './alarm.js';
export { FLASHERS, checkFirmware, profileFirmware, type FirmwareSettings, type FlasherKind } from './firmware-settings.js';
export { registerCount, type PointLayout } from './register-count.js';
export type { ProfileProblem } from './check-profile.js';
export { findProfile, loadProfileDir, loadProfileFile, profileSchema, validateProfile } from './loader.js';
export { decodeBits, decodeRegisters, encodeValue } from './decode.js';
export { decodeResponse, extractPoint, planReads, type ReadEntry, type ReadLimits, type ReadRequest } from './read-plan.js';
export { checksumSize } from './check-other-profiles.js';
export { LineFramer, byteString, type FramerStats } from './line-framer.js';
export { checkLineFrame, decodeLine, lineChecksum, printable, type LineValue } from './line-decode.js';
export { coerceOpcuaValue } from './opcua-value.js';

/** Absolute path of this folder, where the shipped profiles live (`loadProfileDir(PROFILES_DIR)`). */
export const PROFILES_DIR: string = fileURLToPath(new URL('.', import.meta.url));
