/**
 * A plain Aedes broker (defaults, no hooks, no ingest) in its own process: the
 * baseline of bench:hub. Prints {"ready": true, "mqttPort", "pid"}; answers
 * "stats" on stdin like secure-hub-process.ts; stops on SIGTERM or stdin close.
 */
import net from 'node:net';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { Aedes } from 'aedes';

const aedes = await Aedes.createBroker();
const server = net.createServer(aedes.handle);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const say = (o: unknown): boolean => process.stdout.write(`${JSON.stringify(o)}\n`);
say({ ready: true, mqttPort: (server.address() as net.AddressInfo).port, pid: process.pid });
const stop = (): void => {
  server.close();
  aedes.close(() => process.exit(0));
};
process.once('SIGTERM', stop);
const rl = createInterface({ input: process.stdin });
rl.on('close', stop);
rl.on('line', (line) => {
  if (line.trim() === 'stats') {
    const m = process.memoryUsage();
    say({ rss: m.rss, heapUsed: m.heapUsed, clients: aedes.connectedClients });
  }
});
