// The REST API from the page: the token pasted into the page (kept in localStorage) goes in the
// Authorization header. EventSource cannot send headers, and a token in a URL would end up in histories and
// logs: the live stream is opened with a one-use ticket (POST /events/ticket, with the header), a new one
// for every reconnection.
/* global localStorage, fetch, EventSource, setTimeout, clearTimeout */

const TOKEN_KEY = 'zfaas.token';
const RECONNECT_MS = 2000;

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY) || '',
  set: (t) => (t ? localStorage.setItem(TOKEN_KEY, t) : localStorage.removeItem(TOKEN_KEY)),
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Listeners told when the API refuses the token (401), to ask the person for one.
const unauthorized = new Set();
export const onUnauthorized = (fn) => unauthorized.add(fn);

/** JSON in, JSON out; throws ApiError with the API's own {"error"} text. */
export async function api(path, { method = 'GET', json, body, headers = {} } = {}) {
  const h = { accept: 'application/json', ...headers };
  const t = token.get();
  if (t) h.authorization = `Bearer ${t}`;
  if (json !== undefined) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const res = await fetch(path, { method, headers: h, body });
  const text = await res.text();
  let data;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = text;
  }
  if (res.status === 401) for (const fn of unauthorized) fn();
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

/**
 * The live call stream (GET /events). onCall gets each event; onState 'live' | 'reconnecting'.
 * Returns a function that closes it.
 */
export function liveCalls(onCall, onState) {
  let es = null;
  let timer = null;
  let closed = false;
  const retry = () => {
    onState('reconnecting');
    if (!closed) timer = setTimeout(open, RECONNECT_MS);
  };
  async function open() {
    let url = '/events';
    if (token.get()) {
      try {
        const t = await api('/events/ticket', { method: 'POST' });
        url += `?ticket=${encodeURIComponent(t.ticket)}`;
      } catch {
        return retry();
      }
    }
    if (closed) return;
    es = new EventSource(url);
    es.addEventListener('hello', () => onState('live'));
    es.addEventListener('call', (e) => onCall(JSON.parse(e.data)));
    // A ticket is good once: the stream is opened again here, with a new one, rather than by EventSource.
    es.onerror = () => {
      es.close();
      retry();
    };
  }
  void open();
  return () => {
    closed = true;
    clearTimeout(timer);
    if (es) es.close();
  };
}
