/**
 * The gateway's small HTTP endpoint (off unless the configuration has
 * `http: {host, port}`): `GET /metrics` (Prometheus), `GET /healthz`
 * (liveness: the process answers) and `GET /readyz` (readiness: started and
 * connected to the hub; 503 with the reason otherwise). Plain node:http —
 * nothing else is served, so no framework. Bind it to loopback or a
 * management network: it has no authentication.
 */
import http from 'node:http';
import { once } from 'node:events';
import type { Logger } from '../lib/index.js';

/** Dependencies of {@link GatewayHttp}. */
export interface GatewayHttpDeps {
  host: string;
  /** 0 picks a free port. */
  port: number;
  logger: Logger;
  metrics: { text(): Promise<string>; readonly contentType: string };
  /** Readiness with the reasons it is not ready (empty = ready). */
  readiness: () => { ready: boolean; checks: Record<string, boolean> };
}

/** The HTTP endpoint service. */
export class GatewayHttp {
  private server: http.Server | null = null;

  constructor(private readonly deps: GatewayHttpDeps) {}

  /** The bound port (after start). */
  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => {
        this.deps.logger.error({ err, url: req.url }, 'http endpoint error');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'internal error' } }));
      });
    });
    server.keepAliveTimeout = 5_000;
    server.listen(this.deps.port, this.deps.host);
    await once(server, 'listening');
    this.server = server;
    this.deps.logger.info({ host: this.deps.host, port: this.port }, 'http endpoint listening (/metrics, /healthz, /readyz)');
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'only GET' } }));
      return;
    }
    if (url === '/metrics') {
      const body = await this.deps.metrics.text();
      res.writeHead(200, { 'content-type': this.deps.metrics.contentType }).end(req.method === 'HEAD' ? undefined : body);
    } else if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
    } else if (url === '/readyz') {
      const r = this.deps.readiness();
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: r.ready ? 'ready' : 'not ready', checks: r.checks }));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${url}; try /metrics, /healthz, /readyz` } }));
    }
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }
}
