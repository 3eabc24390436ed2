/**
 * ajv validators for the contract payloads, used by both gateway (before it
 * publishes) and hub (before anything reaches the store).
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { IocError } from './errors.js';
import type { GatewayEvent, GatewayStatus, ProvisionRequest, ProvisionResponse, TelemetryBatch } from './types.js';
import type { CommandArgs, CommandName, CommandRequest, CommandResult, ConfigDesired, ConfigReported } from './remote-config.js';

function loadSchema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`./schemas/${name}.schema.json`, import.meta.url), 'utf8')) as Record<string, unknown>;
}

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
/** Stops at the first error: the fast path for the telemetry hot path; `ajv` re-checks a failure to list every problem. */
const ajvFast = new Ajv2020({ allErrors: false, strict: true, allowUnionTypes: true });

/** The contract's schemas, by name, as plain JSON (for docs and OpenAPI). */
export const schemas = {
  telemetryBatch: loadSchema('telemetry-batch'),
  status: loadSchema('status'),
  event: loadSchema('event'),
  provisionRequest: loadSchema('provision-request'),
  provisionResponse: loadSchema('provision-response'),
  configDesired: loadSchema('config-desired'),
  configReported: loadSchema('config-reported'),
  commandRequest: loadSchema('command-request'),
  commandResult: loadSchema('command-result'),
  commandArgs: loadSchema('command-args'),
} as const;

/** Compiles on first use: a gateway that never validates a provisioning reply does not pay for it (memory, start-up). */
function lazy<T>(make: () => ValidateFunction<T>): () => ValidateFunction<T> {
  let fn: ValidateFunction<T> | null = null;
  return () => (fn ??= make());
}

const compiled = {
  telemetryBatch: lazy(() => ajv.compile<TelemetryBatch>(schemas.telemetryBatch)),
  status: lazy(() => ajv.compile<GatewayStatus>(schemas.status)),
  event: lazy(() => ajv.compile<GatewayEvent>(schemas.event)),
  provisionRequest: lazy(() => ajv.compile<ProvisionRequest>(schemas.provisionRequest)),
  provisionResponse: lazy(() => ajv.compile<ProvisionResponse>(schemas.provisionResponse)),
  configDesired: lazy(() => ajv.compile<ConfigDesired>(schemas.configDesired)),
  configReported: lazy(() => ajv.compile<ConfigReported>(schemas.configReported)),
  commandRequest: lazy(() => ajv.compile<CommandRequest>(schemas.commandRequest)),
  commandResult: lazy(() => ajv.compile<CommandResult>(schemas.commandResult)),
};

const commandArgs = new Map<string, () => ValidateFunction<unknown>>();

/** Formats ajv errors as `"/pointer: message"` lines, at most `max` of them. */
export function formatAjvErrors(errors: ErrorObject[] | null | undefined, max = 5): string {
  if (!errors || errors.length === 0) return 'unknown schema error';
  const lines = errors.slice(0, max).map((e) => {
    const extra = e.keyword === 'additionalProperties' ? ` '${String((e.params as { additionalProperty?: string }).additionalProperty)}'` : '';
    return `${e.instancePath || '/'}: ${e.message ?? e.keyword}${extra}`;
  });
  if (errors.length > max) lines.push(`… and ${errors.length - max} more`);
  return lines.join('; ');
}

const fastTelemetry = lazy(() => ajvFast.compile<TelemetryBatch>(schemas.telemetryBatch));

function check<T>(get: () => ValidateFunction<T>, what: string, value: unknown, getFast?: () => ValidateFunction<T>): T {
  const fn = get();
  if (getFast ? getFast()(value) : fn(value)) return value as T;
  if (getFast) fn(value);
  const first = fn.errors?.[0];
  throw new IocError('CONTRACT_ERR_INVALID_PAYLOAD', `${what} is invalid: ${formatAjvErrors(fn.errors)}`, {
    context: { pointer: first?.instancePath ?? '' },
  });
}

/** Parses a buffer as JSON, throwing CONTRACT_ERR_BAD_JSON with the parser's reason. */
export function parseJson(payload: Buffer | string): unknown {
  try {
    return JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    throw new IocError('CONTRACT_ERR_BAD_JSON', `payload is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Validates a telemetry batch; throws CONTRACT_ERR_INVALID_PAYLOAD naming the JSON pointer. */
export function validateTelemetryBatch(value: unknown): TelemetryBatch {
  return check(compiled.telemetryBatch, 'telemetry batch', value, fastTelemetry);
}

/** Validates a gateway status document. */
export function validateStatus(value: unknown): GatewayStatus {
  return check(compiled.status, 'status', value);
}

/** Validates a gateway event. */
export function validateEvent(value: unknown): GatewayEvent {
  return check(compiled.event, 'event', value);
}

/** Validates a provisioning request (claim session → hub). */
export function validateProvisionRequest(value: unknown): ProvisionRequest {
  return check(compiled.provisionRequest, 'provisioning request', value);
}

/** Validates a provisioning response (hub → claim session). */
export function validateProvisionResponse(value: unknown): ProvisionResponse {
  return check(compiled.provisionResponse, 'provisioning response', value);
}

/** Validates a desired configuration envelope (the `config` and `profiles` inside are checked by their own schemas). */
export function validateConfigDesired(value: unknown): ConfigDesired {
  return check(compiled.configDesired, 'desired configuration', value);
}

/** Validates a reported configuration document. */
export function validateConfigReported(value: unknown): ConfigReported {
  return check(compiled.configReported, 'reported configuration', value);
}

/** Validates a command request envelope (see {@link validateCommandArgs} for its arguments). */
export function validateCommandRequest(value: unknown): CommandRequest {
  return check(compiled.commandRequest, 'command request', value);
}

/** Validates a command result envelope. */
export function validateCommandResult(value: unknown): CommandResult {
  return check(compiled.commandResult, 'command result', value);
}

/** Validates the arguments of command `name` against command-args.schema.json; pointers start at `/args`. */
export function validateCommandArgs<N extends CommandName>(name: N, args: unknown): CommandArgs[N] {
  let get = commandArgs.get(name);
  if (!get) {
    if (!ajv.getSchema(String(schemas.commandArgs.$id))) ajv.addSchema(schemas.commandArgs);
    get = lazy(() => ajv.getSchema(`${String(schemas.commandArgs.$id)}#/$defs/${name}`) as ValidateFunction<unknown>);
    commandArgs.set(name, get);
  }
  const fn = get();
  if (fn(args ?? {})) return (args ?? {}) as CommandArgs[N];
  const errors = (fn.errors ?? []).map((e) => ({ ...e, instancePath: `/args${e.instancePath}` }));
  throw new IocError('CONTRACT_ERR_INVALID_PAYLOAD', `arguments of '${name}' are invalid: ${formatAjvErrors(errors)}`, { context: { pointer: errors[0]?.instancePath ?? '/args' } });
}
