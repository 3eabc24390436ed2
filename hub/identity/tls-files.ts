/**
 * TLS material for the hub's listeners, read from files (PEM): the server
 * certificate (with its chain) and private key. Loaded once at start and
 * checked by building a secure context, so a key that does not belong to the
 * certificate fails at start-up with the file names, not at the first
 * handshake.
 */
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import { IocError } from '../../contract/index.js';

/** Where the hub's TLS files are. */
export interface TlsFiles {
  /** PEM certificate, leaf first, then intermediates. */
  certFile: string;
  /** PEM private key of the certificate. */
  keyFile: string;
}

/** Loaded TLS material, usable by `tls.createServer` and fastify's `https`. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** Reads and checks the files; HUB_ERR_TLS_CONFIG names the file and the reason. */
export async function loadTlsFiles(files: TlsFiles): Promise<TlsMaterial> {
  const read = async (file: string, what: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new IocError('HUB_ERR_TLS_CONFIG', `cannot read TLS ${what} ${file}: ${(err as Error).message}`, { cause: err, context: { file } });
    }
  };
  const cert = await read(files.certFile, 'certificate');
  const key = await read(files.keyFile, 'private key');
  try {
    tls.createSecureContext({ cert, key });
  } catch (err) {
    throw new IocError('HUB_ERR_TLS_CONFIG', `TLS certificate ${files.certFile} and key ${files.keyFile} cannot be used together: ${(err as Error).message}`, { cause: err, context: { file: files.certFile } });
  }
  return { cert, key };
}

/** True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}
