/**
 * `ioc-edge run --config FILE`: runs a gateway in the foreground (what the
 * systemd unit starts). Refuses to start on an invalid configuration or
 * profile, naming file, JSON pointer and reason. SIGINT/SIGTERM stop it
 * cleanly: pollers first, then the uplink, then the outbox is flushed.
 */
import { parseArgs } from 'node:util';
import { isIocError } from '../../contract/index.js';
import { createLogger, installProcessPolicy, LogRing, routeConsole, routeDebugPrinters, StopSignals, type Logger } from '../../lib/index.js';
import { loadGatewayConfig } from '../config.js';
import { loadProfiles, startGateway } from '../gateway.js';
import type { Command } from './command.js';

const HELP = `Usage: ioc-edge run --config FILE [--log-level LEVEL] [--pretty]

Runs the gateway described by FILE (JSON, see contract/schemas/gateway-config.schema.json).
Logs are JSON lines on stdout (--pretty for a terminal).`;

export const run: Command = {
  name: 'run',
  summary: 'run a gateway from its configuration file',
  async run(args, { out, err }) {
    let values;
    try {
      values = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, 'log-level': { type: 'string' }, pretty: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }).values;
    } catch (e) {
      err.write(`${(e as Error).message}\n${HELP}\n`);
      return 2;
    }
    if (values.help) {
      out.write(`${HELP}\n`);
      return 0;
    }
    if (!values.config) {
      err.write(`--config is required\n${HELP}\n`);
      return 2;
    }
    let gateway;
    let uninstallPolicy = (): void => undefined;
    // From here on a SIGTERM/SIGINT stops the gateway cleanly, also one that comes while it starts (lib/stop-signals.ts).
    let log: ReturnType<typeof createLogger> | null = null;
    const signals = new StopSignals('gateway', () => log);
    try {
      const first = await loadGatewayConfig(values.config);
      const profiles = await loadProfiles(first.profileDirs ?? []);
      const config = await loadGatewayConfig(values.config, { profiles });
      // The last log lines stay in memory for the remote 'logs' command.
      const logRing = new LogRing({ capacity: 2000 });
      const logger = createLogger({ level: values['log-level'] ?? 'info', pretty: values.pretty ?? false, destination: out, ring: logRing });
      log = logger;
      // An uncaught exception or unhandled rejection: fatal JSON line with the stack, exit 70 (lib/process-policy.ts).
      uninstallPolicy = installProcessPolicy(logger, { name: 'gateway' });
      // Every stdout line is one JSON object: libraries' console output and node-opcua's printers go through the logger.
      const restoreConsole = routeConsole(logger);
      const uninstall = uninstallPolicy;
      uninstallPolicy = () => {
        uninstall();
        restoreConsole();
      };
      if (config.buses.some((b) => b.type === 'opcua')) await routeOpcuaPrinters(logger);
      gateway = await startGateway({ config, source: values.config, logger, profiles, logRing });
    } catch (e) {
      signals.dispose();
      uninstallPolicy();
      err.write(`ioc-edge: gateway not started: ${isIocError(e) ? e.message : String(e)}\n`);
      return 1;
    }
    await signals.wait();
    await gateway.stop();
    uninstallPolicy();
    return 0;
  },
};

/**
 * node-opcua prints through its own printers (coloured text on stdout, whole
 * certificates on a failed check): point them at the logger. node-opcua-debug
 * is the package node-opcua itself uses for them (one copy in node_modules).
 */
async function routeOpcuaPrinters(logger: Logger): Promise<void> {
  try {
    routeDebugPrinters(logger, 'node-opcua', await import('node-opcua-debug'));
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'node-opcua printers not routed: its messages may appear as plain text');
  }
}
