/**
 * Secrets of pushed configurations at rest (issue 13): every secret value
 * (contract `SECRET_KEYS`: `password`) of a stored desired document is sealed
 * with AES-256-GCM (NIST SP 800-38D; 96-bit random IV, 128-bit tag) under a
 * 32-byte key kept in a file of its own, mode 0600, created on the first
 * start (default `<dataDir>/secrets.key`, `hub run --secrets-key FILE`).
 *
 * A sealed value is one string: `sealed:v1:<setIn>:<base64url(iv ‖ tag ‖ ciphertext)>`,
 * where `setIn` is the configuration version in which that secret was last
 * set or changed; readers see `redacted:v<setIn>` (config-service.ts), so a
 * changed password shows in a diff while nothing derived from it leaves the
 * hub. The additional authenticated data binds a ciphertext to its gateway,
 * version and place in the document: a sealed value copied elsewhere does not
 * open. Without the key file the stored secrets cannot be recovered (back it
 * up with the data directory, separately from database dumps).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { IocError, isSecretKey } from '../../contract/index.js';
import type { Logger } from '../../lib/index.js';

const PREFIX = 'sealed:v1:';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A secret as {@link openSecrets} finds it: its value and the version it was set in. */
export interface OpenSecret {
  value: string;
  setIn: number;
}

/** Where a secret sits in a document: object keys, and `[id]` for array items with an `id` (stable when items move). */
export type SecretPath = string;

/**
 * Reads the key file, or creates it (32 random bytes, base64, mode 0600,
 * never overwritten). A key file readable by others is tightened to 0600
 * with a warning.
 * @throws IocError HUB_ERR_SECRET_KEY when it cannot be read, created or is not 32 bytes.
 */
export async function loadSecretKey(file: string, logger: Logger): Promise<Buffer> {
  const bad = (why: string, cause?: unknown): IocError => new IocError('HUB_ERR_SECRET_KEY', `secrets key file ${file}: ${why}`, { ...(cause ? { cause } : {}), context: { file } });
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const fh = await open(file, 'wx', 0o600);
    try {
      await fh.writeFile(`${randomBytes(KEY_BYTES).toString('base64')}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    logger.info({ file }, 'secrets key file created: back it up with the data directory; without it pushed passwords cannot be recovered');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw bad(`cannot be created: ${(err as Error).message}`, err);
  }
  let text: string;
  try {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0) {
      await chmod(file, 0o600);
      logger.warn({ file, mode: (st.mode & 0o777).toString(8) }, 'secrets key file was readable by others; tightened to 0600');
    }
    text = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    throw bad(`cannot be read: ${(err as Error).message}`, err);
  }
  const key = Buffer.from(text, 'base64');
  if (key.length !== KEY_BYTES || key.toString('base64') !== text) throw bad(`does not hold a base64 key of ${KEY_BYTES} bytes`);
  return key;
}

/** True when `v` is a sealed secret. */
export function isSealed(v: unknown): v is string {
  return typeof v === 'string' && v.startsWith(PREFIX);
}

/** The version a sealed secret was set in (0 when malformed). */
export function sealedSetIn(v: string): number {
  const n = Number(v.slice(PREFIX.length).split(':', 1)[0]);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/**
 * Calls `fn` for every secret of a JSON document and returns a copy with each
 * replaced by what `fn` returns. Iterative over a copy: documents are nesting-capped before they get here.
 */
export function mapSecrets<T>(doc: T, fn: (value: string, at: SecretPath) => string): T {
  const copy = structuredClone(doc) as unknown;
  const stack: Array<[unknown, SecretPath]> = [[copy, '']];
  while (stack.length > 0) {
    const [node, at] = stack.pop()!;
    if (Array.isArray(node)) {
      node.forEach((item, i) => {
        const id = item !== null && typeof item === 'object' && typeof (item as { id?: unknown }).id === 'string' ? `[${(item as { id: string }).id}]` : `[${i}]`;
        stack.push([item, `${at}${id}`]);
      });
    } else if (node !== null && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      for (const [k, v] of Object.entries(o)) {
        if (isSecretKey(k, v)) o[k] = fn(v as string, `${at}/${k}`);
        else if (v !== null && typeof v === 'object') stack.push([v, `${at}/${k}`]);
      }
    }
  }
  return copy as T;
}

/** AES-256-GCM sealing of configuration secrets under the hub's key. */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== KEY_BYTES) throw new IocError('HUB_ERR_SECRET_KEY', `a secrets key has ${KEY_BYTES} bytes, not ${key.length}`);
  }

  private static aad(gateway: string, version: number, at: SecretPath): Buffer {
    return Buffer.from(`ioc-edge/config-secret/v1\n${gateway}\n${version}\n${at}`, 'utf8');
  }

  /** Seals one secret of `gateway`'s version `version` found at `at`, set in version `setIn`. */
  seal(value: string, ctx: { gateway: string; version: number; at: SecretPath; setIn: number }): string {
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(SecretBox.aad(ctx.gateway, ctx.version, ctx.at));
    const ct = Buffer.concat([c.update(value, 'utf8'), c.final()]);
    return `${PREFIX}${ctx.setIn}:${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url')}`;
  }

  /**
   * Opens one sealed secret.
   * @throws IocError HUB_ERR_SECRET_KEY when it does not open (another key, or moved or changed).
   */
  open(sealed: string, ctx: { gateway: string; version: number; at: SecretPath }): OpenSecret {
    const rest = sealed.slice(PREFIX.length);
    const colon = rest.indexOf(':');
    const setIn = sealedSetIn(sealed);
    const raw = Buffer.from(rest.slice(colon + 1), 'base64url');
    try {
      if (colon < 0 || setIn === 0 || raw.length < IV_BYTES + TAG_BYTES) throw new Error('malformed');
      const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
      d.setAAD(SecretBox.aad(ctx.gateway, ctx.version, ctx.at));
      d.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const value = Buffer.concat([d.update(raw.subarray(IV_BYTES + TAG_BYTES)), d.final()]).toString('utf8');
      return { value, setIn };
    } catch (err) {
      throw new IocError('HUB_ERR_SECRET_KEY', `the secret at ${ctx.at} of gateway ${ctx.gateway}'s configuration version ${ctx.version} does not open with this hub's secrets key: restore the key file it was stored with, or push the configuration again`, { cause: err, context: { gateway: ctx.gateway, version: ctx.version, pointer: ctx.at } });
    }
  }

  /**
   * Seals the plaintext secrets of version `version` of a gateway's document.
   * A secret equal to the one at the same place in the previous version keeps
   * that one's `setIn`; any other is marked as set in `version`.
   */
  sealDocument<T>(doc: T, ctx: { gateway: string; version: number; previous?: ReadonlyMap<SecretPath, OpenSecret> }): T {
    return mapSecrets(doc, (value, at) => {
      if (isSealed(value)) return value;
      const prev = ctx.previous?.get(at);
      return this.seal(value, { gateway: ctx.gateway, version: ctx.version, at, setIn: prev && prev.value === value ? prev.setIn : ctx.version });
    });
  }

  /** The document with its secrets opened (what the gateway receives). @throws IocError HUB_ERR_SECRET_KEY */
  openDocument<T>(doc: T, ctx: { gateway: string; version: number }): T {
    return mapSecrets(doc, (value, at) => (isSealed(value) ? this.open(value, { ...ctx, at }).value : value));
  }

  /** Every secret of a stored document, opened, by place. @throws IocError HUB_ERR_SECRET_KEY */
  secretsOf(doc: unknown, ctx: { gateway: string; version: number }): Map<SecretPath, OpenSecret> {
    const out = new Map<SecretPath, OpenSecret>();
    mapSecrets(doc, (value, at) => {
      out.set(at, isSealed(value) ? this.open(value, { ...ctx, at }) : { value, setIn: ctx.version });
      return value;
    });
    return out;
  }
}

/** The document as readers see it: every secret as `redacted:v<version it was set in>` (no digit of it or of a hash of it). */
export function redactSecrets<T>(doc: T): T {
  return mapSecrets(doc, (value) => (isSealed(value) && sealedSetIn(value) > 0 ? `redacted:v${sealedSetIn(value)}` : 'redacted'));
}
