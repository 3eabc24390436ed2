/**
 * The firmware image format of the simulated devices: a 64-byte header the
 * simulated bootloaders check before they "install" an image, so a
 * simulator reports the version the image says — like a real bootloader that
 * validates an image header before jumping to it.
 *
 * | offset | bytes | field |
 * |---|---|---|
 * | 0 | 8 | magic `IOCSIMFW` |
 * | 8 | 4 | total image length, big-endian (header included) |
 * | 12 | 32 | version, ASCII, NUL-padded |
 * | 44 | 20 | reserved (0) |
 * | 64 | … | body |
 */
import { createHash } from 'node:crypto';

const MAGIC = Buffer.from('IOCSIMFW', 'latin1');
/** Header length. */
export const SIM_HEADER = 64;

/** Builds an image of `size` bytes (≥ 64) announcing `version`; the body is deterministic pseudo-random bytes from `seed`. */
export function buildSimImage(version: string, size: number, seed = version): Buffer {
  if (size < SIM_HEADER) throw new Error(`a simulated image has at least ${SIM_HEADER} bytes`);
  const img = Buffer.alloc(size);
  MAGIC.copy(img, 0);
  img.writeUInt32BE(size, 8);
  img.write(version.slice(0, 32), 12, 'latin1');
  let block = createHash('sha256').update(seed).digest();
  for (let off = SIM_HEADER; off < size; off += 32) {
    block.copy(img, off, 0, Math.min(32, size - off));
    block = createHash('sha256').update(block).digest();
  }
  return img;
}

/** Reads the header of a (possibly padded) image; null when it is not a simulated image or is shorter than it says. */
export function parseSimImage(buf: Buffer): { version: string; length: number; image: Buffer } | null {
  if (buf.length < SIM_HEADER || !buf.subarray(0, 8).equals(MAGIC)) return null;
  const length = buf.readUInt32BE(8);
  if (length < SIM_HEADER || length > buf.length) return null;
  const version = buf.toString('latin1', 12, 44).replace(/\0+$/, '');
  return { version, length, image: buf.subarray(0, length) };
}
