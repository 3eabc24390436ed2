/**
 * Remote commands: request/response over `ioc/v1/gw/{gw}/cmd/{name}` →
 * `…/cmd/{name}/result`, in the envelope `{status, data | error: {code,
 * message}, transaction}` (the zigbee2mqtt bridge-request pattern). Only hub
 * services may publish requests (the broker's ACL); the gateway still checks
 * size, envelope, expiry and arguments (contract command-args.schema.json),
 * and every failure answers with a catalogue code:
 *
 * - `ping` — liveness, version, uptime, configuration version;
 * - `read {device, points?}` — reads a Modbus device now (other protocols
 *   answer with the last values received, `cached: true`);
 * - `write {device, point, value}` — writes a writable point;
 * - `restart-driver {device} | {bus}` — restarts one driver or a bus;
 * - `logs {lines?, level?, since?}` — recent log lines from the log ring.
 */
import {
  COMMAND_MAX_BYTES, isCommandName, isIocError, parseJson, topics, validateCommandArgs, validateCommandRequest, COMMAND_NAMES,
  IocError, type CommandArgs, type CommandData, type CommandName, type CommandResult, type ConfigStatus, type Reading,
} from '../../contract/index.js';
import type { Logger, LogRing } from '../../lib/index.js';

/** The slice of the uplink commands use. */
export interface CommandUplink {
  subscribe(filter: string, handler: (payload: Buffer, topic: string) => void): Promise<void>;
  publish(topic: string, payload: string, opts?: { qos?: 0 | 1 }): Promise<void>;
}

/** Dependencies of {@link CommandHandler}: what the commands act on. */
export interface CommandDeps {
  gatewayId: string;
  logger: Logger;
  uplink: CommandUplink;
  version: string;
  /** Reads a device now; null when its protocol cannot (then the last values are answered). */
  readNow(device: string, points?: string[]): Promise<Reading[] | null>;
  /** Last readings received per device and point. */
  latest(device: string): Reading[];
  /** True when the device is configured and enabled. */
  hasDevice(device: string): boolean;
  writePoint(device: string, point: string, value: unknown): Promise<void>;
  restart(target: { device: string } | { bus: string }): Promise<string[]>;
  configState(): { version: number; status: ConfigStatus };
  logs?: LogRing;
  clock?: () => number;
}

/** Answers command requests. */
export class CommandHandler {
  private readonly clock: () => number;
  private readonly startedAt: number;
  /** Requests answered, by outcome. */
  readonly counters = { ok: 0, error: 0 };

  constructor(private readonly deps: CommandDeps) {
    this.clock = deps.clock ?? Date.now;
    this.startedAt = this.clock();
  }

  async start(): Promise<void> {
    await this.deps.uplink.subscribe(topics.cmd(this.deps.gatewayId, '+'), (payload, topic) => void this.onRequest(payload, topic));
  }

  async stop(): Promise<void> {}

  /** Handles one request and publishes its result (exposed for tests). */
  async onRequest(payload: Buffer, topic: string): Promise<CommandResult> {
    const name = topic.split('/').at(-1) ?? '';
    const result = await this.answer(name, payload);
    if (result.status === 'ok') this.counters.ok++;
    else this.counters.error++;
    let text = JSON.stringify(result);
    if (Buffer.byteLength(text) > COMMAND_MAX_BYTES) {
      text = JSON.stringify(this.fail(result.transaction, new IocError('GW_ERR_CMD_FAILED', `the answer to '${name}' is larger than ${COMMAND_MAX_BYTES} bytes; ask for less`)));
    }
    await this.deps.uplink.publish(topics.cmdResult(this.deps.gatewayId, name), text, { qos: 1 }).catch((err: unknown) =>
      this.deps.logger.warn({ command: name, transaction: result.transaction, err: (err as Error).message }, 'command result not delivered'));
    return result;
  }

  private async answer(name: string, payload: Buffer): Promise<CommandResult> {
    let transaction = 'unknown';
    try {
      if (payload.length > COMMAND_MAX_BYTES) throw new IocError('GW_ERR_CMD_ARGS', `command request of ${payload.length} bytes is larger than ${COMMAND_MAX_BYTES}; not parsed`);
      const raw = parseJson(payload);
      const t = (raw as { transaction?: unknown } | null)?.transaction;
      if (typeof t === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(t)) transaction = t;
      const req = validateCommandRequest(raw);
      if (!isCommandName(name)) throw new IocError('GW_ERR_CMD_UNKNOWN', `unknown command '${name}'; this gateway answers ${COMMAND_NAMES.join(', ')}`);
      if (req.expiresAt !== undefined && req.expiresAt < this.clock()) {
        throw new IocError('GW_ERR_CMD_EXPIRED', `'${name}' arrived ${this.clock() - req.expiresAt} ms after it expired; not carried out`);
      }
      let args: CommandArgs[CommandName];
      try {
        args = validateCommandArgs(name, req.args ?? {});
      } catch (err) {
        throw new IocError('GW_ERR_CMD_ARGS', (err as Error).message.replace(/ \(CONTRACT_ERR_INVALID_PAYLOAD\)$/, ''), { context: (err as IocError).context });
      }
      const data = await this.run(name, args);
      this.deps.logger.info({ command: name, transaction }, 'command done');
      return { v: 1, transaction, status: 'ok', data };
    } catch (err) {
      this.deps.logger.warn({ command: name, transaction, code: isIocError(err) ? err.code : 'GW_ERR_CMD_FAILED', err: (err as Error).message }, 'command failed');
      return this.fail(transaction, err);
    }
  }

  private fail(transaction: string, err: unknown): CommandResult {
    const e = isIocError(err) ? err : new IocError('GW_ERR_CMD_FAILED', (err as Error)?.message ?? String(err), { cause: err });
    const context = Object.keys(e.context).length > 0 ? { context: JSON.parse(JSON.stringify(e.context)) as Record<string, unknown> } : {};
    return { v: 1, transaction, status: 'error', error: { code: e.code, message: e.message.slice(0, 4096), ...context } };
  }

  private async run(name: CommandName, args: CommandArgs[CommandName]): Promise<CommandData[CommandName]> {
    const d = this.deps;
    switch (name) {
      case 'ping':
        return { pong: true, ts: this.clock(), version: d.version, uptimeS: Math.round((this.clock() - this.startedAt) / 1000), config: d.configState() };
      case 'read': {
        const a = args as CommandArgs['read'];
        if (!d.hasDevice(a.device)) throw new IocError('GW_ERR_NO_DEVICE', `no enabled device '${a.device}' on this gateway`, { context: { device: a.device } });
        const now = await d.readNow(a.device, a.points);
        if (now) return { device: a.device, readings: now, cached: false };
        const last = d.latest(a.device).filter((r) => !a.points || a.points.includes(r.point));
        return { device: a.device, readings: last, cached: true };
      }
      case 'write': {
        const a = args as CommandArgs['write'];
        await d.writePoint(a.device, a.point, a.value);
        return { device: a.device, point: a.point, value: a.value, written: true };
      }
      case 'restart-driver':
        return { restarted: await d.restart(args as CommandArgs['restart-driver']) };
      case 'logs': {
        const a = args as CommandArgs['logs'];
        if (!d.logs) throw new IocError('GW_ERR_CMD_FAILED', 'this gateway keeps no log lines in memory (started without a log ring)');
        const lines = d.logs.recent({ limit: a.lines ?? 100, level: a.level ?? 'trace', ...(a.since !== undefined ? { since: a.since } : {}) });
        // Oldest lines go first when the answer would not fit.
        while (lines.length > 0 && Buffer.byteLength(JSON.stringify(lines)) > COMMAND_MAX_BYTES - 4096) lines.shift();
        return { lines, total: d.logs.total };
      }
    }
  }
}
