/**
 * Remote commands, hub side: sends `{transaction, args, expiresAt}` to
 * `ioc/v1/gw/{gw}/cmd/{name}` (QoS 1, never retained) and waits for the
 * gateway's `{status, data | error, transaction}` on `…/cmd/{name}/result`,
 * matched by transaction, up to a timeout. The request carries its expiry so
 * a gateway that receives it late (after a reconnect) does not carry it out.
 * Every command is audited with its outcome (a write changes a field device).
 */
import { randomBytes } from 'node:crypto';
import {
  COMMAND_MAX_BYTES, IocError, isCommandName, parseJson, parseTopic, ROOT, topics, validateCommandArgs, validateCommandResult, COMMAND_NAMES,
  type CommandResult,
} from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';
import type { Actor } from '../identity/identity-service.js';
import type { AuditPort } from '../store/state-ports.js';
import type { BrokerLink } from './config-service.js';

/** Dependencies of {@link CommandService}. */
export interface CommandServiceDeps {
  logger: Logger;
  broker: BrokerLink;
  audit: AuditPort;
  /** Is the gateway connected now? */
  isOnline: (gateway: string) => boolean;
  clock?: () => number;
}

interface Waiting {
  resolve: (r: CommandResult) => void;
  timer: NodeJS.Timeout;
}

/** Default and longest wait for an answer (ms). */
export const COMMAND_TIMEOUT_MS = { default: 10_000, max: 120_000 } as const;

/** Sends commands to gateways and awaits their results. */
export class CommandService {
  private readonly waiting = new Map<string, Waiting>();
  private unsubscribe: (() => Promise<void>) | null = null;
  private readonly clock: () => number;

  constructor(private readonly deps: CommandServiceDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.deps.broker.subscribe(`${ROOT}/gw/+/cmd/+/result`, (topic, payload) => this.onResult(topic, payload));
  }

  async stop(): Promise<void> {
    for (const [k, w] of this.waiting) {
      clearTimeout(w.timer);
      this.waiting.delete(k);
    }
    await this.unsubscribe?.().catch(() => undefined);
    this.unsubscribe = null;
  }

  /**
   * Sends command `name` with `args` to `gateway` and resolves with its
   * answer (which may itself be `status: "error"` with the gateway's code).
   * @throws IocError HUB_ERR_BAD_REQUEST (unknown command, invalid arguments: JSON pointer in context),
   *   HUB_ERR_GATEWAY_OFFLINE, HUB_ERR_CMD_TIMEOUT.
   */
  async send(gateway: string, name: string, args: Record<string, unknown> = {}, opts: { timeoutMs?: number; by: Actor }): Promise<CommandResult> {
    if (!isCommandName(name)) throw new IocError('HUB_ERR_BAD_REQUEST', `unknown command '${name}'; gateways answer ${COMMAND_NAMES.join(', ')}`);
    try {
      validateCommandArgs(name, args);
    } catch (err) {
      throw new IocError('HUB_ERR_BAD_REQUEST', (err as Error).message.replace(/ \(CONTRACT_ERR_INVALID_PAYLOAD\)$/, ''), { context: (err as IocError).context });
    }
    const audit = (outcome: 'ok' | 'error', detail: Record<string, unknown>): Promise<void> =>
      this.deps.audit.record({ actor: opts.by.actor, source: opts.by.source ?? null, action: `gateway.command.${name}`, target: `gateway:${gateway}`, outcome, detail: { args, ...detail } })
        .catch((err: unknown) => this.deps.logger.error({ err }, 'audit write failed'));
    if (!this.deps.isOnline(gateway)) {
      await audit('error', { code: 'HUB_ERR_GATEWAY_OFFLINE' });
      throw new IocError('HUB_ERR_GATEWAY_OFFLINE', `gateway '${gateway}' is not connected; '${name}' not sent`);
    }
    const timeoutMs = Math.min(COMMAND_TIMEOUT_MS.max, Math.max(100, opts.timeoutMs ?? COMMAND_TIMEOUT_MS.default));
    const transaction = randomBytes(12).toString('base64url');
    const key = `${gateway}/${transaction}`;
    const answer = new Promise<CommandResult | null>((resolve) => {
      this.waiting.set(key, { resolve, timer: setTimeout(() => { this.waiting.delete(key); resolve(null); }, timeoutMs) });
    });
    const request = { v: 1, transaction, args, expiresAt: this.clock() + timeoutMs };
    try {
      await this.deps.broker.publish(topics.cmd(gateway, name), Buffer.from(JSON.stringify(request)), { qos: 1, retain: false });
    } catch (err) {
      const w = this.waiting.get(key);
      if (w) clearTimeout(w.timer);
      this.waiting.delete(key);
      throw new IocError('HUB_ERR_GATEWAY_OFFLINE', `'${name}' could not be sent to gateway '${gateway}': ${(err as Error).message}`, { cause: err });
    }
    const result = await answer;
    if (!result) {
      await audit('error', { code: 'HUB_ERR_CMD_TIMEOUT', transaction });
      throw new IocError('HUB_ERR_CMD_TIMEOUT', `gateway '${gateway}' did not answer '${name}' within ${timeoutMs} ms`, { context: { transaction } });
    }
    await audit(result.status === 'ok' ? 'ok' : 'error', { transaction, ...(result.status === 'error' ? { code: result.error.code } : {}) });
    return result;
  }

  private onResult(topic: string, payload: Buffer): void {
    const parsed = parseTopic(topic);
    if (!parsed || parsed.kind !== 'cmd' || parsed.rest[1] !== 'result') return;
    let result: CommandResult;
    try {
      if (payload.length > COMMAND_MAX_BYTES) throw new Error(`${payload.length} bytes`);
      result = validateCommandResult(parseJson(payload));
    } catch (err) {
      this.deps.logger.warn({ gateway: parsed.gateway, command: parsed.rest[0], err: (err as Error).message }, 'malformed command result ignored');
      return;
    }
    const key = `${parsed.gateway}/${result.transaction}`;
    const w = this.waiting.get(key);
    if (!w) return; // late (timed out) or not ours
    clearTimeout(w.timer);
    this.waiting.delete(key);
    w.resolve(result);
  }
}
