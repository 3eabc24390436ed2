/**
 * Firmware trusted keys for `ioc-edge hub run --fw-trusted-key FILE`
 * (issue 13 item 10): each file holds one Ed25519 public key, base64 of the
 * raw 32 bytes (what `ioc-edge fw keygen` prints) or PEM. Read and checked
 * before the hub starts, so a wrong file is named at once rather than every
 * upload being refused.
 */
import { readFile } from 'node:fs/promises';
import { parsePublicKey } from '../../firmware-bridge/index.js';

/**
 * Reads the key files; returns their contents (as startHub's
 * `firmware.trustedKeys` takes them). Throws an Error naming the file and
 * what is wrong.
 */
export async function readTrustedKeys(files: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`--fw-trusted-key ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a file holding an Ed25519 public key (base64 or PEM)`);
    }
    try {
      parsePublicKey(text);
    } catch (err) {
      throw new Error(`--fw-trusted-key ${file}: ${(err as Error).message}`);
    }
    out.push(text.trim());
  }
  return out;
}
