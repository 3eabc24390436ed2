/**
 * Ed25519 firmware signing keys (RFC 8032, through node:crypto). A public
 * key travels as the base64 of its raw 32 bytes (what `firmware.trustedKeys`
 * lists); its id is the first 16 hex digits of the SHA-256 of those bytes.
 * Private keys stay in PKCS #8 PEM files on the signing machine.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { IocError } from '../contract/index.js';

/** A public key the verifier trusts. */
export interface TrustedKey {
  keyId: string;
  /** base64 of the raw 32-byte key. */
  publicKey: string;
  key: KeyObject;
}

/** A new key pair, as written by `ioc-edge fw keygen`. */
export interface GeneratedKey {
  keyId: string;
  publicKey: string;
  privateKeyPem: string;
}

/** The id of a raw public key: 16 hex digits of its SHA-256. */
export function keyIdOf(raw: Buffer): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function rawOf(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' }) as { crv?: string; x?: string };
  if (jwk.crv !== 'Ed25519' || !jwk.x) throw new IocError('FW_ERR_MANIFEST', 'the key is not an Ed25519 key');
  return Buffer.from(jwk.x, 'base64url');
}

/** Generates an Ed25519 key pair. */
export function generateSigningKey(): GeneratedKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = rawOf(publicKey);
  return { keyId: keyIdOf(raw), publicKey: raw.toString('base64'), privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

/**
 * Parses a trusted public key: the base64 of the raw 32 bytes, or a PEM
 * (SPKI) public key. Throws FW_ERR_MANIFEST naming what is wrong.
 */
export function parsePublicKey(text: string): TrustedKey {
  const s = text.trim();
  let key: KeyObject;
  try {
    if (s.startsWith('-----BEGIN')) key = createPublicKey(s);
    else {
      const raw = Buffer.from(s, 'base64');
      if (raw.length !== 32) throw new Error(`a raw Ed25519 public key has 32 bytes, this has ${raw.length}`);
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
    }
  } catch (err) {
    throw new IocError('FW_ERR_MANIFEST', `cannot read firmware signing key: ${(err as Error).message}`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new IocError('FW_ERR_MANIFEST', `firmware signing keys are Ed25519, not ${key.asymmetricKeyType}`);
  const raw = rawOf(key);
  return { keyId: keyIdOf(raw), publicKey: raw.toString('base64'), key };
}

/** Reads a PKCS #8 PEM private key; throws FW_ERR_MANIFEST unless it is Ed25519. */
export function parsePrivateKey(pem: string): { key: KeyObject; keyId: string } {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new IocError('FW_ERR_MANIFEST', `cannot read the signing key: ${(err as Error).message}`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new IocError('FW_ERR_MANIFEST', `firmware signing keys are Ed25519, not ${key.asymmetricKeyType}`);
  return { key, keyId: keyIdOf(rawOf(createPublicKey(key))) };
}

/** Ed25519 signature of `data` (64 bytes). */
export function signBytes(data: Buffer, privateKey: KeyObject): Buffer {
  return sign(null, data, privateKey);
}

/** True when `sig` is a valid Ed25519 signature of `data` under `publicKey`. */
export function verifyBytes(data: Buffer, sig: Buffer, publicKey: KeyObject): boolean {
  try {
    return verify(null, data, publicKey, sig);
  } catch {
    return false;
  }
}
