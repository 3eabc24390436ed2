/**
 * HUB_CPU_PROFILE=FILE (or any env name given) writes a V8 CPU profile of this
 * process to FILE when the returned function is called: for benchmark analysis.
 */
export async function cpuProfileFromEnv(envName = 'HUB_CPU_PROFILE'): Promise<() => Promise<void>> {
  const file = process.env[envName];
  if (!file) return async () => undefined;
  const { Session } = await import('node:inspector/promises');
  const { writeFile } = await import('node:fs/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(file, JSON.stringify(profile));
  };
}
