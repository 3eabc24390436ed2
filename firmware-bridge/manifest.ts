/**
 * Firmware manifests: build one for an image, sign it, and — on the gateway
 * and at upload on the hub — check it: well-formed, signed, by a trusted key,
 * the signature verifying over the canonical JSON, aimed at the right model;
 * then the image against its size and SHA-256 before anything is flashed.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { IocError, validateSignedManifest, type FirmwareManifest, type SignedManifest } from '../contract/index.js';
import { canonicalBytes } from './canonical-json.js';
import { signBytes, verifyBytes, type TrustedKey } from './signing.js';

/** Default transfer chunk: 16 KiB (a 1 MiB image in 64 chunks). */
export const DEFAULT_CHUNK_SIZE = 16_384;

/** Lower-case hex SHA-256 of `data`. */
export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** What the signer says about an image. */
export interface ManifestInput {
  model: string;
  version: string;
  versionCode?: number;
  chunkSize?: number;
  description?: string;
  createdAt?: number;
}

/** Builds the manifest of `image` (size and SHA-256 from the bytes) and validates it. */
export function buildManifest(image: Buffer, input: ManifestInput): FirmwareManifest {
  const manifest: FirmwareManifest = {
    v: 1, model: input.model, version: input.version, size: image.length, sha256: sha256Hex(image),
    chunkSize: input.chunkSize ?? DEFAULT_CHUNK_SIZE, createdAt: input.createdAt ?? Date.now(),
    ...(input.versionCode !== undefined ? { versionCode: input.versionCode } : {}),
    ...(input.description !== undefined ? { description: input.description } : {}),
  };
  validateSignedManifest({ manifest });
  return manifest;
}

/** Signs `manifest` with an Ed25519 private key whose id is `keyId`. */
export function signManifest(manifest: FirmwareManifest, privateKey: KeyObject, keyId: string): SignedManifest {
  const value = signBytes(canonicalBytes(manifest), privateKey).toString('base64');
  return validateSignedManifest({ manifest, signature: { alg: 'Ed25519', keyId, value } });
}

/**
 * Checks a signed manifest. Throws, in this order: FW_ERR_MANIFEST
 * (malformed), FW_ERR_UNSIGNED, FW_ERR_UNTRUSTED_KEY, FW_ERR_SIGNATURE,
 * FW_ERR_WRONG_MODEL (when `expectModel` is given and differs).
 */
export function verifyManifest(doc: unknown, trusted: readonly TrustedKey[], expectModel?: string): SignedManifest {
  const signed = validateSignedManifest(doc);
  const sig = signed.signature;
  if (!sig) throw new IocError('FW_ERR_UNSIGNED', `firmware ${signed.manifest.model} ${signed.manifest.version} is not signed; refusing it`);
  const key = trusted.find((k) => k.keyId === sig.keyId);
  if (!key) {
    throw new IocError('FW_ERR_UNTRUSTED_KEY', `firmware ${signed.manifest.model} ${signed.manifest.version} is signed by key ${sig.keyId}, which is not trusted here (trusted: ${trusted.map((k) => k.keyId).join(', ') || 'none'})`, { context: { keyId: sig.keyId } });
  }
  if (!verifyBytes(canonicalBytes(signed.manifest), Buffer.from(sig.value, 'base64'), key.key)) {
    throw new IocError('FW_ERR_SIGNATURE', `signature of firmware ${signed.manifest.model} ${signed.manifest.version} does not verify with key ${sig.keyId}: the manifest was altered or signed with another key`, { context: { keyId: sig.keyId } });
  }
  if (expectModel !== undefined && signed.manifest.model !== expectModel) {
    throw new IocError('FW_ERR_WRONG_MODEL', `firmware is for model '${signed.manifest.model}', the device is a '${expectModel}'`, { context: { model: signed.manifest.model, expected: expectModel } });
  }
  return signed;
}

/** Checks an image against its manifest (size, then SHA-256); throws FW_ERR_INTEGRITY. */
export function verifyImage(manifest: FirmwareManifest, image: Buffer): void {
  if (image.length !== manifest.size) {
    throw new IocError('FW_ERR_INTEGRITY', `firmware image has ${image.length} bytes, its manifest says ${manifest.size}${image.length < manifest.size ? ' (truncated)' : ''}`, { context: { image: manifest.sha256 } });
  }
  const got = sha256Hex(image);
  if (got !== manifest.sha256) {
    throw new IocError('FW_ERR_INTEGRITY', `firmware image SHA-256 is ${got}, its manifest says ${manifest.sha256}`, { context: { image: manifest.sha256 } });
  }
}
