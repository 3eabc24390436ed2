/**
 * Writes docs/errors.md from the error catalogue (contract/errors.ts).
 * `npm run docs:errors` after adding a code; a test fails while a code is undocumented.
 */
import { writeFileSync } from 'node:fs';
import { ERRORS } from '../contract/index.js';

const groups: Record<string, string> = {
  CONFIG: 'Configuration', PROFILE: 'Device profiles', CONTRACT: 'Contract (payloads and topics)', GW: 'Gateway', HUB: 'Hub', FW: 'Firmware',
};
let md = '# Error codes\n\nEvery error raised by ioc-edge carries one of these codes; the code also ends the message, e.g.\n`no answer from unit 3 … (GW_ERR_MODBUS_TIMEOUT)`. Over MQTT a failed request answers\n`{"status": "error", "error": {"code": …, "message": …}}`. Generated from `contract/errors.ts` by\n`npm run docs:errors`.\n\n';
for (const [prefix, title] of Object.entries(groups)) {
  const rows = Object.entries(ERRORS).filter(([code]) => code.startsWith(`${prefix}_`));
  if (rows.length === 0) continue;
  md += `## ${title}\n\n| code | meaning | retry may help |\n|---|---|---|\n`;
  for (const [code, e] of rows) md += `| \`${code}\` | ${e.message} | ${e.retryable ? 'yes' : 'no'} |\n`;
  md += '\n';
}
writeFileSync(new URL('../docs/errors.md', import.meta.url), md);
console.log(`docs/errors.md: ${Object.keys(ERRORS).length} codes`);
