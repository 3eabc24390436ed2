/**
 * Child process of bench:modbus-scale: N Modbus TCP devices, one TCP endpoint
 * each (MBAP framing, Modbus Messaging on TCP/IP Implementation Guide v1.0b),
 * answering FC 3/4 with registers that change on every request so every
 * poll yields new readings through the whole gateway path. A plain net
 * server per device (not modbus-serial's ServerTCP) keeps the simulator's own
 * CPU small on a machine the gateway and the hub share.
 * Prints {"ready":true,"ports":[…]}; "stats" prints request counts; stdin close stops.
 * Args: DEVICES
 */
import net from 'node:net';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

const devices = Number(process.argv[2] ?? 500);
let requests = 0;
const servers: net.Server[] = [];
const ports: number[] = [];

function serve(seed: number): net.Server {
  let counter = seed;
  return net.createServer((sock) => {
    sock.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 7) {
        const len = buf.readUInt16BE(4);
        if (buf.length < 6 + len) break;
        const frame = buf.subarray(0, 6 + len);
        buf = buf.subarray(6 + len);
        const fc = frame[7] as number;
        const qty = frame.readUInt16BE(10);
        if ((fc !== 3 && fc !== 4) || qty < 1 || qty > 125) {
          const ex = Buffer.from([frame[0] as number, frame[1] as number, 0, 0, 0, 3, frame[6] as number, fc | 0x80, 1]);
          sock.write(ex);
          continue;
        }
        requests++;
        counter = (counter + 1) & 0x7fff;
        const out = Buffer.alloc(9 + 2 * qty);
        frame.copy(out, 0, 0, 2);
        out.writeUInt16BE(0, 2);
        out.writeUInt16BE(3 + 2 * qty, 4);
        out[6] = frame[6] as number;
        out[7] = fc;
        out[8] = 2 * qty;
        for (let i = 0; i < qty; i++) out.writeUInt16BE((counter + i) & 0xffff, 9 + 2 * i);
        sock.write(out);
      }
    });
  });
}

for (let i = 0; i < devices; i++) {
  const s = serve(i * 7);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  servers.push(s);
  ports.push((s.address() as net.AddressInfo).port);
}
console.log(JSON.stringify({ ready: true, ports }));
createInterface({ input: process.stdin })
  .on('line', (cmd) => {
    if (cmd === 'stats') console.log(JSON.stringify({ stats: true, requests, cpu: process.cpuUsage() }));
  })
  .on('close', () => process.exit(0));
