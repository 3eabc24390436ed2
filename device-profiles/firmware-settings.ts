/**
 * The optional `firmware` section of a device profile (issue 7): which
 * flasher the gateway uses for this model and which point reports the
 * running version. `profile.schema.json` ($defs/firmwareSettings) is the
 * source of truth; {@link checkFirmware} is the second pass (points that
 * must exist and have the right kind).
 */
import type { ProfileProblem } from './check-profile.js';

/** Flashers a profile may name. */
export const FLASHERS = ['xmodem-crc', 'xmodem-1k', 'modbus-file-record'] as const;

/** One of {@link FLASHERS}. */
export type FlasherKind = (typeof FLASHERS)[number];

/** A profile's firmware settings, defaults applied. */
export interface FirmwareSettings {
  readonly flasher: FlasherKind;
  readonly versionPoint: string;
  /** XMODEM: bytes sent in application mode to enter the bootloader. */
  readonly enterBootloader?: string;
  readonly startTimeoutMs: number;
  readonly blockTimeoutMs: number;
  readonly maxRetries: number;
  readonly firstFile: number;
  readonly recordsPerRequest: number;
  readonly sizePoint?: string;
  readonly commitPoint?: string;
  readonly commitValue: number;
  readonly confirmTimeoutMs: number;
}

interface PointLike {
  readonly name: string;
  readonly table?: string;
}

/** The firmware settings of a loaded profile, or undefined when the model takes no firmware updates. */
export function profileFirmware(profile: object): FirmwareSettings | undefined {
  return (profile as { readonly firmware?: unknown }).firmware as FirmwareSettings | undefined;
}

/** Second-pass checks of the `firmware` section. */
export function checkFirmware(profile: { readonly protocol: string; readonly firmware?: unknown; readonly points: readonly PointLike[] }): ProfileProblem[] {
  const fw = profileFirmware(profile);
  if (!fw) return [];
  const out: ProfileProblem[] = [];
  const byName = new Map(profile.points.map((p) => [p.name, p]));
  if (!byName.has(fw.versionPoint)) out.push({ pointer: '/firmware/versionPoint', message: `no point named '${fw.versionPoint}'` });
  if (fw.flasher === 'modbus-file-record') {
    if (profile.protocol !== 'modbus') out.push({ pointer: '/firmware/flasher', message: `modbus-file-record needs a modbus profile, this one is ${profile.protocol}` });
    const vp = byName.get(fw.versionPoint);
    if (vp && profile.protocol === 'modbus' && vp.table !== 'holding' && vp.table !== 'input') out.push({ pointer: '/firmware/versionPoint', message: `version point '${fw.versionPoint}' must be a holding or input register point` });
    for (const key of ['sizePoint', 'commitPoint'] as const) {
      const name = fw[key];
      if (name === undefined) continue;
      const p = byName.get(name);
      if (!p) out.push({ pointer: `/firmware/${key}`, message: `no point named '${name}'` });
      else if (p.table !== 'holding') out.push({ pointer: `/firmware/${key}`, message: `point '${name}' must be a holding register point` });
    }
  } else if (fw.sizePoint !== undefined || fw.commitPoint !== undefined) {
    out.push({ pointer: '/firmware', message: `sizePoint and commitPoint belong to the modbus-file-record flasher, not ${fw.flasher}` });
  }
  return out;
}
