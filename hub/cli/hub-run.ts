/**
 * `ioc-edge hub run`: runs the hub in the foreground (what a systemd unit
 * starts). Always with authentication; TLS from --tls-cert/--tls-key, and
 * plain TCP only on loopback or with --allow-plain (both logged as a
 * warning). SIGINT/SIGTERM stop it cleanly.
 */
import { isIocError } from '../../contract/index.js';
import { createLogger } from '../../lib/index.js';
import { startHub } from '../hub.js';
import type { Command } from './command.js';
import { parse } from './parse.js';

const HELP = `Usage: ioc-edge hub run --data-dir DIR [options]

Runs the hub: MQTT broker with authentication and access control, ingest,
registry and HTTP API. Make the first admin token with
'ioc-edge token create --data-dir DIR --name NAME --role admin'.

  --data-dir DIR              SQLite files (telemetry, registry)
  --mqtt-host H --mqtt-port N MQTT listener (default 127.0.0.1:8883 with TLS, :1883 without)
  --http-host H --http-port N API listener (default 127.0.0.1:8443 with TLS, :8080 without)
  --tls-cert FILE --tls-key FILE  PEM certificate (with chain) and key for MQTT and the API
  --allow-plain               accept plain TCP on a non-loopback address (trusted network only)
  --log-level LEVEL           trace … error (default info)
  --pretty                    human-readable logs`;

function port(s: string | undefined, def: number): number {
  if (s === undefined) return def;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`'${s}' is not a port number`);
  return n;
}

export const hubRun: Command = {
  name: 'hub run',
  summary: 'run the hub (broker, ingest, registry, API) with authentication',
  async run(args, io) {
    const p = parse(args, {
      'data-dir': { type: 'string' }, 'mqtt-host': { type: 'string' }, 'mqtt-port': { type: 'string' }, 'http-host': { type: 'string' }, 'http-port': { type: 'string' },
      'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'allow-plain': { type: 'boolean' }, 'log-level': { type: 'string' }, pretty: { type: 'boolean' },
    }, HELP, io);
    if ('exit' in p) return p.exit;
    const v = p.values;
    if (!v['data-dir'] || Boolean(v['tls-cert']) !== Boolean(v['tls-key'])) {
      io.err.write(`${!v['data-dir'] ? 'missing --data-dir' : '--tls-cert and --tls-key go together'}\n${HELP}\n`);
      return 2;
    }
    const tls = v['tls-cert'] ? { certFile: v['tls-cert'], keyFile: v['tls-key']! } : undefined;
    let hub;
    try {
      const logger = createLogger({ level: v['log-level'] ?? 'info', pretty: v.pretty ?? false, destination: io.out });
      hub = await startHub({
        dataDir: v['data-dir'], logger, auth: { mode: 'required' }, ...(tls ? { tls } : {}), allowPlain: v['allow-plain'] ?? false,
        mqttHost: v['mqtt-host'] ?? '127.0.0.1', mqttPort: port(v['mqtt-port'], tls ? 8883 : 1883),
        httpHost: v['http-host'] ?? '127.0.0.1', httpPort: port(v['http-port'], tls ? 8443 : 8080),
      });
    } catch (e) {
      io.err.write(`ioc-edge: hub not started: ${isIocError(e) ? e.message : (e as Error).message}\n`);
      return 1;
    }
    const h = hub;
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void h.stop().then(resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return 0;
  },
};
