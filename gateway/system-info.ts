/** What a gateway says about its hardware: firmware (the OS image) and host name, for the hub's registry. */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * The operating system / firmware image, from /etc/os-release (PRETTY_NAME)
 * when present, else the kernel; at most 128 characters (the contract's limit).
 */
export function detectFirmware(osRelease = '/etc/os-release'): string {
  let name: string | undefined;
  try {
    const text = readFileSync(osRelease, 'utf8');
    name = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1];
  } catch {
    name = undefined;
  }
  return `${name || os.type()} (${os.release()})`.slice(0, 128);
}

/** The host name, trimmed to the contract's 255 characters. */
export function hostName(): string {
  return os.hostname().slice(0, 255);
}
