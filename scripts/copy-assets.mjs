// Copies what the compiled code reads at run time (JSON schemas, device profiles,
// package.json, console assets, the Sparkplug .proto) into dist/, keeping their relative paths.
import { cpSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'dist');
const folders = ['bin', 'lib', 'contract', 'device-profiles', 'gateway', 'hub', 'firmware-bridge', 'scripts'];
const assets = /\.(json|html|css|svg|ico|png|txt|proto)$|\.client\.js$/;
let n = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'test' || name.startsWith('.')) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (assets.test(name)) {
      const dest = path.join(out, path.relative(root, p));
      mkdirSync(path.dirname(dest), { recursive: true });
      cpSync(p, dest);
      n++;
    }
  }
}
for (const f of folders) walk(path.join(root, f));
cpSync(path.join(root, 'package.json'), path.join(out, 'package.json'));
console.log(`copied ${n + 1} assets to dist/`);
