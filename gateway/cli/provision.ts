/**
 * `ioc-edge provision --hub URL --claim TOKEN`: registers this gateway with
 * the hub using a one-time claim from the operator, stores the gateway's own
 * credential (mode 0600) and proves it by reconnecting. Every step is printed
 * so the technician at the cabinet sees where it stands or where it failed.
 */
import { parseArgs } from 'node:util';
import { IocError, isIocError } from '../../contract/index.js';
import { loadGatewayConfig } from '../config.js';
import { provisionGateway, type ProvisionStep } from '../identity/provision.js';
import { readFile } from 'node:fs/promises';
import type { Command } from './command.js';

const HELP = `Usage: ioc-edge provision --hub URL --claim TOKEN (--config FILE | --gateway-id ID --data-dir DIR) [options]

Registers this gateway with the hub using a one-time claim token from the
operator ('ioc-edge claim create' on the hub side), stores the gateway's own
credential in the data folder (hub-credential.json, mode 0600) and checks it
by reconnecting with it.

  --hub URL          hub MQTT address, mqtts://host:8883 (mqtt:// only for a local hub);
                     default: hub.url of --config
  --claim TOKEN      the claim token as printed (case and dashes do not matter)
  --claim-file FILE  read the token from a file instead
  --config FILE      take gateway id, data folder, hub URL and CA from the gateway configuration
  --gateway-id ID    the gateway's id (without --config)
  --data-dir DIR     where the credential is stored (without --config)
  --ca FILE          PEM file of the CA that signed the hub's certificate
  --location TEXT    where the gateway is installed (cabinet, street), for the registry
  --timeout S        seconds to wait for the hub at each step (default 15)`;

export const provision: Command = {
  name: 'provision',
  summary: 'register this gateway with the hub using a one-time claim token',
  async run(args, { out, err }) {
    let v;
    try {
      v = parseArgs({
        args,
        options: {
          hub: { type: 'string' }, claim: { type: 'string' }, 'claim-file': { type: 'string' }, config: { type: 'string', short: 'c' },
          'gateway-id': { type: 'string' }, 'data-dir': { type: 'string' }, ca: { type: 'string' }, location: { type: 'string' }, timeout: { type: 'string' },
          help: { type: 'boolean', short: 'h' },
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
    let last: ProvisionStep['step'] = 'claim';
    try {
      const cfg = v.config ? await loadGatewayConfig(v.config) : null;
      const hubUrl = v.hub ?? cfg?.hub.url;
      const gatewayId = v['gateway-id'] ?? cfg?.gatewayId;
      const dataDir = v['data-dir'] ?? cfg?.dataDir;
      const claim = v.claim ?? (v['claim-file'] ? (await readFile(v['claim-file'], 'utf8')).trim() : undefined);
      const missing = [!hubUrl && '--hub', !claim && '--claim', !gatewayId && '--gateway-id (or --config)', !dataDir && '--data-dir (or --config)'].filter(Boolean);
      if (missing.length > 0) {
        err.write(`missing ${missing.join(', ')}\n${HELP}\n`);
        return 2;
      }
      const timeoutS = v.timeout === undefined ? 15 : Number(v.timeout);
      if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new IocError('CONFIG_ERR_INVALID', `--timeout: '${v.timeout}' is not a number of seconds`);
      const caFile = v.ca ?? cfg?.hub.ca;
      out.write(`Provisioning gateway ${gatewayId} with hub ${hubUrl}\n`);
      let n = 0;
      const res = await provisionGateway({
        hubUrl: hubUrl!, claim: claim!, gatewayId: gatewayId!, dataDir: dataDir!, timeoutMs: timeoutS * 1000,
        ...(cfg?.hub.credentialFile ? { credentialFile: cfg.hub.credentialFile } : {}), ...(caFile ? { caFile } : {}), ...(v.location !== undefined ? { location: v.location } : {}),
        onStep: (s) => {
          last = s.step;
          out.write(`  ${++n}. ${s.message}\n`);
        },
      });
      out.write(`OK: gateway ${res.credential.gatewayId} is registered at site ${res.credential.site}; credential in ${res.file}\n`);
      out.write(v.config ? `Start it with: ioc-edge run --config ${v.config}\n` : 'Start the gateway now; it logs in with the stored credential.\n');
      return 0;
    } catch (e) {
      err.write(`FAILED at step '${last}': ${isIocError(e) ? e.message : String(e)}\n`);
      return 1;
    }
  },
};
