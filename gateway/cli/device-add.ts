/**
 * `ioc-edge device add`: adds a field device to the gateway's configuration
 * file, after checking it exactly as the gateway will (schema, known bus and
 * profile, free bus address). The gateway reports its devices to the hub in
 * its status, so once it runs with the new configuration the device appears
 * in the hub's registry (`GET /api/v1/devices`).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { IocError, isIocError } from '../../contract/index.js';
import { parseGatewayConfig } from '../config.js';
import { loadProfiles } from '../gateway.js';
import type { Command } from './command.js';

const HELP = `Usage: ioc-edge device add --config FILE --id ID --bus BUS --profile MODEL [options]

Adds a field device to the gateway configuration FILE. The file is checked
as the gateway checks it (known bus and profile, unit id free on the bus)
before it is replaced. Restart the gateway to poll the device; it then
reports the device to the hub's registry.

  --id ID          device id, unique on this gateway; repeat it (with one --unit-id
                   each) to add several devices of one profile on one bus at once
  --bus BUS        id of a bus in the configuration
  --profile MODEL  device profile model ('ioc-edge profile validate' checks custom ones)
  --unit-id N      Modbus unit id / slave address (default 1; Modbus buses only)
  --poll-ms N      poll interval, overriding the profile's
  --disabled       add it switched off`;

export const deviceAdd: Command = {
  name: 'device add',
  summary: 'add a field device to the gateway configuration (checked first)',
  async run(args, { out, err }) {
    let v;
    try {
      v = parseArgs({
        args,
        options: {
          config: { type: 'string', short: 'c' }, id: { type: 'string', multiple: true }, bus: { type: 'string' }, profile: { type: 'string' },
          'unit-id': { type: 'string', multiple: true }, 'poll-ms': { type: 'string' }, disabled: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        },
      }).values;
    } catch (e) {
      err.write(`${(e as Error).message}\n${HELP}\n`);
      return 2;
    }
    if (v.help) {
      out.write(`${HELP}\n`);
      return 0;
    }
    const missing = (['config', 'id', 'bus', 'profile'] as const).filter((k) => !v[k] || (Array.isArray(v[k]) && v[k].length === 0)).map((k) => `--${k}`);
    if (missing.length > 0) {
      err.write(`missing ${missing.join(', ')}\n${HELP}\n`);
      return 2;
    }
    const file = v.config!;
    try {
      const int = (name: string, s: string | undefined): number | undefined => {
        if (s === undefined) return undefined;
        const n = Number(s);
        if (!Number.isInteger(n)) throw new IocError('CONFIG_ERR_INVALID', `--${name}: '${s}' is not an integer`);
        return n;
      };
      let doc: { devices?: unknown[]; profileDirs?: string[] };
      try {
        doc = JSON.parse(await readFile(file, 'utf8')) as typeof doc;
      } catch (e) {
        throw new IocError('CONFIG_ERR_READ', `cannot read gateway configuration ${file}: ${(e as Error).message}`, { cause: e, context: { file } });
      }
      // Unit ids belong to Modbus buses only: an OPC UA server or a serial-line port has none (issue 14.8).
      const busType = (Array.isArray((doc as { buses?: unknown }).buses) ? ((doc as { buses: Array<{ id?: unknown; type?: unknown }> }).buses.find((b) => b?.id === v.bus)?.type) : undefined);
      const modbus = busType === undefined || busType === 'modbus-tcp' || busType === 'modbus-rtu' || busType === 'modbus-rtu-tcp';
      const ids = v.id!;
      const unitArgs = v['unit-id'] ?? [];
      if (!modbus && unitArgs.length > 0) throw new IocError('CONFIG_ERR_INVALID', `--unit-id: bus '${v.bus}' is ${String(busType)}, which has no unit ids; leave --unit-id out`);
      if (modbus && ids.length > 1 && unitArgs.length !== ids.length) throw new IocError('CONFIG_ERR_INVALID', `${ids.length} devices (--id) need ${ids.length} --unit-id, one each in the same order; got ${unitArgs.length}`);
      const pollIntervalMs = int('poll-ms', v['poll-ms']);
      const devices = ids.map((id, i) => {
        const unitId = modbus ? int('unit-id', unitArgs[i]) ?? 1 : undefined;
        return { id, bus: v.bus!, profile: v.profile!, ...(unitId !== undefined ? { unitId } : {}), ...(pollIntervalMs !== undefined ? { pollIntervalMs } : {}), ...(v.disabled ? { enabled: false } : {}) };
      });
      const next = { ...doc, devices: [...(Array.isArray(doc.devices) ? doc.devices : []), ...devices] };
      const profiles = await loadProfiles(parseGatewayConfig(doc, file).profileDirs ?? []);
      parseGatewayConfig(next, file, { profiles });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, `${JSON.stringify(next, null, 2)}\n`);
      await rename(tmp, file);
      for (const device of devices) {
        const where = 'unitId' in device ? `unit ${device.unitId} on bus ${device.bus}` : `on ${busType === 'opcua' ? 'OPC UA' : busType === 'serial-line' ? 'serial-line' : String(busType)} bus ${device.bus}`;
        out.write(`added device ${device.id} (${device.profile}, ${where}) to ${file}\n`);
      }
      out.write('Restart the gateway to poll it; the hub registry lists it once the gateway reports its status.\n');
      return 0;
    } catch (e) {
      err.write(`device not added: ${isIocError(e) ? e.message : String(e)}\n`);
      return 1;
    }
  },
};
