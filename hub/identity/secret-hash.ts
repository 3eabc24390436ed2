/**
 * Secrets at rest: every secret the hub issues (gateway credentials, claim
 * tokens, API tokens, consumer passwords) is stored only as a hash, in a
 * self-describing form, so the scheme can change without invalidating stored
 * hashes:
 *
 * - `sha256$<digest>` (the default): SHA-256 of a domain tag and the secret.
 *   Every secret the hub issues is machine-generated with 130–256 bits of
 *   entropy, so no guessing attack is made feasible by a fast hash (2^130
 *   candidates at any speed), and a salt adds nothing where no two secrets
 *   are alike and no table of candidates can exist. This is how API tokens
 *   are stored by services that issue them (GitHub's, for one). It costs
 *   about a microsecond, so a fleet logging in again after a hub restart
 *   costs no thread-pool work at all (issue 14.12, bench:reconnect-storm).
 * - `scrypt$N$r$p$salt$hash` (RFC 7914): what hubs before this scheme stored,
 *   still verified; a login with such a hash upgrades it to the default
 *   (identity-service.ts). A deployment may still choose scrypt for new
 *   secrets (`startHub({auth: {scrypt}})`).
 *
 * See docs/security.md ("Why a fast hash").
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { CLAIM_ALPHABET } from '../../contract/index.js';

/** scrypt cost parameters (RFC 7914 §2). */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** scrypt cost of hubs before the fast hash: 1 MiB of memory, ≈ 1.4 ms per hash on this class of machine. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 1024, r: 8, p: 1 };

/** Domain tag hashed before the secret: a digest here equals no plain SHA-256 of the same string elsewhere. */
const SHA_TAG = 'ioc-edge secret v1\0';
/** Prefix of a stored hash of the fast scheme. */
const SHA_PREFIX = 'sha256$';

function sha256Digest(secret: string): Buffer {
  return createHash('sha256').update(SHA_TAG).update(secret, 'utf8').digest();
}

const KEY_LEN = 32;

function derive(secret: string, salt: Buffer, p: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, KEY_LEN, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/**
 * Hashes a generated `secret`: with scrypt and a fresh 16-byte salt when
 * `params` are given, else with the fast `sha256$` scheme.
 */
export async function hashSecret(secret: string, params?: ScryptParams): Promise<string> {
  if (!params) return `${SHA_PREFIX}${sha256Digest(secret).toString('base64url')}`;
  const salt = randomBytes(16);
  const key = await derive(secret, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** True when `secret` matches `encoded` (either scheme; constant-time compare). False for a malformed hash. */
export async function verifySecret(secret: string, encoded: string): Promise<boolean> {
  if (encoded.startsWith(SHA_PREFIX)) {
    const want = Buffer.from(encoded.slice(SHA_PREFIX.length), 'base64url');
    const got = sha256Digest(secret);
    return want.length === got.length && timingSafeEqual(want, got);
  }
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((x) => Number.isInteger(x) && x > 0)) return false;
  const want = Buffer.from(parts[5]!, 'base64url');
  const got = await derive(secret, Buffer.from(parts[4]!, 'base64url'), { N, r, p });
  return want.length === got.length && timingSafeEqual(want, got);
}

/** True when `encoded` was hashed by a scheme other than the one `params` choose (see {@link hashSecret}): a login may upgrade it. */
export function hashOutdated(encoded: string, params?: ScryptParams): boolean {
  return params ? !encoded.startsWith(`scrypt$${params.N}$${params.r}$${params.p}$`) : !encoded.startsWith(SHA_PREFIX);
}

/** A random secret of `bytes` bytes, base64url (43 characters for 32 bytes). */
export function generateSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** `length` random characters of the claim alphabet (5 bits each; rejection-free since 256 % 32 = 0). */
export function randomBase32(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += CLAIM_ALPHABET[bytes[i]! & 31];
  return out;
}

/** SHA-256 of a secret, for the in-memory "already verified" cache (never stored). */
export function fingerprint(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}
