/** The gateway software version reported in status messages. */
import { readFileSync } from 'node:fs';

/** From package.json, read once at load. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
