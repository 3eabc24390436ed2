/**
 * XMODEM-CRC and XMODEM-1K sender, after Chuck Forsberg, "XMODEM/YMODEM
 * Protocol Reference" (Omen Technology, 1988; based on Ward Christensen's
 * 1977 XMODEM). The receiver (the device's bootloader) drives the start:
 *
 * - it sends `C` to ask for CRC-16 blocks (§7.1 "CRC mode"), or NAK for the
 *   original 8-bit checksum; we honour NAK with 128-byte checksum blocks,
 *   since 1K blocks are defined only with CRC (§4 "XMODEM-1k");
 * - a block is `SOH` (128 data bytes) or `STX` (1024), the block number, its
 *   one's complement, the data padded with CPMEOF (0x1A), then the CRC-16
 *   high byte first (or the checksum) (§3.1 "Packet format", §6 "1024 byte
 *   packets"); block numbers start at 1 and wrap modulo 256;
 * - the receiver answers ACK, or NAK to have the block sent again; on NAK or
 *   silence the block is retransmitted, at most `maxRetries` times (§5.2 "10
 *   retries");
 * - two CAN in a row from the receiver cancel the transfer (a single CAN may
 *   be line noise); we cancel with CAN CAN ourselves when we give up;
 * - after the last block the sender sends EOT until the receiver ACKs it
 *   (receivers may NAK the first EOT to guard against a noise EOT, §3.2).
 *
 * In 1K mode the tail is sent in 128-byte blocks once 896 bytes or fewer
 * remain, so padding never exceeds 127 bytes; receivers accept mixed block
 * sizes (§4).
 */
import { IocError } from '../contract/index.js';
import { ByteReader, type ByteChannel } from './byte-channel.js';
import { checksum8, crc16Xmodem } from './crc16.js';

/** XMODEM control characters (Forsberg §2). */
export const SOH = 0x01;
export const STX = 0x02;
export const EOT = 0x04;
export const ACK = 0x06;
export const NAK = 0x15;
export const CAN = 0x18;
export const CRC_REQUEST = 0x43; // 'C'
export const CPMEOF = 0x1a;

/** Which XMODEM variant a profile asks for. */
export type XmodemMode = 'xmodem-crc' | 'xmodem-1k';

/** Settings of {@link xmodemSend}. */
export interface XmodemOptions {
  mode: XmodemMode;
  /** How long to wait for the receiver's first `C` or NAK. Default 60 s (receivers repeat `C` about every 3 s, §7.1). */
  startTimeoutMs?: number;
  /** How long to wait for the answer to a block or EOT. Default 10 s (§5.2). */
  blockTimeoutMs?: number;
  /** Retransmissions of one block (NAK or silence) before giving up. Default 10. */
  maxRetries?: number;
  /** Cancels the transfer (CAN CAN is sent) with FW_ERR_CANCELLED. */
  signal?: AbortSignal;
  /** Called after each acknowledged block with the image bytes delivered so far. */
  onProgress?: (bytes: number, total: number) => void;
}

/** What a finished transfer cost. */
export interface XmodemResult {
  /** Blocks acknowledged. */
  blocks: number;
  blocks1k: number;
  /** Blocks sent again after a NAK or a timeout. */
  retransmits: number;
  /** Bytes written to the line (frames and EOTs). */
  lineBytes: number;
  /** True when the receiver asked for CRC (`C`); false for checksum mode. */
  crc: boolean;
  /** From the handshake's start to the acknowledged EOT, ms. */
  durationMs: number;
  /** From the first block on the line to the acknowledged EOT (the transfer without the wait for the receiver), ms. */
  transferMs: number;
}

/** One XMODEM frame: header, number, complement, padded data, CRC-16 (big-endian) or checksum. */
export function xmodemFrame(blockNumber: number, data: Buffer, size: 128 | 1024, crc: boolean): Buffer {
  const frame = Buffer.alloc(3 + size + (crc ? 2 : 1), CPMEOF);
  frame[0] = size === 1024 ? STX : SOH;
  frame[1] = blockNumber & 0xff;
  frame[2] = 0xff - (blockNumber & 0xff);
  data.copy(frame, 3, 0, Math.min(data.length, size));
  const payload = frame.subarray(3, 3 + size);
  if (crc) frame.writeUInt16BE(crc16Xmodem(payload), 3 + size);
  else frame[3 + size] = checksum8(payload);
  return frame;
}

/** Splits an image into block sizes as the sender will send them. */
export function planBlocks(length: number, oneK: boolean): Array<128 | 1024> {
  const out: Array<128 | 1024> = [];
  let left = length;
  while (left > 0) {
    const size: 128 | 1024 = oneK && left > 896 ? 1024 : 128;
    out.push(size);
    left -= size;
  }
  return out;
}

const CANCEL = Buffer.from([CAN, CAN]);

/**
 * Sends `image` to the receiver at the other end of `channel`. Resolves when
 * the receiver acknowledged EOT. Rejects with FW_ERR_FLASH_TIMEOUT (no
 * handshake, silence past the retries, or the channel closed),
 * FW_ERR_FLASH_REJECTED (NAKs past the retries), FW_ERR_FLASH_CANCELLED
 * (CAN CAN from the receiver) or FW_ERR_CANCELLED (`signal`).
 */
export async function xmodemSend(channel: ByteChannel, image: Buffer, opts: XmodemOptions): Promise<XmodemResult> {
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const blockTimeoutMs = opts.blockTimeoutMs ?? 10_000;
  const maxRetries = opts.maxRetries ?? 10;
  const reader = new ByteReader(channel);
  const started = Date.now();
  const result: XmodemResult = { blocks: 0, blocks1k: 0, retransmits: 0, lineBytes: 0, crc: true, durationMs: 0, transferMs: 0 };
  const write = (b: Buffer): void => {
    result.lineBytes += b.length;
    channel.write(b);
  };
  const abort = (): never => {
    if (channel.isOpen) channel.write(CANCEL);
    throw new IocError('FW_ERR_CANCELLED', 'firmware transfer cancelled');
  };
  const cancelled = (where: string): IocError => new IocError('FW_ERR_FLASH_CANCELLED', `the device cancelled the XMODEM transfer (CAN CAN) ${where}`);
  /** Next byte that matters, or null on timeout; CAN CAN throws. */
  const answer = async (timeoutMs: number, where: string): Promise<number | null> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (opts.signal?.aborted) abort();
      const left = deadline - Date.now();
      if (left <= 0) return null;
      let b: number | null;
      try {
        b = await reader.next(Math.min(left, 250));
      } catch (err) {
        throw new IocError('FW_ERR_FLASH_TIMEOUT', `serial line closed during the XMODEM transfer ${where}: ${(err as Error).message}`, { cause: err });
      }
      if (b === null) continue;
      if (b === CAN) {
        // Forsberg: only two CAN in a row cancel.
        const b2 = await reader.next(1000).catch(() => null);
        if (b2 === CAN) throw cancelled(where);
        if (b2 === ACK || b2 === NAK || b2 === CRC_REQUEST) return b2;
        continue;
      }
      return b;
    }
  };

  /** ACK, NAK or null (silence for blockTimeoutMs); stray bytes (a late 'C', noise) are skipped. */
  const ackOrNak = async (where: string): Promise<number | null> => {
    const deadline = Date.now() + blockTimeoutMs;
    for (;;) {
      const b = await answer(deadline - Date.now(), where);
      if (b === null || b === ACK || b === NAK) return b;
    }
  };

  try {
    // Handshake: 'C' (CRC) or NAK (checksum) from the receiver.
    const hsDeadline = Date.now() + startTimeoutMs;
    for (;;) {
      const b = await answer(Math.max(1, hsDeadline - Date.now()), 'before it started');
      if (b === null) throw new IocError('FW_ERR_FLASH_TIMEOUT', `the bootloader did not ask for the image ('C' or NAK) within ${startTimeoutMs} ms`);
      if (b === CRC_REQUEST) break;
      if (b === NAK) {
        result.crc = false;
        break;
      }
    }
    const oneK = opts.mode === 'xmodem-1k' && result.crc;
    const sizes = planBlocks(image.length, oneK);
    let offset = 0;
    let blockNumber = 1;
    // Stale 'C's sent before our first block are not answers to it.
    reader.purge();
    const firstBlockAt = performance.now();
    for (const size of sizes) {
      const frame = xmodemFrame(blockNumber, image.subarray(offset, offset + size), size, result.crc);
      let tries = 0;
      let lastFailure: 'nak' | 'timeout' = 'timeout';
      for (;;) {
        write(frame);
        const b = await ackOrNak(`at block ${blockNumber} (byte ${offset})`);
        if (b === ACK) break;
        lastFailure = b === NAK ? 'nak' : 'timeout';
        if (++tries > maxRetries) {
          write(CANCEL);
          throw lastFailure === 'nak'
            ? new IocError('FW_ERR_FLASH_REJECTED', `the device refused block ${blockNumber} ${tries} times (NAK); transfer cancelled`, { context: { block: blockNumber, offset } })
            : new IocError('FW_ERR_FLASH_TIMEOUT', `no answer to block ${blockNumber} after ${tries} tries of ${blockTimeoutMs} ms; transfer cancelled`, { context: { block: blockNumber, offset } });
        }
        result.retransmits++;
      }
      result.blocks++;
      if (size === 1024) result.blocks1k++;
      offset += size;
      blockNumber = (blockNumber + 1) & 0xff;
      opts.onProgress?.(Math.min(offset, image.length), image.length);
    }
    // End of transmission: EOT until ACK.
    for (let tries = 0; ; tries++) {
      write(Buffer.from([EOT]));
      const b = await ackOrNak('at EOT');
      if (b === ACK) break;
      if (tries >= maxRetries) {
        write(CANCEL);
        throw new IocError('FW_ERR_FLASH_TIMEOUT', `the device did not acknowledge the end of the transfer (EOT) after ${tries + 1} tries`);
      }
    }
    result.durationMs = Date.now() - started;
    result.transferMs = performance.now() - firstBlockAt;
    return result;
  } finally {
    reader.detach();
  }
}
