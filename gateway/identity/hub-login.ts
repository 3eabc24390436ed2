/**
 * How the gateway logs in to the hub, decided once at start:
 *
 * 1. `hub.username`/`hub.password` in the configuration (an account made by
 *    hand) win;
 * 2. else the credential file left by provisioning (`hub.credentialFile`,
 *    default `<dataDir>/hub-credential.json`, mode 0600);
 * 3. else, with `hub.claim` or `hub.claimFile`, the gateway provisions itself
 *    first (the same flow as `ioc-edge provision`, steps logged);
 * 4. else no credentials (a hub without authentication, loopback only).
 *
 * TLS: with an mqtts:// URL the hub's certificate is verified, against
 * `hub.ca` when given.
 */
import { readFile } from 'node:fs/promises';
import type { IClientOptions } from 'mqtt';
import { IocError } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { GatewayConfig } from '../config.js';
import { credentialExists, credentialPath, loadCredential } from './credential.js';
import { hubTlsOptions } from './hub-tls.js';
import { provisionGateway } from './provision.js';

/** What the uplink needs to log in. */
export interface HubLogin {
  username?: string;
  password?: string;
  mqttOptions: Partial<IClientOptions>;
  source: 'config' | 'credential-file' | 'provisioned' | 'none';
  /** Firmware signing keys from the provisioning answer (issue 7). */
  firmwareKeys?: string[];
  /** The site the hub registered the gateway at (the Sparkplug group id by default, issue 17). */
  site?: string;
}

/** Resolves the gateway's hub login (see the file comment for the order). */
export async function resolveHubLogin(config: GatewayConfig, logger: Logger): Promise<HubLogin> {
  const hub = config.hub;
  const mqttOptions = await hubTlsOptions(hub.url, hub.ca);
  if (hub.username !== undefined) return { username: hub.username, ...(hub.password !== undefined ? { password: hub.password } : {}), mqttOptions, source: 'config' };
  const file = credentialPath(config.dataDir, hub.credentialFile);
  if (!(await credentialExists(file))) {
    const claim = hub.claim ?? (hub.claimFile ? await readClaimFile(hub.claimFile) : undefined);
    if (claim === undefined) {
      if (hub.credentialFile !== undefined) throw new IocError('GW_ERR_CREDENTIAL', `hub credential ${file} does not exist; provision the gateway with 'ioc-edge provision --hub URL --claim TOKEN'`, { context: { file } });
      return { mqttOptions, source: 'none' };
    }
    const log = logger.child({ component: 'provision' });
    await provisionGateway({
      hubUrl: hub.url, claim, gatewayId: config.gatewayId, dataDir: config.dataDir, ...(hub.credentialFile ? { credentialFile: hub.credentialFile } : {}),
      ...(hub.ca ? { caFile: hub.ca } : {}), onStep: (s) => log.info({ step: s.step }, s.message),
    });
  }
  const { credential, tightened } = await loadCredential(file);
  if (tightened) logger.warn({ file }, 'hub credential was readable by other users; permissions tightened to 0600');
  if (credential.gatewayId !== config.gatewayId) {
    throw new IocError('GW_ERR_CREDENTIAL', `hub credential ${file} belongs to gateway '${credential.gatewayId}', not '${config.gatewayId}'`, { context: { file } });
  }
  return {
    username: credential.username, password: credential.password, mqttOptions, source: hub.claim ?? hub.claimFile ? 'provisioned' : 'credential-file',
    ...(Array.isArray(credential.firmwareKeys) ? { firmwareKeys: credential.firmwareKeys.filter((k): k is string => typeof k === 'string') } : {}),
    ...(typeof credential.site === 'string' ? { site: credential.site } : {}),
  };
}

async function readClaimFile(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    throw new IocError('CONFIG_ERR_READ', `cannot read the claim file ${file}: ${(err as Error).message}`, { cause: err, context: { file } });
  }
}
