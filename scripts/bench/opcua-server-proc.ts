/**
 * Child process of bench:opcua-recovery: the camera OPC UA server. Prints
 * {"ready":true,"endpointUrl":…}; on "restart" stops the server (prints
 * {"stopped":t}) and starts it again on the same port with the same
 * certificate (prints {"up":t}, t = Date.now() once it listens); "stop" and
 * "start" do the two halves apart (bench:recovery keeps it down a while);
 * stdin close stops it. Args: DIR (HOME and the PKI) [PORT].
 */
import path from 'node:path';
import { createInterface } from 'node:readline';
import { OpcuaCameraServer } from '../sim/opcua-camera-server.js';

const dir = process.argv[2] as string;
const port = Number(process.argv[3] ?? 0);
process.env.HOME = dir;
const server = new OpcuaCameraServer({ pkiDir: path.join(dir, 'server-pki'), tickMs: 50, port });
await server.start();
console.log(JSON.stringify({ ready: true, endpointUrl: server.endpointUrl, port: server.port, up: Date.now() }));
let busy = Promise.resolve();
createInterface({ input: process.stdin })
  .on('line', (cmd) => {
    if (cmd !== 'restart' && cmd !== 'stop' && cmd !== 'start') return;
    busy = busy.then(async () => {
      if (cmd !== 'start') {
        await server.stop();
        console.log(JSON.stringify({ stopped: Date.now() }));
      }
      if (cmd !== 'stop') {
        await server.start();
        console.log(JSON.stringify({ up: Date.now() }));
      }
    });
  })
  .on('close', () => void busy.then(() => server.stop()).then(() => process.exit(0)));
