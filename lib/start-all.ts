/** Something started and stopped with its process (a gateway's or hub's parts). */
export interface Startable {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts each in order; when one fails, stops those it started (newest first) and throws its error. */
export async function startAll(services: readonly Startable[]): Promise<void> {
  const started: Startable[] = [];
  try {
    for (const s of services) {
      await s.start();
      started.push(s);
    }
  } catch (err) {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    throw err;
  }
}
