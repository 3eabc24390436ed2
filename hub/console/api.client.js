// The console's API client: JSON calls with the API token, and the live stream
// (Server-Sent Events read through fetch, because EventSource cannot send an
// Authorization header).

const TOKEN_KEY = 'ioc-edge.token';

/** An API error with the hub's code and message. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(t) {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  /** { actor, role } once signed in. */
  who: null,
};

function headers(extra = {}) {
  const t = session.token;
  return { ...(t ? { authorization: `Bearer ${t}` } : {}), ...extra };
}

/** Calls the API; resolves with the JSON body, rejects with an ApiError. */
export async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const e = json?.error ?? {};
    throw new ApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? `${method} ${path}: HTTP ${res.status}`, json);
  }
  if (res.status === 401) throw new ApiError(401, 'HUB_ERR_UNAUTHORIZED', 'sign in again', json);
  return json;
}

export const get = (path) => api('GET', path);

/** GET that answers null for 404 (an API another part of the hub may not offer yet). */
export async function getOptional(path) {
  try {
    return await api('GET', path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && err.code === 'HUB_ERR_NOT_FOUND' && /no route/.test(err.message)) return null;
    throw err;
  }
}

/** Query string from an object, skipping empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/**
 * Follows /api/v1/stream with these filters. `on(event, data)` gets each
 * message ('hello', 'readings', 'event', 'gateway'); `onState(connected)`
 * reports the connection. Reconnects with backoff until close() is called.
 */
export function stream(filters, on, onState = () => {}) {
  const ctl = { closed: false, abort: null };
  let delay = 500;
  const run = async () => {
    while (!ctl.closed) {
      const abort = new AbortController();
      ctl.abort = abort;
      try {
        const res = await fetch(`/api/v1/stream${qs(filters)}`, { headers: headers({ accept: 'text/event-stream' }), signal: abort.signal, cache: 'no-store' });
        if (!res.ok || !res.body) throw new Error(`stream: HTTP ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = 'message';
            const data = [];
            for (const line of frame.split('\n')) {
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
            }
            if (data.length === 0) continue;
            if (event === 'hello') {
              delay = 500;
              onState(true);
            }
            try {
              on(event, JSON.parse(data.join('\n')));
            } catch (err) {
              console.error('live stream message failed', err);
            }
          }
        }
      } catch (err) {
        if (ctl.closed) return;
        console.warn('live stream interrupted', err?.message ?? err);
      }
      if (ctl.closed) return;
      onState(false);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  };
  void run();
  return {
    close() {
      ctl.closed = true;
      ctl.abort?.abort();
    },
  };
}
