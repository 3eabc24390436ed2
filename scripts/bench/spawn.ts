/** Spawning TypeScript entry points in child processes for benchmarks and fault tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Starts `node --import tsx FILE ARGS` and resolves with the child and the first stdout line that is a JSON object with `"ready": true`. */
export async function spawnTs<T>(file: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; info: T }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(`../../${file}`, import.meta.url)), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const rl = createInterface({ input: child.stdout! });
  const info = await new Promise<T>((resolve, reject) => {
    rl.on('line', (line) => {
      if (!line.includes('"ready":true')) return;
      try {
        resolve(JSON.parse(line) as T);
      } catch (err) {
        reject(new Error(`${file}: bad ready line ${line}: ${(err as Error).message}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code} before it was ready`)));
  });
  return { child, info };
}

/** Ends a child (SIGTERM, then SIGKILL after `graceMs`) and waits for it. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}
