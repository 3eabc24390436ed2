/**
 * The gateway configuration document, as gateway and hub both check it: the
 * JSON Schema `schemas/gateway-config.schema.json` (the single source; ajv,
 * allErrors, defaults applied) and a second pass for what the schema cannot
 * say (hub addresses one by one, unique ids, references to buses and profiles, one device per address,
 * profile protocol against bus type, OPC UA security mode against policy).
 * The gateway runs it when it loads its file and again on every desired
 * configuration; the hub runs it before it accepts a push. Path resolution
 * and freezing stay in the gateway (`gateway/config.ts`).
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parseHubUrls } from './hub-url.js';

/** One problem found in a configuration: RFC 6901 JSON pointer ('' = root) and reason. */
export interface ConfigProblem {
  pointer: string;
  message: string;
}

/** The gateway configuration schema, as JSON (for editors, docs and the hub). */
export const gatewayConfigSchema = JSON.parse(readFileSync(new URL('./schemas/gateway-config.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;

/** Bus types that speak Modbus (devices on them have unit ids and Modbus profiles). */
export const MODBUS_BUS_TYPES: ReadonlySet<string> = new Set(['modbus-tcp', 'modbus-rtu', 'modbus-rtu-tcp']);

/** The profile protocol each bus type carries. */
export function busProtocol(type: string): 'modbus' | 'serial-line' | 'opcua' {
  return MODBUS_BUS_TYPES.has(type) ? 'modbus' : (type as 'serial-line' | 'opcua');
}

/** Options of {@link checkGatewayConfig}. */
export interface CheckConfigOptions {
  /** Known profile model names; when given, devices must name one of them. A map (model → profile) also checks protocols. */
  profiles?: ReadonlySet<string> | ReadonlyMap<string, unknown>;
}

let validate: ReturnType<Ajv2020['compile']> | null = null;

interface LooseBus { id: string; type: string; securityMode?: string; securityPolicy?: string }
interface LooseDevice { id: string; bus: string; profile: string; unitId: number }

/**
 * Checks a configuration document. Returns a copy with the schema's defaults
 * applied (never the input itself) and every problem found; the second pass
 * runs only when the schema passes. Pure: no file system, no path resolution.
 */
export function checkGatewayConfig(doc: unknown, opts: CheckConfigOptions = {}): { value: unknown; problems: ConfigProblem[] } {
  validate ??= new Ajv2020({ allErrors: true, strict: true, useDefaults: true, allowUnionTypes: true }).compile(gatewayConfigSchema);
  let copy: unknown;
  try {
    copy = structuredClone(doc);
  } catch (err) {
    return { value: doc, problems: [{ pointer: '', message: `not a JSON value: ${(err as Error).message}` }] };
  }
  if (!validate(copy)) {
    const problems = (validate.errors ?? []).filter((e) => e.keyword !== 'if').map((e) => {
      const params = e.params as { additionalProperty?: string; allowedValues?: unknown[] };
      const extra = params.additionalProperty ? ` '${params.additionalProperty}'` : params.allowedValues ? ` (${params.allowedValues.map(String).join(', ')})` : '';
      return { pointer: e.instancePath, message: `${e.message ?? e.keyword}${extra}` };
    });
    return { value: copy, problems };
  }
  const cfg = copy as { hub: { url: string | string[] }; buses: LooseBus[]; devices: LooseDevice[] };
  const problems: ConfigProblem[] = [...parseHubUrls(cfg.hub.url).problems];
  const busIds = new Map<string, number>();
  cfg.buses.forEach((b, i) => {
    if (busIds.has(b.id)) problems.push({ pointer: `/buses/${i}/id`, message: `duplicate bus id '${b.id}' (also /buses/${busIds.get(b.id)})` });
    else busIds.set(b.id, i);
  });
  problems.push(...checkBuses(cfg.buses));
  const devIds = new Map<string, number>();
  const addresses = new Map<string, number>();
  cfg.devices.forEach((d, i) => {
    if (devIds.has(d.id)) problems.push({ pointer: `/devices/${i}/id`, message: `duplicate device id '${d.id}' (also /devices/${devIds.get(d.id)})` });
    else devIds.set(d.id, i);
    if (!busIds.has(d.bus)) problems.push({ pointer: `/devices/${i}/bus`, message: `unknown bus '${d.bus}'; defined buses: ${[...busIds.keys()].join(', ') || 'none'}` });
    if (opts.profiles && !opts.profiles.has(d.profile)) problems.push({ pointer: `/devices/${i}/profile`, message: `unknown device profile '${d.profile}'` });
    const bus = cfg.buses[busIds.get(d.bus) ?? -1];
    // Unit ids address devices on Modbus lines only; a serial-line port carries one sensor.
    const addr = bus && !MODBUS_BUS_TYPES.has(bus.type) ? (bus.type === 'serial-line' ? d.bus : null) : `${d.bus}/${d.unitId}`;
    if (addr !== null && addresses.has(addr)) {
      problems.push(bus?.type === 'serial-line'
        ? { pointer: `/devices/${i}/bus`, message: `serial-line bus '${d.bus}' already carries /devices/${addresses.get(addr)} (one sensor per port)` }
        : { pointer: `/devices/${i}/unitId`, message: `unit id ${d.unitId} on bus '${d.bus}' is already used by /devices/${addresses.get(addr)}` });
    } else if (addr !== null) addresses.set(addr, i);
    const profile = opts.profiles instanceof Map ? (opts.profiles.get(d.profile) as { protocol?: string } | undefined) : undefined;
    if (bus && profile?.protocol && profile.protocol !== busProtocol(bus.type)) {
      problems.push({ pointer: `/devices/${i}/profile`, message: `profile '${d.profile}' speaks ${profile.protocol}, but bus '${d.bus}' is ${bus.type}` });
    }
  });
  return { value: copy, problems };
}

/** Bus rules the schema cannot say: OPC UA security mode and policy must agree. */
function checkBuses(buses: readonly LooseBus[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  buses.forEach((b, i) => {
    if (b.type !== 'opcua' || b.securityPolicy === undefined) return;
    if (b.securityMode === 'None' && b.securityPolicy !== 'None') {
      out.push({ pointer: `/buses/${i}/securityPolicy`, message: `securityPolicy ${b.securityPolicy} needs securityMode Sign or SignAndEncrypt` });
    }
    if (b.securityMode !== 'None' && b.securityPolicy === 'None') {
      out.push({ pointer: `/buses/${i}/securityPolicy`, message: `securityMode ${b.securityMode} needs a securityPolicy other than None` });
    }
  });
  return out;
}
