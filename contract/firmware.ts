/**
 * The firmware part of the contract (issue 7): topics under
 * `ioc/v1/gw/{gw}/fw/…`, payload types and validators, the binary chunk
 * frame, and the job states and result codes taken from the LwM2M Firmware
 * Update object (OMA LwM2M TS 1.0, Appendix E.6, object 5: State resource 3,
 * Update Result resource 5).
 *
 * | topic | direction | QoS | payload |
 * |---|---|---|---|
 * | `fw/offer` | hub → gw | 1 | {@link FirmwareOffer} (JSON) |
 * | `fw/cancel` | hub → gw | 1 | {@link FirmwareCancel} (JSON) |
 * | `fw/chunk` | hub → gw | 0 | chunk frame (binary, {@link encodeChunkFrame}) |
 * | `fw/request` | gw → hub | 0 | {@link FirmwareChunkRequest} (JSON) |
 * | `fw/state` | gw → hub | 1 | {@link FirmwareStateReport} (JSON) |
 * | `fw/sync` | gw → hub | 1 | {@link FirmwareSync} (JSON) |
 *
 * Chunks and their requests travel at QoS 0: the gateway asks again for what
 * did not arrive, so a per-message acknowledgement would only cost round trips.
 */
import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { IocError } from './errors.js';
import { ROOT } from './topics.js';
import { formatAjvErrors } from './validate.js';

/** Per-gateway firmware topics. */
export const fwTopics = {
  offer: (gw: string) => `${ROOT}/gw/${gw}/fw/offer`,
  cancel: (gw: string) => `${ROOT}/gw/${gw}/fw/cancel`,
  chunk: (gw: string) => `${ROOT}/gw/${gw}/fw/chunk`,
  request: (gw: string) => `${ROOT}/gw/${gw}/fw/request`,
  state: (gw: string) => `${ROOT}/gw/${gw}/fw/state`,
  sync: (gw: string) => `${ROOT}/gw/${gw}/fw/sync`,
  /** Wildcards the hub's firmware service subscribes to. */
  allRequest: `${ROOT}/gw/+/fw/request`,
  allState: `${ROOT}/gw/+/fw/state`,
  allSync: `${ROOT}/gw/+/fw/sync`,
} as const;

/** The signed part of a firmware manifest. */
export interface FirmwareManifest {
  v: 1;
  /** Target device model (profile `model`). */
  model: string;
  version: string;
  versionCode?: number;
  size: number;
  /** Lower-case hex SHA-256 of the image. */
  sha256: string;
  chunkSize: number;
  createdAt: number;
  description?: string;
}

/** An Ed25519 signature over the canonical JSON of a manifest. */
export interface ManifestSignature {
  alg: 'Ed25519';
  keyId: string;
  /** base64 of the 64-byte signature. */
  value: string;
}

/** A manifest with its signature (absent = unsigned, always refused by gateways). */
export interface SignedManifest {
  manifest: FirmwareManifest;
  signature?: ManifestSignature;
}

/** `fw/offer` payload. */
export interface FirmwareOffer {
  v: 1;
  job: string;
  rollout: string;
  device: string;
  signed: SignedManifest;
  issuedAt: number;
}

/** `fw/cancel` payload. */
export interface FirmwareCancel {
  v: 1;
  job: string;
  reason?: string;
}

/** `fw/request` payload. */
export interface FirmwareChunkRequest {
  v: 1;
  job: string;
  image: string;
  indices: number[];
}

/** Job states: the LwM2M states plus the two ends a job can reach. */
export const FW_STATES = ['idle', 'downloading', 'downloaded', 'updating', 'updated', 'failed'] as const;

/** One of {@link FW_STATES}. */
export type FirmwareState = (typeof FW_STATES)[number];

/** True for the states a job never leaves. */
export function isFinalFwState(s: FirmwareState): boolean {
  return s === 'updated' || s === 'failed';
}

/** LwM2M Update Result codes (TS 1.0 Appendix E.6, object 5 resource 5). */
export const FW_RESULT = {
  initial: 0,
  success: 1,
  notEnoughFlash: 2,
  outOfRam: 3,
  connectionLost: 4,
  integrityFailure: 5,
  unsupportedPackage: 6,
  invalidUri: 7,
  updateFailed: 8,
  unsupportedProtocol: 9,
} as const;

/** One of the {@link FW_RESULT} codes. */
export type FirmwareResult = (typeof FW_RESULT)[keyof typeof FW_RESULT];

/**
 * The LwM2M State resource value for a job state: idle 0, downloading 1,
 * downloaded 2, updating 3. A successful update returns the object to idle
 * (with result 1); a failure returns it to idle while downloading, and to
 * downloaded (the package is still held) when the update itself failed.
 */
export function lwm2mState(state: FirmwareState, result: number): 0 | 1 | 2 | 3 {
  switch (state) {
    case 'downloading':
      return 1;
    case 'downloaded':
      return 2;
    case 'updating':
      return 3;
    case 'failed':
      return result === FW_RESULT.updateFailed ? 2 : 0;
    default:
      return 0;
  }
}

/** `fw/state` payload. */
export interface FirmwareStateReport {
  v: 1;
  job: string;
  device: string;
  seq: number;
  ts: number;
  state: FirmwareState;
  result: number;
  bytes?: number;
  total?: number;
  version?: string;
  error?: { code: string; message: string };
}

/** `fw/sync` payload. */
export interface FirmwareSync {
  v: 1;
  jobs: Array<{ job: string; state: FirmwareState }>;
}

function loadSchema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`./schemas/${name}.schema.json`, import.meta.url), 'utf8')) as Record<string, unknown>;
}

/** The firmware schemas, as plain JSON. */
export const firmwareSchemas = {
  manifest: loadSchema('firmware-manifest'),
  offer: loadSchema('firmware-offer'),
  request: loadSchema('firmware-request'),
  state: loadSchema('firmware-state'),
  sync: loadSchema('firmware-sync'),
  cancel: loadSchema('firmware-cancel'),
} as const;

let ajv: Ajv2020 | null = null;
const compiled = new Map<string, ValidateFunction>();

/** Compiles on first use (a gateway that never sees firmware does not pay for these). */
function validator(name: keyof typeof firmwareSchemas): ValidateFunction {
  let fn = compiled.get(name);
  if (!fn) {
    if (!ajv) {
      ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
      ajv.addSchema(firmwareSchemas.manifest);
    }
    fn = name === 'manifest' ? ajv.getSchema(String(firmwareSchemas.manifest.$id))! : ajv.compile(firmwareSchemas[name]);
    compiled.set(name, fn);
  }
  return fn;
}

function check<T>(name: keyof typeof firmwareSchemas, what: string, value: unknown, code: 'CONTRACT_ERR_INVALID_PAYLOAD' | 'FW_ERR_MANIFEST' = 'CONTRACT_ERR_INVALID_PAYLOAD'): T {
  const fn = validator(name);
  if (fn(value)) return value as T;
  throw new IocError(code, `${what} is invalid: ${formatAjvErrors(fn.errors)}`, { context: { pointer: fn.errors?.[0]?.instancePath ?? '' } });
}

/** Validates a signed manifest (shape only; signature checks are the firmware bridge's). Throws FW_ERR_MANIFEST. */
export function validateSignedManifest(value: unknown): SignedManifest {
  return check('manifest', 'firmware manifest', value, 'FW_ERR_MANIFEST');
}

/** Validates a `fw/offer` payload. */
export function validateFirmwareOffer(value: unknown): FirmwareOffer {
  return check('offer', 'firmware offer', value);
}

/** Validates a `fw/request` payload. */
export function validateFirmwareRequest(value: unknown): FirmwareChunkRequest {
  return check('request', 'firmware chunk request', value);
}

/** Validates a `fw/state` payload. */
export function validateFirmwareState(value: unknown): FirmwareStateReport {
  return check('state', 'firmware state report', value);
}

/** Validates a `fw/sync` payload. */
export function validateFirmwareSync(value: unknown): FirmwareSync {
  return check('sync', 'firmware sync', value);
}

/** Validates a `fw/cancel` payload. */
export function validateFirmwareCancel(value: unknown): FirmwareCancel {
  return check('cancel', 'firmware cancel', value);
}

/** Number of chunks of an image. */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/**
 * The `fw/chunk` frame, binary (a chunk in JSON would cost a third more bytes
 * in base64 and a parse):
 *
 * | offset | bytes | field |
 * |---|---|---|
 * | 0 | 4 | magic `IFW1` |
 * | 4 | 1 | kind: 0 data, 1 error |
 * | 5 | 4 | chunk index, unsigned big-endian |
 * | 9 | 32 | image SHA-256 (raw) |
 * | 41 | 4 | CRC-32 (ISO-HDLC, as zlib) of the body, big-endian |
 * | 45 | … | body: chunk bytes (data) or UTF-8 JSON `{code, message}` (error) |
 */
export const CHUNK_FRAME_HEADER = 45;
const MAGIC = Buffer.from('IFW1', 'latin1');

/** A decoded chunk frame. */
export type ChunkFrame =
  | { kind: 'data'; index: number; image: string; data: Buffer }
  | { kind: 'error'; index: number; image: string; error: { code: string; message: string } };

/** Encodes a chunk frame. */
export function encodeChunkFrame(frame: ChunkFrame): Buffer {
  const body = frame.kind === 'data' ? frame.data : Buffer.from(JSON.stringify(frame.error), 'utf8');
  const out = Buffer.allocUnsafe(CHUNK_FRAME_HEADER + body.length);
  MAGIC.copy(out, 0);
  out[4] = frame.kind === 'data' ? 0 : 1;
  out.writeUInt32BE(frame.index, 5);
  out.write(frame.image, 9, 32, 'hex');
  out.writeUInt32BE(crc32(body), 41);
  body.copy(out, CHUNK_FRAME_HEADER);
  return out;
}

/**
 * Decodes a chunk frame; throws CONTRACT_ERR_INVALID_PAYLOAD for a wrong
 * magic, kind or length and FW_ERR_TRANSFER when the body fails its CRC.
 * The data of a `data` frame is a view into `buf`.
 */
export function decodeChunkFrame(buf: Buffer): ChunkFrame {
  if (buf.length < CHUNK_FRAME_HEADER || !buf.subarray(0, 4).equals(MAGIC)) {
    throw new IocError('CONTRACT_ERR_INVALID_PAYLOAD', `firmware chunk frame is invalid: ${buf.length < CHUNK_FRAME_HEADER ? `${buf.length} bytes, shorter than the ${CHUNK_FRAME_HEADER}-byte header` : 'wrong magic'}`);
  }
  const kind = buf[4];
  const index = buf.readUInt32BE(5);
  const image = buf.toString('hex', 9, 41);
  const body = buf.subarray(CHUNK_FRAME_HEADER);
  if (crc32(body) !== buf.readUInt32BE(41)) throw new IocError('FW_ERR_TRANSFER', `firmware chunk ${index} failed its CRC-32 check`, { context: { index, image } });
  if (kind === 0) return { kind: 'data', index, image, data: body };
  if (kind === 1) {
    let error: { code: string; message: string };
    try {
      const e = JSON.parse(body.toString('utf8')) as { code?: unknown; message?: unknown };
      error = { code: String(e.code), message: String(e.message) };
    } catch {
      error = { code: 'FW_ERR_TRANSFER', message: 'unreadable error frame' };
    }
    return { kind: 'error', index, image, error };
  }
  throw new IocError('CONTRACT_ERR_INVALID_PAYLOAD', `firmware chunk frame is invalid: unknown kind ${kind}`);
}
