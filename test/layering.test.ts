/**
 * Keeps the dependency rules of STYLE.md / DESIGN.md true: contract and lib
 * import nothing of ours, device-profiles only the contract, gateway and hub
 * never each other, nothing but tests and scripts imports scripts/, and the
 * gateway's southbound (drivers, pollers) knows nothing of the outbox, the uplink,
 * remote configuration or identity; the hub's two store backends import
 * neither each other nor are imported by the services.
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const FOLDERS = ['bin', 'contract', 'lib', 'device-profiles', 'gateway', 'hub', 'firmware-bridge', 'scripts', 'test'];
const ALLOWED: Record<string, string[]> = {
  contract: ['contract'],
  lib: ['lib'],
  'device-profiles': ['device-profiles', 'contract'],
  // The firmware bridge is the library both use for firmware (issue 7); it imports neither.
  gateway: ['gateway', 'contract', 'device-profiles', 'lib', 'firmware-bridge'],
  hub: ['hub', 'contract', 'device-profiles', 'lib', 'firmware-bridge'],
  'firmware-bridge': ['firmware-bridge', 'contract', 'device-profiles', 'lib'],
  bin: ['bin', 'gateway', 'hub', 'firmware-bridge', 'contract', 'device-profiles', 'lib'],
};

function walk(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (/\.(ts|js|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(IMPORT)) out.push((m[1] ?? m[2])!);
  return out;
}

/** Where a hub store backend is chosen and opened (and the export/import commands, which read and write both). */
const STORE_COMPOSITION = ['hub/hub.ts', 'hub/store/state.ts', 'hub/store/index.ts', 'hub/cli/hub-export.ts', 'hub/cli/hub-import.ts', 'hub/cli/hub-migrate.ts', 'hub/cli/hub-run.ts', 'hub/cli/hub-status.ts', 'hub/cli/token-create.ts'];

const isTestFile = (rel: string): boolean => rel.endsWith('.test.ts') || rel.split('/').includes('test');

t.test('imports follow the layering rules', async (t) => {
  const violations: string[] = [];
  let checked = 0;
  for (const folder of FOLDERS) {
    const dir = path.join(root, folder);
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) continue;
    for (const file of walk(dir)) {
      const rel = path.relative(root, file);
      for (const spec of imports(file)) {
        if (!spec.startsWith('.')) continue;
        checked++;
        const target = path.relative(root, path.resolve(path.dirname(file), spec));
        const top = target.split(path.sep)[0]!;
        if (top === 'scripts' && folder !== 'scripts' && !isTestFile(rel)) violations.push(`${rel} imports ${target}: nothing but tests and scripts may import scripts/`);
        if (isTestFile(rel) || folder === 'scripts' || folder === 'test') continue;
        const allowed = ALLOWED[folder];
        if (allowed && !allowed.includes(top)) violations.push(`${rel} imports ${target}: ${folder}/ may import only ${allowed.join(', ')}`);
        if (rel.startsWith(`gateway${path.sep}southbound${path.sep}`) && /^gateway[/\\](outbox|uplink|remote|identity)/.test(target)) {
          violations.push(`${rel} imports ${target}: drivers emit readings and know nothing of the outbox or uplink`);
        }
        // The hub's storage (issue 15): the two backends never import each other; the services know only the ports and
        // the backend-neutral model (hub/store/model); only the composition points open a backend.
        const backend = (p: string): string | null => /^hub[/\\]store[/\\](sqlite|postgres)[/\\]/.exec(p)?.[1] ?? null;
        const from = backend(rel);
        const to = backend(target);
        if (to && from && to !== from) violations.push(`${rel} imports ${target}: one store backend imports the other`);
        const relPosix = rel.split(path.sep).join('/');
        // The cluster runs only on PostgreSQL (leases, node table): it may use the PostgreSQL pool.
        const clusterOnPg = relPosix.startsWith('hub/cluster/') && to === 'postgres';
        if (to && !from && !clusterOnPg && !STORE_COMPOSITION.includes(relPosix)) violations.push(`${rel} imports ${target}: only ${STORE_COMPOSITION.join(', ')} open a store backend; services use the ports`);
      }
    }
  }
  t.ok(checked > 50, `checked ${checked} relative imports`);
  t.same(violations, [], 'no layering violations');
});

t.test('the checker catches a violation', async (t) => {
  // Guard against a checker that can never fail: run the regex on a known bad line.
  const src = "import { startHub } from '../hub/index.js';\nconst x = await import('../scripts/sim/free-port.js');";
  const found = [...src.matchAll(IMPORT)].map((m) => m[1] ?? m[2]);
  t.same(found, ['../hub/index.js', '../scripts/sim/free-port.js']);
});
