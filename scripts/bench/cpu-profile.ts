/**
 * HUB_CPU_PROFILE=FILE (or any env name given) writes a V8 CPU profile of this
 * process to FILE when the returned function is called: for benchmark analysis.
 * A FILE ending in .heapprofile gets a sampling heap profile (allocations, also those the GC has taken).
 * A `%p` in FILE is replaced by the process id (a bench that starts several hubs keeps each profile).
 */
export async function cpuProfileFromEnv(envName = 'HUB_CPU_PROFILE'): Promise<() => Promise<void>> {
  const file = process.env[envName]?.replace('%p', String(process.pid));
  if (!file) return async () => undefined;
  const { Session } = await import('node:inspector/promises');
  const { writeFile } = await import('node:fs/promises');
  const session = new Session();
  session.connect();
  // A file ending in .heapprofile gets V8's sampling heap profile instead (where the allocations come from).
  if (file.endsWith('.heapprofile')) {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return async () => {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      await writeFile(file, JSON.stringify(profile));
    };
  }
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(file, JSON.stringify(profile));
  };
}
