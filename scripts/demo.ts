/**
 * `npm start`: the whole telemetry path on embedded defaults, in one process —
 * a hub (Aedes + SQLite), a gateway, and simulated Modbus TCP field devices (a
 * flood level sensor and a traffic signal controller). Prints the API address
 * once it listens, then one line per telemetry batch committed at the hub.
 *
 *   npm start -- --data-dir DIR --mqtt-port N --http-port N   (0 picks a free port)
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { startGateway } from '../gateway/index.js';
import { provision } from '../gateway/cli/provision.js';
import { startHub } from '../hub/index.js';
import { createLogger } from '../lib/index.js';
import { FloodLevelSensor, TrafficSignalController, type SimDevice } from './sim/field-devices.js';
import { ModbusTcpSimulator } from './sim/modbus-tcp-sim.js';

const HELP = `ioc-edge demo: hub + gateway + simulated Modbus devices

Usage: npm start -- [options]
  --data-dir DIR     where hub and gateway keep their SQLite files (default ./data/demo)
  --mqtt-port N      hub MQTT port (default 1883, or a free port if 1883 is taken; 0 picks a free port)
  --http-port N      hub HTTP API port (default 8080, or a free port if 8080 is taken; 0 picks a free port)
  --log-level LEVEL  trace, debug, info, warn, error (default info)
  -h, --help         this text

Stop with Ctrl-C: everything shuts down cleanly and the SQLite files stay consistent.`;

function port(value: string | undefined, def: number, name: string): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`--${name}: '${value}' is not a port number (0–65535)`);
    process.exit(2);
  }
  return n;
}

/** True when nothing listens on 127.0.0.1:`p` yet (a Mosquitto on 1883, another demo on 8080…). */
function portFree(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(p, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * The port to use: the one asked for, else the default while it is free, else a free
 * one (0), said in the log: `npm start` must work where another broker holds 1883.
 */
async function choosePort(value: string | undefined, def: number, name: string, logger: { warn: (o: object, m: string) => void }): Promise<number> {
  if (value !== undefined) return port(value, def, name);
  if (await portFree(def)) return def;
  logger.warn({ port: def, option: `--${name}` }, `port ${def} is already in use (another broker or demo?): the hub takes a free port instead; pass --${name} N to choose one`);
  return 0;
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        'data-dir': { type: 'string' },
        'mqtt-port': { type: 'string' },
        'http-port': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(HELP);
    return;
  }
  const dataDir = path.resolve(args['data-dir'] ?? 'data/demo');
  const logger = createLogger({ pretty: true, level: args['log-level'] ?? 'info' });

  const sim = new ModbusTcpSimulator(new Map<number, SimDevice>([[1, new FloodLevelSensor()], [2, new TrafficSignalController()]]));
  await sim.start();
  logger.info({ port: sim.port }, 'simulated Modbus TCP devices listening (unit 1: flood-level-sensor, unit 2: traffic-signal-controller)');

  const hub = await startHub({
    dataDir: path.join(dataDir, 'hub'),
    logger: logger.child({ side: 'hub' }),
    mqttPort: await choosePort(args['mqtt-port'], 1883, 'mqtt-port', logger),
    httpPort: await choosePort(args['http-port'], 8080, 'http-port', logger),
    // The real flow, even on loopback: every client logs in, every topic is guarded.
    auth: { mode: 'required' },
  });
  const admin = await hub.identity.createApiToken({ name: 'demo-operator', role: 'admin' }, { actor: 'demo' });
  console.log(`hub api: http://127.0.0.1:${hub.httpPort}   (curl -H 'authorization: Bearer ${admin.token}' http://127.0.0.1:${hub.httpPort}/api/v1/gateways)`);
  console.log(`console: http://127.0.0.1:${hub.httpPort}/console/   (sign in with the token above; metrics: /metrics, API document: /api/v1/openapi.json)`);
  console.log(`hub mqtt: mqtt://127.0.0.1:${hub.mqttPort}`);

  // Operator: a one-time claim for the cabinet's gateway (bound to its id, so a re-run re-provisions it).
  const claim = await hub.identity.createClaim({ site: 'demo-riverside', gatewayId: 'gw-demo-01', ttlS: 3600 }, { actor: 'demo-operator' });
  console.log(`operator: claim ${claim.claim.id} for site demo-riverside: ${claim.token}`);
  // Technician: ioc-edge provision --hub … --claim … (the same command function, output as they would see it).
  const gatewayDir = path.join(dataDir, 'gateway');
  const rc = await provision.run(['--hub', `mqtt://127.0.0.1:${hub.mqttPort}`, '--claim', claim.token, '--gateway-id', 'gw-demo-01', '--data-dir', gatewayDir, '--location', 'Cabinet 12, Riverside Rd'], { out: process.stdout, err: process.stderr });
  if (rc !== 0) throw new Error('provisioning failed');
  hub.events.on('batch', ({ gateway, seq, readings, duplicate, historical }) => {
    const sample = readings.slice(0, 4).map((r) => `${r.device}.${r.point}=${typeof r.value === 'number' ? +r.value.toFixed(3) : String(r.value)}`).join(' ');
    const tag = duplicate ? ' (replay, dropped)' : historical ? ' (backlog)' : '';
    console.log(`${new Date().toISOString().slice(11, 23)} hub ← ${gateway} #${seq}: ${readings.length} readings${tag}  ${sample}${readings.length > 4 ? ' …' : ''}`);
  });
  hub.events.on('event', ({ gateway, event }) => console.log(`${new Date().toISOString().slice(11, 23)} hub ← ${gateway} event ${event.type}: ${event.message}`));

  const gateway = await startGateway({
    source: '<demo>',
    logger: logger.child({ side: 'gateway' }),
    config: {
      gatewayId: 'gw-demo-01',
      dataDir: gatewayDir,
      // No secret here: the gateway logs in with the credential provisioning stored (hub-credential.json, 0600).
      hub: { url: `mqtt://127.0.0.1:${hub.mqttPort}` },
      buses: [{ id: 'cabinet-lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }],
      devices: [
        { id: 'flood-1', bus: 'cabinet-lan', unitId: 1, profile: 'flood-level-sensor' },
        { id: 'tsc-1', bus: 'cabinet-lan', unitId: 2, profile: 'traffic-signal-controller' },
      ],
      uplink: { statusIntervalS: 10 },
    },
  });

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      console.error('shutdown took too long; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    await gateway.stop();
    await hub.stop();
    await sim.stop();
    logger.info('stopped cleanly');
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  const e = err as { code?: string; message?: string; port?: number };
  if (e.code === 'EADDRINUSE') console.error(`port ${e.port ?? ''} is already in use: pass --mqtt-port 0 --http-port 0 to pick free ports`);
  else console.error(e.message ?? String(err));
  process.exit(1);
});
