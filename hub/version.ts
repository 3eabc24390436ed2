/** The hub's software version (from package.json). */
import { readFileSync } from 'node:fs';

/** Version string of this build, e.g. `0.1.0`. */
export const HUB_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
