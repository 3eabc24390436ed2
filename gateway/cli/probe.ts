/**
 * `ioc-edge probe`: reads a device once with a profile and prints a table of
 * decoded values beside the raw data they came from — registers for Modbus,
 * the received frame for serial-line sensors, the variant for OPC UA — so a
 * technician can check a profile against real hardware before committing it
 * to a gateway's configuration.
 */
import { parseArgs } from 'node:util';
import { isIocError } from '../../contract/index.js';
import {
  LineFramer, byteString, decodeLine, extractPoint, findProfile, loadProfileDir, loadProfileFile, planReads, printable, decodeResponse,
  type DeviceProfile, type ModbusProfile, type SerialLineProfile,
} from '../../device-profiles/index.js';
import { openSerialPort } from '../southbound/drivers/byte-link.js';
import { loadProfiles } from '../gateway.js';
import type { Command } from './command.js';
import { LINE_HELP, LINE_OPTIONS, lineKind, modbusTransport, serialSettings, type LineValues } from './line-args.js';
import { printTable } from './table.js';

const HELP = `Usage: ioc-edge probe --profile MODEL|FILE.json (--serial PATH | --tcp HOST:PORT | --rtu-tcp HOST:PORT | --opcua URL) [options]

Reads every point of the profile once and prints value, unit and raw data.
  --profile MODEL       a shipped model (see device-profiles/) or a profile file
  --profile-dir DIR     also look for models in DIR
  --unit N              Modbus unit id (default 1)
  --listen MS           serial-line sensors: how long to listen (default 3000)

${LINE_HELP}`;

/** Finds a profile by model name (shipped + extra folder) or file path. */
export async function resolveProfile(spec: string, dir?: string): Promise<DeviceProfile> {
  if (spec.endsWith('.json') || spec.includes('/')) return loadProfileFile(spec);
  const profiles = await loadProfiles();
  if (dir) for (const [k, p] of await loadProfileDir(dir)) profiles.set(k, p);
  return findProfile(profiles, spec);
}

const hexWords = (words: readonly (number | boolean)[]): string => words.map((w) => (typeof w === 'boolean' ? (w ? '1' : '0') : w.toString(16).padStart(4, '0'))).join(' ');

export const probe: Command = {
  name: 'probe',
  summary: 'read a device once with a profile: decoded values beside raw registers/frames',
  async run(args, { out, err }) {
    let values: LineValues & { profile?: string; 'profile-dir'?: string; unit?: string; listen?: string; help?: boolean };
    try {
      values = parseArgs({ args, options: { ...LINE_OPTIONS, profile: { type: 'string' }, 'profile-dir': { type: 'string' }, unit: { type: 'string' }, listen: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }).values;
    } catch (e) {
      err.write(`${(e as Error).message}\n\n${HELP}\n`);
      return 2;
    }
    if (values.help || !values.profile) {
      (values.help ? out : err).write(`${HELP}\n`);
      return values.help ? 0 : 2;
    }
    try {
      const profile = await resolveProfile(values.profile, values['profile-dir']);
      const kind = lineKind(values);
      if (profile.protocol === 'opcua') {
        if (kind !== 'opcua') throw new Error(`profile ${profile.model} is OPC UA: use --opcua URL`);
        const { probeOpcua } = await import('./opcua-tools.js');
        return await probeOpcua(values, profile, { out, err });
      }
      if (profile.protocol === 'serial-line') {
        if (kind !== 'serial') throw new Error(`profile ${profile.model} is a serial line sensor: use --serial PATH`);
        return await probeLine(values, profile, Number(values.listen ?? 3000), out);
      }
      if (kind === 'opcua') throw new Error(`profile ${profile.model} is Modbus: use --serial, --tcp or --rtu-tcp`);
      const unit = Number(values.unit ?? 1);
      if (!Number.isInteger(unit) || unit < 0 || unit > 255) throw new Error(`--unit: '${values.unit}' is not 0..255`);
      return await probeModbus(values, profile, unit, out);
    } catch (e) {
      err.write(`ioc-edge probe: ${isIocError(e) || e instanceof Error ? e.message : String(e)}\n`);
      return 2;
    }
  },
};

async function probeModbus(v: LineValues, profile: ModbusProfile, unit: number, out: NodeJS.WritableStream): Promise<number> {
  const transport = await modbusTransport(v, { timeoutMs: 500 });
  await transport.start();
  const rows: string[][] = [];
  let failed = 0;
  try {
    for (const req of planReads(profile.points, profile.modbus)) {
      let data: number[] | boolean[];
      try {
        data = await transport.read(unit, req.table, req.address, req.count, { retries: 1 });
      } catch (e) {
        const code = isIocError(e) ? e.code : 'error';
        if (code === 'GW_ERR_MODBUS_CONNECT' || code === 'GW_ERR_SERIAL_OPEN') throw e;
        for (const { point } of req.points) rows.push([point.name, `(${code})`, point.unit ?? '', point.table, String(point.address), '']);
        failed += req.points.length;
        continue;
      }
      const decoded = new Map<string, unknown>();
      try {
        for (const { point, value } of decodeResponse(req, data)) decoded.set(point.name, value);
      } catch {
        // shown per point below
      }
      for (const entry of req.points) {
        const p = entry.point;
        const raw = extractPoint<number | boolean>(req, data, entry);
        const value = decoded.has(p.name) ? JSON.stringify(decoded.get(p.name)) : '(GW_ERR_DECODE)';
        rows.push([p.name, value, p.unit ?? '', p.table, p.bit === undefined ? String(p.address) : `${p.address}.${p.bit}`, hexWords(raw)]);
      }
    }
  } finally {
    await transport.stop();
  }
  printTable(out, ['point', 'value', 'unit', 'table', 'address', 'raw'], rows);
  out.write(`${profile.points.length - failed}/${profile.points.length} points read from unit ${unit} with profile ${profile.model}\n`);
  return failed === 0 ? 0 : 1;
}

async function probeLine(v: LineValues, profile: SerialLineProfile, listenMs: number, out: NodeJS.WritableStream): Promise<number> {
  const link = await openSerialPort({ path: v.serial as string, ...serialSettings(v, { parity: 'none' }) });
  const framer = new LineFramer(profile.serialLine.framing, profile.serialLine.maxFrameBytes);
  const latest = new Map<string, { value: string; quality: string; frame: string }>();
  const counts = { frames: 0, bad: 0 };
  let lastBad = '';
  link.on('data', (chunk: Buffer) => {
    for (const frame of framer.push(chunk)) {
      counts.frames++;
      try {
        for (const r of decodeLine(profile, frame)) latest.set(r.point.name, { value: r.error ? `(${r.error})` : JSON.stringify(r.value), quality: r.quality, frame: printable(frame) });
      } catch (e) {
        counts.bad++;
        lastBad = isIocError(e) ? `${e.code}: ${printable(frame)}` : String(e);
      }
    }
  });
  const request = profile.serialLine.request;
  const ask = request === undefined ? null : setInterval(() => link.write(byteString(request)), Math.min(profile.pollIntervalMs, listenMs));
  if (request !== undefined) link.write(byteString(request));
  const end = Date.now() + listenMs;
  while (Date.now() < end && latest.size < profile.points.length) await new Promise((r) => setTimeout(r, 20));
  if (ask) clearInterval(ask);
  await link.close();
  const rows = profile.points.map((p) => {
    const l = latest.get(p.name);
    return [p.name, l?.value ?? '(no frame)', p.unit ?? '', l?.quality ?? '', String(p.field), l?.frame ?? ''];
  });
  printTable(out, ['point', 'value', 'unit', 'quality', 'field', 'frame'], rows);
  out.write(`${counts.frames} frames in ${Math.round(listenMs / 1000)} s or less, ${counts.bad} rejected${lastBad ? ` (last: ${lastBad})` : ''}; ${framer.stats.noiseBytes} noise bytes\n`);
  return latest.size === profile.points.length ? 0 : 1;
}
