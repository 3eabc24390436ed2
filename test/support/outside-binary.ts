/**
 * Tests that need a program from outside npm (chromium, socat, openssl,
 * mosquitto) ask here first. On a machine without it the test is skipped
 * with one loud line naming the Debian package to install; under CI=true
 * (`.ci/run`, which installs them all) a missing program is a failure.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** True when `bin` (an absolute path, or a name looked up on PATH) can be executed. */
export function hasBinary(bin: string): boolean {
  const candidates = bin.includes('/') ? [bin] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, bin));
  return candidates.some((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * For tap's `{ skip }` option: `false` when `bin` is there; otherwise the skip
 * reason, after printing it once on stderr. Under CI=true a missing program
 * throws instead, which fails the test file with that line.
 * @param debPackage the Debian package that provides `bin`.
 */
export function skipUnlessBinary(bin: string, debPackage: string): false | string {
  if (hasBinary(bin)) return false;
  const line = `${bin} is not installed: install the Debian package '${debPackage}' (apt-get install ${debPackage}; .ci/run does)`;
  if (process.env.CI === 'true') throw new Error(`CI: ${line}`);
  if (!warned.has(bin)) {
    warned.add(bin);
    process.stderr.write(`\n#### SKIPPED: ${line} ####\n\n`);
  }
  return `SKIPPED: ${line}`;
}

const warned = new Set<string>();
