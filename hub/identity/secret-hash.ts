/**
 * Secrets at rest: every secret the hub issues (gateway credentials, claim
 * tokens, API tokens, consumer passwords) is stored only as an scrypt hash
 * (RFC 7914) in the self-describing form `scrypt$N$r$p$salt$hash`, so the
 * cost can be raised later without invalidating stored hashes.
 *
 * The secrets are machine-generated with 130–256 bits of entropy, so the work
 * factor is not what protects them (no guessing attack on 2^130 candidates is
 * helped or hindered by it); it is chosen for reconnect storms — every gateway
 * of a fleet logging in again after a hub restart costs one verification.
 * N = 2^10 is ≈ 1.4 ms of one core (≈ 700 logins/s on two cores); measured
 * with N = 2^12 the hub managed 158 logins/s. See docs/security.md.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { CLAIM_ALPHABET } from '../../contract/index.js';

/** scrypt cost parameters (RFC 7914 §2). */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** Default cost: 1 MiB of memory, ≈ 1.4 ms per hash on this class of machine. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 1024, r: 8, p: 1 };

const KEY_LEN = 32;

function derive(secret: string, salt: Buffer, p: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, KEY_LEN, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Hashes `secret` with a fresh 16-byte salt. */
export async function hashSecret(secret: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(secret, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** True when `secret` matches `encoded` (constant-time compare). False for a malformed hash. */
export async function verifySecret(secret: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((x) => Number.isInteger(x) && x > 0)) return false;
  const want = Buffer.from(parts[5]!, 'base64url');
  const got = await derive(secret, Buffer.from(parts[4]!, 'base64url'), { N, r, p });
  return want.length === got.length && timingSafeEqual(want, got);
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
