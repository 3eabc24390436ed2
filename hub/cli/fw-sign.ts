/**
 * `ioc-edge fw keygen` and `ioc-edge fw sign`: Ed25519 firmware signing on
 * the release machine (no hub needed). The private key stays in a PEM file
 * (mode 0600); the public key, printed as base64 of its 32 bytes, goes into
 * the gateways' `firmware.trustedKeys` (and the hub's, if it checks).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { isIocError } from '../../contract/index.js';
import { buildManifest, DEFAULT_CHUNK_SIZE, generateSigningKey, parsePrivateKey, signManifest } from '../../firmware-bridge/index.js';
import type { Command, CommandIo } from './command.js';
import { parse } from './parse.js';

function fail(io: CommandIo, e: unknown): number {
  io.err.write(`${isIocError(e) ? e.message : String(e)}\n`);
  return 1;
}

const KEYGEN_HELP = `Usage: ioc-edge fw keygen --out KEY.pem

Creates an Ed25519 firmware signing key. The private key is written to
KEY.pem (mode 0600, refused if the file exists); the public key and its id are
printed: put the public key in every gateway's firmware.trustedKeys.`;

export const fwKeygen: Command = {
  name: 'fw keygen',
  summary: 'create an Ed25519 firmware signing key',
  async run(args, io) {
    const p = parse(args, { out: { type: 'string' } }, KEYGEN_HELP, io);
    if ('exit' in p) return p.exit;
    if (!p.values.out) {
      io.err.write(`missing --out\n${KEYGEN_HELP}\n`);
      return 2;
    }
    try {
      const k = generateSigningKey();
      await writeFile(p.values.out, k.privateKeyPem, { mode: 0o600, flag: 'wx' });
      io.out.write(`private key: ${p.values.out}\nkey id:      ${k.keyId}\npublic key:  ${k.publicKey}\n`);
      return 0;
    } catch (e) {
      return fail(io, e);
    }
  },
};

const SIGN_HELP = `Usage: ioc-edge fw sign --key KEY.pem --image FILE --model MODEL --version VERSION
                        [--version-code N] [--chunk-size BYTES] [--description TEXT] [--out FILE]

Writes the signed manifest of an image (size and SHA-256 from the file,
signature over its canonical JSON) to --out (default FILE.manifest.json).
MODEL is the device profile's model; --version-code is the number a numeric
version point reads after the update.`;

export const fwSign: Command = {
  name: 'fw sign',
  summary: 'sign a firmware image: write its manifest with an Ed25519 signature',
  async run(args, io) {
    const p = parse(args, {
      key: { type: 'string' }, image: { type: 'string' }, model: { type: 'string' }, version: { type: 'string' },
      'version-code': { type: 'string' }, 'chunk-size': { type: 'string' }, description: { type: 'string' }, out: { type: 'string' },
    }, SIGN_HELP, io);
    if ('exit' in p) return p.exit;
    const v = p.values;
    const missing = (['key', 'image', 'model', 'version'] as const).filter((k) => !v[k]);
    if (missing.length > 0) {
      io.err.write(`missing ${missing.map((k) => `--${k}`).join(', ')}\n${SIGN_HELP}\n`);
      return 2;
    }
    const num = (s: string | undefined, name: string): number | undefined | null => {
      if (s === undefined) return undefined;
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0) {
        io.err.write(`${name}: '${s}' is not a whole number\n`);
        return null;
      }
      return n;
    };
    const versionCode = num(v['version-code'], '--version-code');
    const chunkSize = num(v['chunk-size'], '--chunk-size');
    if (versionCode === null || chunkSize === null) return 2;
    try {
      const { key, keyId } = parsePrivateKey(await readFile(v.key!, 'utf8'));
      const image = await readFile(v.image!);
      const manifest = buildManifest(image, {
        model: v.model!, version: v.version!, chunkSize: chunkSize ?? DEFAULT_CHUNK_SIZE,
        ...(versionCode !== undefined ? { versionCode } : {}), ...(v.description ? { description: v.description } : {}),
      });
      const signed = signManifest(manifest, key, keyId);
      const out = v.out ?? `${v.image}.manifest.json`;
      await writeFile(out, `${JSON.stringify(signed, null, 2)}\n`);
      io.out.write(`${out}: ${manifest.model} ${manifest.version}, ${manifest.size} bytes, sha256 ${manifest.sha256}, signed by key ${keyId}\n`);
      return 0;
    } catch (e) {
      return fail(io, e);
    }
  },
};
