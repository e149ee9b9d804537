// The REST API from the page: the token pasted into the page (kept in localStorage) goes in the
// Authorization header; the live stream takes it as ?token= because EventSource cannot send headers.
/* global localStorage, fetch, EventSource */

const TOKEN_KEY = 'zfaas.token';

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
  const t = token.get();
  const es = new EventSource(`/events${t ? `?token=${encodeURIComponent(t)}` : ''}`);
  es.addEventListener('hello', () => onState('live'));
  es.addEventListener('call', (e) => onCall(JSON.parse(e.data)));
  es.onerror = () => onState('reconnecting');
  return () => es.close();
}
