/**
 * The operator commands' HTTP client for the hub API: bearer token, JSON,
 * and TLS verified against a given CA file (node:https, since the global
 * fetch cannot take a CA without an extra package). Settings come from
 * options or the environment: IOC_EDGE_API, IOC_EDGE_TOKEN, IOC_EDGE_CA.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { ERRORS, IocError, type ErrorCode } from '../../contract/index.js';

/**
 * The code of a refused API call as the CLI reports it: the hub's own code where
 * it named one of the catalogue (it is the cause the operator needs, e.g.
 * FW_ERR_NO_TARGETS), else HUB_ERR_BAD_REQUEST.
 */
export function hubCode(code: string | undefined): ErrorCode {
  return code !== undefined && Object.hasOwn(ERRORS, code) ? (code as ErrorCode) : 'HUB_ERR_BAD_REQUEST';
}

/** Where the API is and how to authenticate. */
export interface ApiTarget {
  url: string;
  token?: string;
  caFile?: string;
}

/** The common options of operator commands, for parseArgs. */
export const API_OPTIONS = {
  api: { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
} as const;

/** Help lines for {@link API_OPTIONS}. */
export const API_HELP = `  --api URL      hub API address (env IOC_EDGE_API; default http://127.0.0.1:8080)
  --token TOKEN  API token (env IOC_EDGE_TOKEN)
  --ca FILE      PEM file of the CA of the hub's certificate (env IOC_EDGE_CA)`;

/** The target from parsed options and the environment. */
export function apiTarget(v: { api?: string; token?: string; ca?: string }, env: NodeJS.ProcessEnv = process.env): ApiTarget {
  const token = v.token ?? env.IOC_EDGE_TOKEN;
  const caFile = v.ca ?? env.IOC_EDGE_CA;
  return { url: v.api ?? env.IOC_EDGE_API ?? 'http://127.0.0.1:8080', ...(token ? { token } : {}), ...(caFile ? { caFile } : {}) };
}

/** Calls the API; resolves with the JSON body of a 2xx answer, rejects with the API's error message otherwise. */
export async function callApi<T>(target: ApiTarget, method: string, path: string, body?: unknown): Promise<T> {
  const url = new URL(path, target.url);
  const ca = target.caFile ? await readFile(target.caFile) : undefined;
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise<T>((resolve, reject) => {
    const req = lib.request(url, {
      method,
      headers: { accept: 'application/json', ...(target.token ? { authorization: `Bearer ${target.token}` } : {}), ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
      ...(ca ? { ca } : {}),
      timeout: 15_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {
          json = null;
        }
        if ((res.statusCode ?? 500) >= 300) {
          const e = (json as { error?: { code?: string; message?: string; context?: { problems?: unknown[] } } } | null)?.error;
          const problems = e?.context?.problems;
          reject(new IocError(hubCode(e?.code), `${method} ${url.pathname}: HTTP ${res.statusCode}: ${e?.message ?? text.slice(0, 200)}`, { context: { status: res.statusCode, code: e?.code, ...(problems ? { problems } : {}) } }));
        } else resolve(json as T);
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 15 s')));
    req.on('error', (err) => reject(new IocError('HUB_ERR_BAD_REQUEST', `cannot reach the hub API at ${target.url}: ${err.message}`, { cause: err })));
    req.end(payload);
  });
}
