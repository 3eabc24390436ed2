/**
 * `ioc-edge fw upload`: sends an image (application/octet-stream, with a
 * progress bar on a terminal) and its signed manifest to the hub API
 * (operator role). The hub stores the image by its SHA-256 and checks the
 * manifest against it.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { IocError, isIocError, validateSignedManifest } from '../../contract/index.js';
import { sha256Hex } from '../../firmware-bridge/index.js';
import { API_HELP, API_OPTIONS, apiTarget, callApi, hubCode, type ApiTarget } from './api-client.js';
import type { Command, CommandIo } from './command.js';
import { ProgressLine, bar } from './fw-progress.js';
import { parse } from './parse.js';

/** PUTs raw bytes to the API in 64 KiB pieces, reporting bytes sent; resolves with the JSON answer. */
export async function putBytes<T>(target: ApiTarget, path: string, body: Buffer, onProgress?: (sent: number, total: number) => void): Promise<T> {
  const url = new URL(path, target.url);
  const ca = target.caFile ? await readFile(target.caFile) : undefined;
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise<T>((resolve, reject) => {
    const req = lib.request(url, {
      method: 'PUT',
      headers: { accept: 'application/json', 'content-type': 'application/octet-stream', 'content-length': body.length, ...(target.token ? { authorization: `Bearer ${target.token}` } : {}) },
      ...(ca ? { ca } : {}),
      timeout: 120_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        type Answer = { error?: { message?: string; code?: string } } | null;
        let json: Answer = null;
        try {
          json = text ? (JSON.parse(text) as Answer) : null;
        } catch {
          json = null;
        }
        if ((res.statusCode ?? 500) >= 300) reject(new IocError(hubCode(json?.error?.code), `PUT ${url.pathname}: HTTP ${res.statusCode}: ${json?.error?.message ?? text.slice(0, 200)}`, { context: { status: res.statusCode, code: json?.error?.code } }));
        else resolve(json as T);
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 120 s')));
    req.on('error', (err) => reject(new IocError('HUB_ERR_BAD_REQUEST', `cannot reach the hub API at ${target.url}: ${err.message}`, { cause: err })));
    let sent = 0;
    const step = 65_536;
    const pump = (): void => {
      while (sent < body.length) {
        const piece = body.subarray(sent, sent + step);
        sent += piece.length;
        onProgress?.(sent, body.length);
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

const HELP = `Usage: ioc-edge fw upload --image FILE [--manifest FILE]

Uploads a firmware image and its signed manifest (default FILE.manifest.json,
as 'ioc-edge fw sign' writes it). Prints the manifest id to roll out.

${API_HELP}`;

export const fwUpload: Command = {
  name: 'fw upload',
  summary: 'upload a firmware image and its signed manifest to the hub',
  async run(args, io: CommandIo) {
    const p = parse(args, { ...API_OPTIONS, image: { type: 'string' }, manifest: { type: 'string' } }, HELP, io);
    if ('exit' in p) return p.exit;
    const v = p.values;
    if (!v.image) {
      io.err.write(`missing --image\n${HELP}\n`);
      return 2;
    }
    try {
      const image = await readFile(v.image);
      const signed = validateSignedManifest(JSON.parse(await readFile(v.manifest ?? `${v.image}.manifest.json`, 'utf8')));
      if (sha256Hex(image) !== signed.manifest.sha256) throw new IocError('FW_ERR_INTEGRITY', `${v.image} is not the image of this manifest (SHA-256 differs)`);
      const target = apiTarget(v);
      const line = new ProgressLine(io);
      const up = await putBytes<{ sha256: string; size: number; created: boolean }>(target, '/api/v1/firmware/images', image, (sent, total) => line.update(`upload ${bar(sent, total)} ${sent}/${total} bytes`));
      line.done();
      io.out.write(`image ${up.sha256} (${up.size} bytes)${up.created ? '' : ', already stored'}\n`);
      const m = await callApi<{ id: string; model: string; version: string }>(target, 'POST', '/api/v1/firmware/manifests', signed);
      io.out.write(`manifest ${m.id}: ${m.model} ${m.version}\n`);
      return 0;
    } catch (e) {
      io.err.write(`${isIocError(e) ? e.message : String(e)}\n`);
      return 1;
    }
  },
};
