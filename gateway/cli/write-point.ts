/**
 * `ioc-edge write`: writes one point of a Modbus device through the same
 * code as the gateway's `writePoint` (profile checks: writable, type, range;
 * FC 5/6/15/16 as the profile's writeMode says).
 */
import { parseArgs } from 'node:util';
import { isIocError } from '../../contract/index.js';
import { silentLogger } from '../../lib/index.js';
import { DevicePoller } from '../southbound/device-poller.js';
import type { Command } from './command.js';
import { LINE_HELP, LINE_OPTIONS, modbusTransport, type LineValues } from './line-args.js';
import { resolveProfile } from './probe.js';

const HELP = `Usage: ioc-edge write --profile MODEL|FILE.json (--serial PATH | --tcp HOST:PORT | --rtu-tcp HOST:PORT) [--unit N] POINT VALUE

Writes one writable point; VALUE is a number, true/false, or text for string points.
The value is checked against the profile (type, min/max) before anything is sent.

${LINE_HELP}`;

/** "true"/"false" → boolean, numeric text → number, anything else stays text. */
export function parseValue(text: string): unknown {
  if (text === 'true' || text === 'false') return text === 'true';
  if (text.trim() !== '' && Number.isFinite(Number(text))) return Number(text);
  return text;
}

export const writePoint: Command = {
  name: 'write',
  summary: 'write one writable point of a Modbus device (value checked against the profile)',
  async run(args, { out, err }) {
    let parsed;
    try {
      parsed = parseArgs({ args, allowPositionals: true, options: { ...LINE_OPTIONS, profile: { type: 'string' }, 'profile-dir': { type: 'string' }, unit: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
    } catch (e) {
      err.write(`${(e as Error).message}\n\n${HELP}\n`);
      return 2;
    }
    const values = parsed.values as LineValues & { profile?: string; 'profile-dir'?: string; unit?: string; help?: boolean };
    if (values.help) {
      out.write(`${HELP}\n`);
      return 0;
    }
    const [point, text] = parsed.positionals;
    if (!values.profile || point === undefined || text === undefined || parsed.positionals.length !== 2) {
      err.write(`${HELP}\n`);
      return 2;
    }
    try {
      const profile = await resolveProfile(values.profile, values['profile-dir']);
      if (profile.protocol !== 'modbus') throw new Error(`ioc-edge write handles Modbus profiles; ${profile.model} is ${profile.protocol}`);
      const unit = Number(values.unit ?? 1);
      const transport = await modbusTransport(values, { timeoutMs: 500 });
      await transport.start();
      const device = new DevicePoller({
        device: { id: 'cli', bus: 'cli', profile: profile.model, unitId: unit, enabled: true }, profile, transport, logger: silentLogger(),
        onReadings: () => undefined, onEvent: () => undefined,
      });
      try {
        await device.write(point, parseValue(text));
      } finally {
        await transport.stop();
      }
      out.write(`wrote ${point} = ${text} to unit ${unit} (${profile.model})\n`);
      return 0;
    } catch (e) {
      err.write(`ioc-edge write: ${isIocError(e) || e instanceof Error ? e.message : String(e)}\n`);
      return isIocError(e) && (e.code === 'GW_ERR_WRITE_REFUSED' || e.code === 'GW_ERR_WRITE_VALUE') ? 1 : 2;
    }
  },
};
