// The web form of `zfaas invoke`: --method, --path, -q, -H and -d make an HTTP request to the function's
// own web path, /function/NAME[@VERSION]/PATH?QUERY, which answers with the response the function chose.
// Everything typed is checked, and -d's file or stdin read, before anything is sent (a usage error, exit
// 2, otherwise); the answer's body goes to stdout as it came (binary-safe, nothing added), after its
// status line and headers with -i, as `curl -i` prints them (and then ending the line). How the call ended is in X-Zfaas-Status:
// ERROR exits 3 and TIMEOUT 4; an answer without it is the API's own refusal ({"error"}), exit 1.
import type { Readable } from 'node:stream';
import { NAME_RE } from '../../common/model.js';
import { NAMESPACE_HEADER } from './config.js';
import { ApiError, CliError, EXIT, UnreachableError, UsageError, errText, printable } from './errors.js';
import { readBoundedBytes } from './read-bounded.js';

/** The flags of the web form, as commander gives them. */
export interface WebFlags {
  method?: string;
  path?: string;
  query?: string[];
  header?: string[];
  data?: string;
  include?: boolean;
}

/** Any of these makes `zfaas invoke` a web request (-i alone does not). */
export const isWebForm = (o: WebFlags): boolean =>
  o.method !== undefined || o.path !== undefined || o.query !== undefined || o.header !== undefined || o.data !== undefined;

/** Where -d takes the body from. */
export type DataSource = { from: 'none' } | { from: 'text'; text: string } | { from: 'file'; file: string } | { from: 'stdin' };

/** A web request checked and ready, but for its body. */
export interface WebPlan {
  method: string;
  /** Below the API address: /function/NAME[@VERSION][PATH][?QUERY], percent-encoded. */
  target: string;
  /** As typed (the value as UTF-8 bytes, the way HTTP carries them), in order; repeats are kept. */
  headers: Array<[string, string]>;
  data: DataSource;
}

// The most -d sends: beyond any body the API takes, it only guards this process against /dev/zero.
export const MAX_WEB_BODY = 32 * 1024 * 1024;
// How much of a refusal's body is read for its message.
const MAX_REFUSAL = 64 * 1024;

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Set by the HTTP connection itself: given with -H they would contradict it (or fetch refuses them).
const CONNECTION_HEADERS = new Set([
  'host',
  'content-length',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);
// Methods fetch will not send. (Any other token goes as it is, upper-cased: the API says if it takes it.)
const UNSENDABLE = new Set(['CONNECT', 'TRACE', 'TRACK']);
// What may stand in a URL path as it is (RFC 3986 pchar and "/"); anything else is percent-encoded.
const PATH_SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/;
// ... and in a query: pchar, "/" and "?".
const QUERY_SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@/?]/;

export function dataSource(d: string | undefined): DataSource {
  if (d === undefined) return { from: 'none' };
  if (d === '@-') return { from: 'stdin' };
  if (d.startsWith('@')) {
    if (d.length === 1) throw new UsageError('-d @FILE: name the file after "@" ("@-" for stdin)');
    return { from: 'file', file: d.slice(1) };
  }
  return { from: 'text', text: d };
}

/** Percent-encodes what may not stand as it is; "%XX" escapes already there are kept. */
function encodeUrlPart(text: string, safe: RegExp, what: string): string {
  let out = '';
  const chars = [...text];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] ?? '';
    if (safe.test(c)) out += c;
    else if (c === '%' && /^[0-9A-Fa-f]{2}$/.test(`${chars[i + 1] ?? ''}${chars[i + 2] ?? ''}`)) out += c;
    else {
      try {
        out += encodeURIComponent(c);
      } catch {
        throw new UsageError(`${what}: ${JSON.stringify(text)} is not valid text (a lone surrogate)`);
      }
    }
  }
  return out;
}

function webPath(path: string): { path: string; query: string } {
  if (!path.startsWith('/'))
    throw new UsageError(`--path: expected a path starting with "/", such as /users/1, got ${JSON.stringify(path)}`);
  const q = path.indexOf('?');
  const [p, query] = q === -1 ? [path, ''] : [path.slice(0, q), path.slice(q + 1)];
  // A URL would be rewritten around "." and ".." (also written %2e), reaching another path of the API.
  if (p.split('/').some((s) => /^(?:\.|%2e){1,2}$/i.test(s)))
    throw new UsageError(`--path: "." and ".." segments cannot be sent as they are, got ${JSON.stringify(path)}`);
  return { path: encodeUrlPart(p, PATH_SAFE, '--path'), query: encodeUrlPart(query, QUERY_SAFE, '--path') };
}

function queryItem(item: string): string {
  const eq = item.indexOf('=');
  if (eq <= 0) throw new UsageError(`-q: expected key=value, got ${JSON.stringify(item)}`);
  const enc = (s: string): string => {
    try {
      return encodeURIComponent(s);
    } catch {
      throw new UsageError(`-q: ${JSON.stringify(item)} is not valid text (a lone surrogate)`);
    }
  };
  return `${enc(item.slice(0, eq))}=${enc(item.slice(eq + 1))}`;
}

function header(h: string): [string, string] {
  const colon = h.indexOf(':');
  const name = colon === -1 ? '' : h.slice(0, colon).trim();
  if (!name) throw new UsageError(`-H: expected "Name: value", got ${JSON.stringify(h)}`);
  if (!TOKEN_RE.test(name)) throw new UsageError(`-H: ${JSON.stringify(name)} is not a header name (letters, digits and !#$%&'*+-.^_\`|~)`);
  if (CONNECTION_HEADERS.has(name.toLowerCase())) throw new UsageError(`-H: ${name} is set by the HTTP connection itself, not by -H`);
  const value = h.slice(colon + 1).trim();
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value))
    throw new UsageError(`-H: the value of ${name} holds a line break or another control character`);
  // Headers carry bytes: the value's UTF-8, one character per byte, as fetch wants it (curl sends them so).
  return [name, Buffer.from(value, 'utf8').toString('latin1')];
}

function method(m: string | undefined, hasData: boolean): string {
  if (m === undefined) return hasData ? 'POST' : 'GET';
  const up = m.toUpperCase();
  if (!TOKEN_RE.test(up) || UNSENDABLE.has(up))
    throw new UsageError(`--method: expected an HTTP method such as GET, POST, PUT, PATCH, DELETE or OPTIONS, got ${JSON.stringify(m)}`);
  if (hasData && (up === 'GET' || up === 'HEAD'))
    throw new UsageError(`-d: a ${up} request carries no body; drop --method (with -d it is POST) or give POST, PUT, PATCH ...`);
  return up;
}

/** Checks every web flag; refusals are usage errors, and nothing is read or sent yet. */
export function planWebRequest(target: string, o: WebFlags): WebPlan {
  const [name = '', version, ...rest] = target.split('@');
  if (!NAME_RE.test(name) || rest.length > 0 || (version !== undefined && !/^[1-9]\d*$/.test(version)))
    throw new UsageError(`invalid function ${JSON.stringify(target)}: expected NAME or NAME@VERSION`);
  const data = dataSource(o.data);
  const m = method(o.method, data.from !== 'none');
  const { path, query } = o.path === undefined ? { path: '', query: '' } : webPath(o.path);
  const items = [...(query ? [query] : []), ...(o.query ?? []).map(queryItem)];
  const headers = (o.header ?? []).map(header);
  return { method: m, target: `/function/${target}${path}${items.length ? `?${items.join('&')}` : ''}`, headers, data };
}

const readAll = (source: string | Readable, what: string): Promise<Uint8Array> =>
  readBoundedBytes(source, MAX_WEB_BODY, what, 'the most -d sends');

/** The body -d gives: its text as UTF-8, the bytes of its file or of stdin as they are; none without -d. */
export async function readWebBody(data: DataSource, stdin: Readable): Promise<Uint8Array | undefined> {
  switch (data.from) {
    case 'none':
      return undefined;
    case 'text':
      return Buffer.from(data.text, 'utf8');
    case 'file':
      return readAll(data.file, `-d @${data.file}`);
    case 'stdin':
      return readAll(stdin, '-d @- (stdin)');
  }
}

export interface FetchRequest {
  url: URL;
  init: RequestInit;
}

/**
 * The fetch that makes it. The API token goes as always (Authorization: Bearer), unless -H gave an
 * Authorization; the namespace (--namespace) as X-Zfaas-Namespace, unless -H gave one.
 */
export function toFetchRequest(
  api: string,
  token: string | undefined,
  plan: WebPlan,
  body: Uint8Array | undefined,
  namespace?: string,
): FetchRequest {
  const base = new URL(api);
  const url = new URL(api + plan.target);
  // Nothing may have been rewritten on the way (a dot segment, a backslash): the API gets exactly this.
  const expected = `${base.pathname.replace(/\/$/, '')}${plan.target}`;
  if (url.origin !== base.origin || `${url.pathname}${url.search}` !== expected)
    throw new UsageError(`the request would go to ${url.pathname}${url.search}, not ${expected}; check --path`);
  const headers = new Headers();
  if (token && !plan.headers.some(([k]) => k.toLowerCase() === 'authorization')) headers.set('authorization', `Bearer ${token}`);
  if (namespace && !plan.headers.some(([k]) => k.toLowerCase() === NAMESPACE_HEADER)) headers.set(NAMESPACE_HEADER, namespace);
  for (const [k, v] of plan.headers) headers.append(k, v);
  // A redirect the function answers is shown, not followed (as curl without -L).
  const init: RequestInit = { method: plan.method, headers, redirect: 'manual' };
  // Copied into a plain ArrayBuffer, the kind of view fetch's typings take.
  if (body !== undefined) init.body = new Uint8Array(body);
  return { url, init };
}

/**
 * fetch, with a failure to connect worded as every other command words it (exit 69). An API that serves
 * functions on an origin of their own answers their paths with a 308 there, without X-Zfaas-Status (a
 * function's own redirect always has it): that one is followed, once, with the same request.
 */
export async function sendWeb(fetchFn: typeof fetch, api: string, req: FetchRequest): Promise<Response> {
  const res = await fetchOnce(fetchFn, api, req);
  const location = res.headers.get('location');
  if (res.status !== 308 || res.headers.has('x-zfaas-status') || !location) return res;
  const url = new URL(location, req.url);
  if (!/^https?:$/.test(url.protocol)) return res;
  // A body we will not read: a stream that already ended may refuse to be cancelled, harmlessly.
  await res.body?.cancel().catch(() => undefined);
  return fetchOnce(fetchFn, url.origin, { url, init: req.init });
}

async function fetchOnce(fetchFn: typeof fetch, api: string, req: FetchRequest): Promise<Response> {
  try {
    return await fetchFn(req.url, req.init);
  } catch (e) {
    const cause = e instanceof Error ? (e.cause as { code?: string; message?: string } | undefined) : undefined;
    const code = cause?.code ?? '';
    if (code === 'UND_ERR_HEADERS_TIMEOUT') throw new CliError(`the API at ${api} did not answer in time`);
    const reason =
      code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' ? 'unknown host' : code || cause?.message || errText(e);
    throw new UnreachableError(api, reason);
  }
}

/** The status line and headers as `curl -i` shows them (CRLF line ends, a blank line last). */
export function formatHead(status: number, statusText: string, headers: Headers): string {
  const lines = [`HTTP/1.1 ${status}${statusText ? ` ${printable(statusText)}` : ''}`];
  // Each Set-Cookie on its own line; names come in lower case, sorted (as fetch gives them).
  for (const [k, v] of headers) lines.push(`${k}: ${printable(v)}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Where the answer goes: stdout, written in order (a test gives its own). */
export interface ByteSink {
  write(chunk: Uint8Array): Promise<void>;
}

export function streamSink(s: NodeJS.WritableStream): ByteSink {
  return {
    write: (chunk) =>
      new Promise<void>((resolve, reject) => {
        s.write(chunk, (e) => (e ? reject(e) : resolve()));
      }),
  };
}

async function bodyBytes(res: Response, limit = Infinity): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
      if (size >= limit) break;
    }
  } finally {
    // Done reading: a stream that already ended may refuse to be cancelled, harmlessly.
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks);
}

/** The `error` of a {"error": ...} body, else its text; empty when there is none. */
function errorText(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('utf8');
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v === 'object' && v !== null && 'error' in v && typeof v.error === 'string') return v.error;
  } catch {
    /* not JSON: the text itself */
  }
  return text.trim().slice(0, 200);
}

/** Copies the body as it comes; returns its last byte (undefined for an empty body). */
async function copyBody(res: Response, sink: ByteSink): Promise<number | undefined> {
  const reader = res.body?.getReader();
  if (!reader) return undefined;
  let last: number | undefined;
  for (;;) {
    let r: ReadableStreamReadResult<Uint8Array>;
    try {
      r = await reader.read();
    } catch (e) {
      throw new CliError(`the answer was cut short: ${errText(e)}`);
    }
    if (r.done) return last;
    if (r.value.length > 0) last = r.value[r.value.length - 1];
    await sink.write(r.value);
  }
}

// With -i the answer is read as text, as curl -i's is: a body that does not end a line gets one, so the
// shell's prompt starts on a line of its own. Without -i the body stays byte for byte as it came.
async function endLine(sink: ByteSink, last: number | undefined): Promise<void> {
  if (last !== undefined && last !== 0x0a) await sink.write(Buffer.from('\n'));
}

/**
 * Prints the answer and returns the exit code: 0 for a response the function chose (whatever its
 * status), 3 ERROR, 4 TIMEOUT (a line on stderr saying so; the body too with -i). An answer without
 * X-Zfaas-Status is the API's refusal: thrown as ApiError (exit 1, 77 for the token), or 5 when the
 * API stopped waiting for a call it had started (X-Zfaas-Call).
 */
export async function printWebAnswer(
  res: Response,
  sink: ByteSink,
  o: { include?: boolean; note: (text: string) => void },
): Promise<number> {
  const outcome = res.headers.get('x-zfaas-status')?.toUpperCase();
  const callNum = res.headers.get('x-zfaas-call');
  if (!outcome && res.status >= 400) {
    let msg = errorText(await bodyBytes(res, MAX_REFUSAL)) || res.statusText || `HTTP ${res.status}`;
    if (res.status === 504 && callNum) throw new CliError(msg, EXIT.CALL_PENDING);
    const retry = res.headers.get('retry-after');
    if (res.status === 429 && retry) msg += ` (retry after ${retry} s)`;
    throw new ApiError(res.status, msg);
  }
  if (o.include) await sink.write(Buffer.from(formatHead(res.status, res.statusText, res.headers), 'latin1'));
  if (outcome !== 'ERROR' && outcome !== 'TIMEOUT') {
    const last = await copyBody(res, sink);
    if (o.include) await endLine(sink, last);
    return EXIT.OK;
  }
  const body = await bodyBytes(res);
  if (o.include) {
    await sink.write(body);
    await endLine(sink, body.length > 0 ? body[body.length - 1] : undefined);
  }
  const error = printable(errorText(body).trim(), false) || 'no error text';
  o.note(`zfaas: ${callNum ? `call ${printable(callNum)}` : 'the call'} ended in ${outcome}: ${error}`);
  return outcome === 'ERROR' ? EXIT.CALL_ERROR : EXIT.CALL_TIMEOUT;
}

export interface WebInvoke {
  target: string;
  flags: WebFlags;
  stdin: Readable;
  /** The API address and token, resolved only once the flags are known to be right. */
  config: () => Promise<{ api: string; token?: string; namespace?: string }>;
  fetchFn: typeof fetch;
  sink: ByteSink;
  note: (text: string) => void;
}

/** The whole web form: check, read the body, send, print. Returns the exit code. */
export async function webInvoke(w: WebInvoke): Promise<number> {
  const plan = planWebRequest(w.target, w.flags);
  const body = await readWebBody(plan.data, w.stdin);
  const { api, token, namespace } = await w.config();
  const res = await sendWeb(w.fetchFn, api, toFetchRequest(api, token, plan, body, namespace));
  return printWebAnswer(res, w.sink, { include: w.flags.include, note: w.note });
}
