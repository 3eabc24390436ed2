/**
 * Child process of bench:rtu: simulated SDM120 meters on an RS-485 line
 * behind one end of a pty pair, answering with 9600-baud wire timing
 * (RtuSlaveLine). Prints {"ready":true}; on "stats" prints its counters;
 * stops when stdin closes. Args: PTY_PATH BAUD UNITS
 */
import { createInterface } from 'node:readline';
import { EastronSdm120 } from '../sim/rtu-devices.js';
import { RtuSlaveLine } from '../sim/rtu-slave.js';
import { attachToSerialPort } from '../sim/serial-adapters.js';
import type { SimDevice } from '../sim/field-devices.js';

const [path, baudText, unitsText] = process.argv.slice(2);
const baudRate = Number(baudText ?? 9600);
const units = Number(unitsText ?? 4);
const devices = new Map<number, SimDevice>();
for (let u = 1; u <= units; u++) devices.set(u, new EastronSdm120(u, u));
const line = new RtuSlaveLine(devices, { baudRate });
const link = await attachToSerialPort(path as string, line, baudRate);
const ticker = setInterval(() => {
  const t = Date.now();
  for (const d of devices.values()) d.tick(t);
}, 200);
console.log(JSON.stringify({ ready: true }));
createInterface({ input: process.stdin })
  .on('line', (cmd) => {
    if (cmd === 'stats') console.log(JSON.stringify({ stats: true, silenceViolations: line.silenceViolations, crcErrors: line.crcErrors, answered: Object.fromEntries(line.answered) }));
  })
  .on('close', () => {
    clearInterval(ticker);
    line.close();
    void link.close().then(() => process.exit(0));
  });
