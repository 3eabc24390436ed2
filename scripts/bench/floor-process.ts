/**
 * The durable floor of bench:hub: plain Aedes (defaults, no authentication)
 * plus what anyone would add to make a QoS 1 PUBACK mean "on disk" — an
 * append-only journal of every telemetry payload, fdatasync'd before the
 * PUBACK. The append runs in `authorizePublish` (Aedes writes the PUBACK when
 * that hook calls back); payloads waiting at the same moment share one write
 * and one fdatasync (group commit), as any sane journal does. No parsing, no
 * dedupe, no index: the least a durable broker must do.
 *
 *   node --import tsx scripts/bench/floor-process.ts JOURNAL_FILE
 * Prints {"ready": true, "mqttPort", "pid"}; answers "stats" on stdin with
 * {"rss", "syncs", "appended"}; stops on SIGTERM or stdin close.
 */
import net from 'node:net';
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Aedes } from 'aedes';

const [file] = process.argv.slice(2);
if (!file) {
  console.error('usage: floor-process.ts JOURNAL_FILE');
  process.exit(2);
}
const journal = await open(file, 'a');
let waiting: Array<{ buf: Buffer; done: (err: Error | null) => void }> = [];
let flushing = false;
let syncs = 0;
let appended = 0;

/** Writes every waiting payload (length-prefixed) in one write, then one fdatasync; then answers them all. */
async function flush(): Promise<void> {
  flushing = true;
  while (waiting.length > 0) {
    const group = waiting;
    waiting = [];
    const parts: Buffer[] = [];
    for (const w of group) {
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32BE(w.buf.length);
      parts.push(len, w.buf);
    }
    try {
      await journal.write(Buffer.concat(parts));
      await journal.datasync();
      syncs++;
      appended += group.length;
      for (const w of group) w.done(null);
    } catch (err) {
      for (const w of group) w.done(err as Error);
    }
  }
  flushing = false;
}

const aedes = await Aedes.createBroker({
  authorizePublish(client, packet, cb) {
    if (!client || packet.qos === 0 || !packet.topic.endsWith('/telemetry')) return cb(null);
    waiting.push({ buf: packet.payload as Buffer, done: cb });
    if (!flushing) {
      flushing = true;
      setImmediate(() => void flush());
    }
  },
});
const server = net.createServer(aedes.handle);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const say = (o: unknown): boolean => process.stdout.write(`${JSON.stringify(o)}\n`);
say({ ready: true, mqttPort: (server.address() as net.AddressInfo).port, pid: process.pid });
const stop = (): void => {
  server.close();
  aedes.close(() => void journal.close().finally(() => process.exit(0)));
};
process.once('SIGTERM', stop);
const rl = createInterface({ input: process.stdin });
rl.on('close', stop);
rl.on('line', (line) => {
  if (line.trim() === 'stats') say({ rss: process.memoryUsage().rss, syncs, appended });
});
