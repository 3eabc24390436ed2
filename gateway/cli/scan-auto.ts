/**
 * `ioc-edge scan --serial PORT --auto`: commissioning of an RS-485 line whose
 * serial settings are not known. Tries the usual baud rates (9600, 19200,
 * 38400, 57600, 115200, 4800, 2400) with each parity (none, even, odd) —
 * the setting given on the command line (or Modbus's default 9600 8E1) first
 * — asking a few unit ids at each, stops at the first setting where a device
 * answers, and lists the devices there. Where nothing answers it tells the
 * usual wiring faults apart by what came back over all settings:
 *
 * - no byte at all → power, the A/B pair, termination;
 * - bytes, but never a frame that passes its CRC → A and B swapped, noise,
 *   or a baud rate outside the list;
 * - answers at another setting than the configured one → names it.
 *
 * The configured setting is asked up to three times per unit, and asked again
 * before another setting is recommended: a lost reply must not make the
 * technician change a bus that is set right.
 *
 * One request at a time (RTU has no transaction ids). The RTU transport is the
 * gateway's own, so what the technician sees is what the gateway will see.
 */
import type { ModbusTable } from '../../device-profiles/index.js';
import { isIocError } from '../../contract/index.js';
import type { SerialPortFactory } from '../southbound/drivers/byte-link.js';
import type { ModbusRtuTransport } from '../southbound/drivers/modbus-rtu.js';
import { modbusTransport, serialSettings, type LineValues } from './line-args.js';
import { createProgress, type MaybeTty } from './progress.js';

/** The baud rates tried, most common first. */
export const AUTO_BAUD_RATES = [9600, 19200, 38400, 57600, 115200, 4800, 2400] as const;
/** The parities tried at each baud rate. */
export const AUTO_PARITIES = ['none', 'even', 'odd'] as const;

type Parity = (typeof AUTO_PARITIES)[number];

/** One serial setting. */
export interface AutoSetting {
  baudRate: number;
  parity: Parity;
}

/** What one setting gave. */
interface Tried {
  setting: AutoSetting;
  /** Units that answered (or answered with an exception). */
  answered: number[];
  /** Bytes received that were not a valid reply (CRC errors, short frames, noise). */
  badBytes: number;
  /** Valid frames received. */
  frames: number;
}

/** `9600 8E1` */
export function describeSetting(s: AutoSetting, dataBits = 8, stopBits = 1): string {
  return `${s.baudRate} ${dataBits}${s.parity[0]?.toUpperCase()}${stopBits}`;
}

/** The settings in the order tried: the configured one first, then the list. */
export function autoSettings(configured: AutoSetting): AutoSetting[] {
  const all: AutoSetting[] = [configured];
  for (const baudRate of AUTO_BAUD_RATES) {
    for (const parity of AUTO_PARITIES) {
      if (baudRate !== configured.baudRate || parity !== configured.parity) all.push({ baudRate, parity });
    }
  }
  return all;
}

/**
 * Runs the automatic scan. `searchUnits` are asked at each setting (stop at
 * the first that answers); `units` are scanned at the setting found.
 * @returns exit code: 0 found at the configured setting, 1 nothing found,
 *   3 found at another setting than the configured one.
 */
export async function scanSerialAuto(
  v: LineValues,
  searchUnits: readonly number[],
  units: readonly number[],
  what: { table: ModbusTable; address: number },
  io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream },
  openPort?: SerialPortFactory,
): Promise<number> {
  const base = serialSettings(v);
  const configured: AutoSetting = { baudRate: base.baudRate, parity: base.parity };
  const settings = autoSettings(configured);
  const tried: Tried[] = [];
  const progress = createProgress(io.err as MaybeTty, settings.length, 'settings', { eta: true });
  let hit: Tried | null = null;
  try {
    for (const setting of settings) {
      progress.update(tried.length, `trying ${describeSetting(setting, base.dataBits, base.stopBits)}`);
      const result = await trySetting(v, setting, searchUnits, what, openPort, true, setting === configured ? CONFIGURED_RETRIES : 0);
      tried.push(result);
      if (result.answered.length > 0) {
        hit = result;
        break;
      }
    }
    progress.update(settings.length);
  } finally {
    progress.end();
  }
  const path = v.serial as string;
  const name = (s: AutoSetting): string => describeSetting(s, base.dataBits, base.stopBits);
  if (!hit) {
    const bad = tried.reduce((n, r) => n + r.badBytes, 0);
    io.out.write(`no device answered on ${path} at any of ${tried.length} settings (${AUTO_BAUD_RATES.join(', ')} baud × parity ${AUTO_PARITIES.join('/')}; unit ids ${rangeText(searchUnits)})\n`);
    if (bad === 0) {
      io.out.write('no bytes at all came back at any setting: check the device has power, the A/B (D+/D-) pair reaches it, and the line is terminated (120 ohm at both ends); the adapter\'s RX LED should blink when a device answers\n');
    } else {
      io.out.write('bytes came back but never a reply that passes its CRC, at every setting: A and B are probably swapped (swap them), or the line is noisy (shield, ground, termination), or the device uses a baud rate outside this list\n');
    }
    return 1;
  }
  // Found at another setting: before telling the technician to change the bus, the configured setting is asked
  // once more, for the units that answered (a line that drops frames now and then can answer at both).
  if (hit.setting !== configured) {
    const again = await trySetting(v, configured, hit.answered, what, openPort, true, CONFIGURED_RETRIES);
    if (again.answered.length > 0) hit = again;
  }
  // Scan the whole range at the setting found (without a range, at another setting: its units again, so the
  // port is left at the setting found rather than at the configured one just asked).
  const scanUnits = units.length > 0 ? units : hit.setting !== configured ? hit.answered : [];
  const full = scanUnits.length > 0 ? await trySetting(v, hit.setting, scanUnits, what, openPort, false) : hit;
  const found = [...new Set([...hit.answered, ...full.answered])].sort((a, b) => a - b);
  io.out.write(`found ${found.length} device${found.length === 1 ? '' : 's'} on ${path} at ${name(hit.setting)}: unit${found.length === 1 ? '' : 's'} ${found.join(', ')}\n`);
  if (hit.setting.baudRate === configured.baudRate && hit.setting.parity === configured.parity) {
    io.out.write(`this is the configured setting (${name(configured)})\n`);
    return 0;
  }
  io.out.write(`answers at ${name(hit.setting)}, not at the configured ${name(configured)}: set the bus to baudRate ${hit.setting.baudRate}, parity ${hit.setting.parity} (or change the device's own setting)\n`);
  return 3;
}

/** Retries per unit at the configured setting (the other settings get none: 21 of them would take too long). */
const CONFIGURED_RETRIES = 2;

/** Asks `units` at one setting, each up to 1 + `retries` times; `firstOnly` stops at the first answer. */
async function trySetting(v: LineValues, setting: AutoSetting, units: readonly number[], what: { table: ModbusTable; address: number }, openPort: SerialPortFactory | undefined, firstOnly: boolean, retries = 0): Promise<Tried> {
  const transport = (await modbusTransport({ ...v, baud: String(setting.baudRate), parity: setting.parity }, { timeoutMs: 100, ...(openPort ? { openPort } : {}) })) as ModbusRtuTransport;
  await transport.start();
  const answered: number[] = [];
  try {
    for (const unit of units) {
      try {
        await transport.read(unit, what.table, what.address, 1, { retries });
        answered.push(unit);
      } catch (e) {
        const code = isIocError(e) ? e.code : '';
        if (code === 'GW_ERR_MODBUS_EXCEPTION') answered.push(unit);
        else if (code === 'GW_ERR_SERIAL_OPEN' || code === 'GW_ERR_SERIAL_PORT_GONE') throw e;
      }
      if (firstOnly && answered.length > 0) break;
    }
  } finally {
    await transport.stop();
  }
  const s = transport.stats;
  return { setting, answered, badBytes: s.noiseBytes + s.crcErrors + s.shortFrames + s.wrongUnit, frames: s.frames };
}

function rangeText(units: readonly number[]): string {
  if (units.length === 0) return 'none';
  const first = units[0] as number;
  const last = units[units.length - 1] as number;
  return units.length === last - first + 1 ? (first === last ? `${first}` : `${first}-${last}`) : units.join(',');
}
