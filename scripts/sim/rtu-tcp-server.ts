/**
 * A serial device server (RS-485 to Ethernet converter) in "raw TCP" mode:
 * RTU frames travel unchanged over a TCP socket (no MBAP header) to an
 * {@link RtuSlaveLine}. One line, shared by whoever is connected, as on the
 * real thing. Counts connections so tests can check that a silent device
 * behind the converter never makes the gateway reconnect.
 */
import net from 'node:net';
import { once } from 'node:events';
import type { RtuSlaveLine } from './rtu-slave.js';

/** Raw RTU over TCP in front of a simulated RS-485 line. */
export class RtuTcpServer {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  /** Connections accepted since start. */
  connections = 0;
  port = 0;

  constructor(readonly line: RtuSlaveLine) {}

  async start(port = 0): Promise<void> {
    this.server = net.createServer((sock) => {
      this.connections++;
      this.sockets.add(sock);
      sock.setNoDelay(true);
      this.line.send = (data) => {
        if (!sock.destroyed) sock.write(data);
      };
      sock.on('data', (d: Buffer) => this.line.receive(d));
      sock.on('error', () => undefined);
      sock.on('close', () => this.sockets.delete(sock));
    });
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Drops every connection (converter rebooted). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
