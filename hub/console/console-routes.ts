/**
 * Serves the operator console: the static files of this folder (HTML, CSS
 * and browser ES modules named `*.client.js`; no build step) under
 * `/console/`, and `/` redirects there. The files are public — they hold
 * no data; the console asks for an API token and sends it with every API
 * call. Files are read once at start and served from memory with an ETag
 * and a strict Content-Security-Policy (same-origin scripts, no inline code).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** Folder of the console's files. */
export const CONSOLE_DIR: string = fileURLToPath(new URL('.', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};
const SERVED = /^[a-z0-9-]+(\.client\.js|\.html|\.css|\.svg|\.ico)$/;
const HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Reads the console's files (name → content); exposed for tests. */
export function loadConsoleAssets(dir: string = CONSOLE_DIR): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    if (!SERVED.test(name)) continue;
    const body = readFileSync(path.join(dir, name));
    assets.set(name, { body, type: TYPES[path.extname(name)] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
  }
  return assets;
}

/** Adds the console routes to `app`. */
export function registerConsoleRoutes(app: FastifyInstance, opts: { dir?: string } = {}): void {
  const assets = loadConsoleAssets(opts.dir);
  const hide = { hide: true };
  app.get('/', { config: { public: true }, schema: hide }, async (_req, reply) => reply.redirect('/console/'));
  app.get('/console', { config: { public: true }, schema: hide }, async (_req, reply) => reply.redirect('/console/'));
  app.get<{ Params: { file?: string } }>('/console/:file', { config: { public: true }, schema: hide }, async (req, reply) => {
    const name = req.params.file || 'index.html';
    const asset = assets.get(name);
    if (!asset) return reply.status(404).send({ error: { code: 'HUB_ERR_NOT_FOUND', message: `no console file '${name}' (HUB_ERR_NOT_FOUND)` } });
    void reply.headers({ ...HEADERS, etag: asset.etag, 'content-type': asset.type });
    if (req.headers['if-none-match'] === asset.etag) return reply.status(304).send();
    return reply.send(asset.body);
  });
}
