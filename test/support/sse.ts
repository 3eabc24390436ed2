/**
 * A Server-Sent Events client for tests and benchmarks (fetch + a minimal
 * parser of WHATWG HTML §9.2.6 event streams): collects messages and lets
 * a caller wait for one that matches.
 */

/** One received message. */
export interface SseMessage {
  event: string;
  data: any;
  /** performance.now() when it was parsed. */
  at: number;
}

/** A connected stream. */
export interface SseClient {
  readonly messages: SseMessage[];
  /** Comment lines received (": ping"). */
  comments: number;
  /** Resolves with the first message (already received or future) that matches. */
  next(pred: (m: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage>;
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  close(): void;
}

/** Opens `url` (with an optional bearer token) and resolves once the `hello` message arrived. */
export async function openSse(url: string, opts: { token?: string; onMessage?: (m: SseMessage) => void } = {}): Promise<SseClient> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) }, signal: abort.signal });
  if (!res.ok || !res.body) throw new Error(`SSE ${url}: HTTP ${res.status} ${await res.text()}`);
  const messages: SseMessage[] = [];
  const waiters = new Set<{ pred: (m: SseMessage) => boolean; resolve: (m: SseMessage) => void }>();
  const client: SseClient = {
    messages,
    comments: 0,
    next(pred, timeoutMs = 15_000) {
      const hit = messages.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          resolve: (m: SseMessage) => {
            clearTimeout(timer);
            resolve(m);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching SSE message within ${timeoutMs} ms (got ${messages.map((m) => m.event).join(', ')})`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    ended: Promise.resolve(),
    close: () => abort.abort(),
  };
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  (client as { ended: Promise<void> }).ended = (async () => {
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of frame.split('\n')) {
            if (line.startsWith(':')) client.comments++;
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length === 0) continue;
          const m: SseMessage = { event, data: JSON.parse(data.join('\n')), at: performance.now() };
          messages.push(m);
          opts.onMessage?.(m);
          for (const w of waiters) {
            if (w.pred(m)) {
              waiters.delete(w);
              w.resolve(m);
            }
          }
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  await client.next((m) => m.event === 'hello');
  return client;
}
