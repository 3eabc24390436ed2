/**
 * CRC-16/XMODEM (CRC-CCITT as XMODEM uses it): polynomial 0x1021, initial
 * value 0, no reflection, no final XOR; check value 0x31C3 for "123456789".
 * Forsberg, "XMODEM/YMODEM Protocol Reference" (1988), §8 "CRC calculation".
 */

const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  TABLE[i] = c;
}

/** CRC-16/XMODEM of `data`. */
export function crc16Xmodem(data: Uint8Array, crc = 0): number {
  let c = crc;
  for (let i = 0; i < data.length; i++) c = ((c << 8) & 0xffff) ^ TABLE[((c >> 8) ^ data[i]!) & 0xff]!;
  return c;
}

/** The 8-bit arithmetic checksum of original XMODEM (sum of the data bytes modulo 256). */
export function checksum8(data: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s = (s + data[i]!) & 0xff;
  return s;
}
