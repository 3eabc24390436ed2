/**
 * From a received desired document to a configuration the gateway can run:
 * size cap before parsing, a nesting cap after, the envelope schema, the hash, then the checks the
 * hub ran too (contract `checkDesiredConfig`: pushed profiles, configuration
 * schema and second pass, gateway id, no local-only settings), and finally the
 * gateway's own settings (data folder, profile folders, credential, claim)
 * merged in and paths resolved as for its file.
 */
import {
  checkDesiredConfig, CONFIG_MAX_BYTES, CONFIG_MAX_DEPTH, configHash, nestedDeeperThan, IocError, LOCAL_ONLY_SETTINGS, parseJson, validateConfigDesired,
  type ConfigDesired, type ConfigProblem,
} from '../../contract/index.js';
import { validateProfile, type DeviceProfile } from '../../device-profiles/index.js';
import { parseGatewayConfig, type GatewayConfig } from '../config.js';

/** A configuration ready to run, with where it came from. */
export interface RunnableConfig {
  /** 0: the gateway's own file. */
  version: number;
  hash?: string;
  /** The desired document (null for the file). */
  doc: ConfigDesired | null;
  config: GatewayConfig;
  profiles: Map<string, DeviceProfile>;
}

/**
 * Parses a desired payload up to its envelope.
 * @throws IocError CONFIG_ERR_TOO_LARGE (checked before parsing), CONTRACT_ERR_BAD_JSON, CONTRACT_ERR_INVALID_PAYLOAD.
 */
export function parseDesiredPayload(payload: Buffer, maxBytes = CONFIG_MAX_BYTES): ConfigDesired {
  if (payload.length > maxBytes) {
    throw new IocError('CONFIG_ERR_TOO_LARGE', `desired configuration of ${payload.length} bytes is larger than the ${maxBytes} bytes a gateway accepts; not parsed`, { context: { bytes: payload.length } });
  }
  const value = parseJson(payload);
  if (nestedDeeperThan(value, CONFIG_MAX_DEPTH)) {
    throw new IocError('CONTRACT_ERR_INVALID_PAYLOAD', `desired configuration nests deeper than ${CONFIG_MAX_DEPTH} levels; not a configuration`, { context: { pointer: '' } });
  }
  return validateConfigDesired(value);
}

function invalid(version: number, problems: ConfigProblem[]): IocError {
  const code = problems.some((p) => p.pointer.startsWith('/profiles/')) ? 'PROFILE_ERR_INVALID'
    : problems.some((p) => p.message.includes('cannot be pushed')) ? 'CONFIG_ERR_LOCAL_ONLY'
      : problems.some((p) => p.pointer === '/config/gatewayId') ? 'CONFIG_ERR_WRONG_GATEWAY' : 'CONFIG_ERR_INVALID';
  const lines = problems.slice(0, 10).map((p) => `${p.pointer || '/'}: ${p.message}`);
  if (problems.length > 10) lines.push(`… and ${problems.length - 10} more`);
  return new IocError(code, `desired configuration version ${version} is invalid: ${lines.join('; ')}`, { context: { pointer: problems[0]?.pointer ?? '', problems } });
}

/**
 * Turns a desired document into a runnable configuration for this gateway.
 * @param local the gateway's own (file) configuration: id and local-only settings come from it.
 * @param source the configuration file (relative paths resolve against its folder).
 * @param baseProfiles shipped profiles plus those of the local profile folders.
 * @throws IocError CONFIG_ERR_WRONG_GATEWAY, CONTRACT_ERR_INVALID_PAYLOAD (hash), CONFIG_ERR_INVALID /
 *   PROFILE_ERR_INVALID / CONFIG_ERR_LOCAL_ONLY with `context.problems` (pointers into the document).
 */
export function resolveDesired(doc: ConfigDesired, local: GatewayConfig, source: string, baseProfiles: ReadonlyMap<string, DeviceProfile>): RunnableConfig {
  if (doc.gateway !== local.gatewayId) {
    throw new IocError('CONFIG_ERR_WRONG_GATEWAY', `desired configuration version ${doc.version} is for gateway '${doc.gateway}', this is '${local.gatewayId}'`, { context: { pointer: '/gateway' } });
  }
  const hash = configHash(doc.config, doc.profiles ?? []);
  if (hash !== doc.hash) {
    throw new IocError('CONTRACT_ERR_INVALID_PAYLOAD', `desired configuration version ${doc.version} does not match its hash (${doc.hash}, computed ${hash}): damaged in transit or edited`, { context: { pointer: '/hash' } });
  }
  const { problems, profiles: pushed } = checkDesiredConfig(doc, {
    knownProfiles: baseProfiles,
    validateProfile: (p, i) => validateProfile(p, `${String((p as { model?: unknown }).model ?? `profile-${i}`)}.json`),
  });
  if (problems.length > 0) throw invalid(doc.version, problems);
  const profiles = new Map<string, DeviceProfile>(baseProfiles);
  for (const [m, p] of pushed) profiles.set(m, p as DeviceProfile);
  const merged = withLocalSettings(doc.config, local);
  let config: GatewayConfig;
  try {
    config = parseGatewayConfig(merged, source, { profiles });
  } catch (err) {
    const list = (err as IocError).context?.problems as ConfigProblem[] | undefined;
    throw list ? invalid(doc.version, list.map((p) => ({ pointer: `/config${p.pointer}`, message: p.message }))) : err;
  }
  return { version: doc.version, hash: doc.hash, doc, config, profiles };
}

/** The pushed configuration with this gateway's own settings (see LOCAL_ONLY_SETTINGS) taken from its file. */
function withLocalSettings(config: Record<string, unknown>, local: GatewayConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config, hub: { ...(config.hub as Record<string, unknown>) } };
  for (const pointer of LOCAL_ONLY_SETTINGS) {
    const [, a, b] = pointer.split('/') as [string, string, string | undefined];
    const from = b === undefined ? (local as unknown as Record<string, unknown>)[a] : ((local as unknown as Record<string, Record<string, unknown>>)[a] ?? {})[b];
    if (from === undefined) continue;
    if (b === undefined) out[a] = from;
    else (out[a] as Record<string, unknown>)[b] = from;
  }
  return out;
}
