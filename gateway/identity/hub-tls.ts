/**
 * TLS settings of the gateway's connection to the hub. With an `mqtts://`
 * URL the hub's certificate is always verified (mqtt.js passes
 * `rejectUnauthorized: true` to node:tls); `ca` names the PEM file of the
 * authority that signed it when it is not a public one (a city's own CA).
 */
import { readFile } from 'node:fs/promises';
import type { IClientOptions } from 'mqtt';
import { IocError } from '../../contract/index.js';

/** mqtt.js options for a hub URL and an optional CA file. */
export async function hubTlsOptions(url: string, caFile?: string): Promise<Partial<IClientOptions>> {
  const secure = /^(mqtts|ssl|wss):/.test(url);
  if (!caFile) return secure ? { rejectUnauthorized: true } : {};
  if (!secure) throw new IocError('CONFIG_ERR_INVALID', `a CA file (${caFile}) is configured but the hub URL ${url} is not TLS: use mqtts://`, { context: { file: caFile } });
  try {
    return { ca: await readFile(caFile), rejectUnauthorized: true };
  } catch (err) {
    throw new IocError('CONFIG_ERR_READ', `cannot read the hub CA file ${caFile}: ${(err as Error).message}`, { cause: err, context: { file: caFile } });
  }
}
