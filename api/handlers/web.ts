// ANY /function/:name[@version][/sub/path] — the function as a plain web API, as the OpenFaaS gateway's
// /function/NAME is: the function gets the request (method, path below the function, query, headers, body
// as raw bytes) and chooses the response (status, headers, body) in its own platform's convention
// (protocol/loader.ts). A function in the JSON contract gets a JSON body (or the query) as its params and
// its result is the answer, as always. Hop-by-hop headers are handled as a proxy must (RFC 9110 7.6.1);
// a body over the limit gets 413 before any container is used. A function deployed with public=true
// answers without the API token, within its rate limit (429 with Retry-After past it). An `Idempotency-Key`
// header already used for the same request answers that call's outcome, or waits for it (../idempotency.ts).
// Every answer here is sandboxed away from the API's origin, and headers that would act for that origin
// are not passed on (../../common/web-headers.ts). A function that streams its answer has it written as it
// goes (../stream-answer.ts); a caller that leaves such an answer before its end cancels the call.
// The path is served on Node's own request and response, without express (webFront, before the API's app:
// express's routing and response helpers cost a warm call more than the rest of the API's HTTP work); the
// express route (webRouter) runs the same handler, so the route is declared and checked as every other.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzip, inflate, brotliDecompress } from 'node:zlib';
import { promisify } from 'node:util';
import type { Router } from 'express';
import type { CallOutcome, FunctionMeta } from '../../common/model.js';
import { FAULTS, faultOf } from '../../common/faults.js';
import { type Logger } from '../../common/log.js';
import { HOP_BY_HOP, type HttpRequest } from '../../protocol/loader.js';
import { ISOLATION_HEADERS } from '../../common/web-headers.js';
import { refuse, type Identity, type Refusal } from '../tenancy/identity.js';
import { OPERATOR_DEFAULT, Scope, scopeOf } from '../tenancy/scope.js';
import { namespaceSchema, qualify } from '../../common/namespace.js';
import type { Calls } from '../calls.js';
import { NotFoundError } from '../../common/errors.js';
import { answerError, checkParams, HttpError, parse, sendJson, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { callerOf, idempotencyKey, idempotencyOf, REPLAYED_HEADER, replayOutcome } from '../idempotency.js';
import { RateLimits } from '../rate-limits.js';
import { targetSchema, waitBudgetMs } from './invoke.js';
import type { StreamHub } from '../streams.js';
import { StreamAnswer, writeHeaders } from '../stream-answer.js';

// AWS Lambda's limit for a synchronous request; the OpenFaaS gateway and OpenWhisk are in the same range.
export const WEB_BODY_LIMIT = 6 * 1024 * 1024;
const PARAMS_LIMIT = 1024 * 1024; // a JSON body becomes the params (and the call record) up to this size

// /function/NAME[@VERSION][/sub/path] and /ns/NAMESPACE/function/NAME[@VERSION][/sub/path]: the namespace,
// the name and the path below the function are its groups.
export const WEB_PATH = /^(?:\/ns\/([^/]+))?\/function\/([^/]+)(\/.*)?$/;
const WEB_RULE = { need: 'public' } as const;

export interface WebDeps {
  calls: Calls;
  streams: StreamHub; // streamed answers, as the nodes pass them on (../streams.ts)
  cancel(callNum: number): Promise<unknown>; // a caller that leaves a streamed answer cancels its call
  idempotencyTtlS: number; // how long an Idempotency-Key stands for its call
  log: Logger;
}

// Who asks: the scope of accepted credentials, or (refusal) of none that were accepted: such a caller
// reaches public functions only, as the anonymous caller of the default namespace.
interface Caller {
  scope: Scope;
  refusal?: Refusal;
}

// The path's groups, decoded: [namespace, NAME[@VERSION], path below the function].
type WebParams = [string | undefined, string | undefined, string | undefined];

type WebHandler = (req: IncomingMessage, res: ServerResponse, path: string, params: WebParams, caller: Caller) => Promise<void>;

// The web path served before the API's express app: a request whose path is a function's is answered here
// (true), any other is left to the app (false).
export function webFront(d: WebDeps & { identity: Identity }): (req: IncomingMessage, res: ServerResponse) => boolean {
  const handle = webHandler(d);
  return (req, res) => {
    const url = req.url ?? '';
    if (url[0] !== '/') return false; // another form of target: express's own parsing and answer
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const m = WEB_PATH.exec(path);
    if (!m) return false;
    serve(req, res, path, m, d.identity, handle).catch((e: unknown) => answerError(e, path, res, d.log));
    return true;
  };
}

async function serve(req: IncomingMessage, res: ServerResponse, path: string, m: RegExpExecArray, identity: Identity, handle: WebHandler) {
  sandbox(res);
  const who = await identity.caller(req, WEB_RULE, path);
  const caller = who instanceof Scope ? { scope: who } : { scope: OPERATOR_DEFAULT, refusal: who };
  await handle(req, res, path, [decodeParam(m[1]), decodeParam(m[2]), decodeParam(m[3])], caller);
}

// As express decodes a route's params: a param that does not decode is a 400.
function decodeParam(v: string | undefined): string | undefined {
  if (v === undefined || v === '') return v;
  try {
    return decodeURIComponent(v);
  } catch {
    throw new HttpError(400, `Failed to decode param '${v}'`);
  }
}

// First, so that whatever answers (the function, a refusal, an error) is never the API origin's page.
function sandbox(res: ServerResponse): void {
  for (const [name, value] of Object.entries(ISOLATION_HEADERS)) res.setHeader(name, value);
}

// The same handler as an express route: what declares the path and its rule among the API's routes, and
// serves it where the front is not in the way (a router used alone, in tests).
// /function/NAME[/sub/path] in the caller's namespace (anonymous: default's), or
// /ns/NAMESPACE/function/NAME[/sub/path] in that one (what an anonymous caller of a public function of
// another namespace uses; a key reaches only its own namespace this way too).
// `public`: a caller without credentials reaches the handler, which answers it for a public function only.
export function webRouter(d: WebDeps): Router {
  const r = router();
  const handle = webHandler(d);
  route(
    r,
    'ALL',
    WEB_PATH,
    'public',
    wrap(async (req, res) => {
      sandbox(res);
      const p = req.params as Record<string, string | undefined>;
      const refusal = res.locals.refusal as Refusal | undefined;
      await handle(req, res, req.path, [p[0], p[1], p[2]], refusal ? { scope: scopeOf(res), refusal } : { scope: scopeOf(res) });
    }),
  );
  return r;
}

function webHandler(d: WebDeps): WebHandler {
  const limits = new RateLimits();
  return async (req, res, path, params, { scope, refusal }) => {
    const method = req.method ?? 'GET';
    const target = parse(targetSchema, params[1] ?? '', 'function name');
    // Credentials first: without them, a function that is not public does not exist for the caller
    // (an anonymous caller reaches the default namespace's public functions).
    let def;
    try {
      def = await d.calls.resolveFunction(qualify(namespaceOf(params[0], scope, !!refusal, target.name), target.name), target.version);
    } catch (e) {
      if (refusal) return refuse(req, res, refusal, d.log, path);
      throw e;
    }
    const fn = def.fn;
    if (!fn.settings.public && refusal) return refuse(req, res, refusal, d.log, path);
    if (fn.settings.public) {
      const wait = limits.take(fn.functionName, fn.settings.rateLimit ?? 50);
      if (wait > 0) {
        res.setHeader('Retry-After', String(Math.ceil(wait / 1000)));
        throw new HttpError(429, `function ${target.name} takes at most ${fn.settings.rateLimit ?? 50} requests a second`);
      }
    }
    const body = await readBody(req, WEB_BODY_LIMIT);
    const subPath = params[2] ?? '/';
    const query = rawQuery(req);
    const http: HttpRequest = {
      method,
      path: subPath,
      query,
      headers: forwardHeaders(req, !fn.settings.public || !refusal), // accepted credentials stay with the platform
      body: body.toString('base64'),
      sourceIp: req.socket.remoteAddress ?? '',
    };
    const callParams = paramsOf(req, body, fn);
    checkParams(callParams);
    const key = idempotencyKey(req);
    const asked = { method, path: subPath, query, body };
    // The call's streamed answer is listened to from just before it is queued: its pieces may come before
    // invokeResolved returns (it is queued while its record is written).
    let stream: StreamAnswer | undefined;
    let unlisten: (() => void) | undefined;
    const answerFor = (callNum: number): StreamAnswer => {
      res.setHeader('X-Zfaas-Call', String(callNum));
      return new StreamAnswer({ res, method, callNum, cancel: d.cancel, log: d.log });
    };
    let made: Awaited<ReturnType<typeof d.calls.invokeResolved>>;
    try {
      made = await d.calls.invokeResolved(def, callParams, {
        redundant: flag(query, 'redundant'),
        http,
        request: { method, path: subPath.slice(0, 2048), query: query.slice(0, 4096) },
        idempotency:
          key === undefined
            ? undefined
            : idempotencyOf(key, d.idempotencyTtlS, callerOf(scope, !!refusal, fn.functionName), fn.functionName, callParams, asked),
        ...(refusal || !scope.keyId ? {} : { by: scope.keyId }),
        listen: (callNum) => {
          const s = (stream = answerFor(callNum));
          unlisten = d.streams.listen(callNum, (p) => s.take(p));
        },
      });
    } catch (e) {
      unlisten?.();
      throw e;
    }
    const { call, replayed } = made;
    stream ??= answerFor(call.callNum); // a replay, or a call that was not queued
    if (replayed) res.setHeader(REPLAYED_HEADER, 'true');
    const budget = waitBudgetMs(fn);
    const ended = await (replayed ? replayOutcome(d.calls.waiters, call, budget) : d.calls.waiters.wait(call.callNum, budget)).finally(() =>
      unlisten?.(),
    );
    const outcome = ended?.outcome ?? null;
    if (stream.streaming) return stream.finish(outcome);
    // A replay from the record: a body larger than its first KiB of text was not kept, only its size.
    const w = outcome?.response;
    if (w && w.body === undefined && (w.bytes ?? 0) > 0) res.setHeader('X-Zfaas-Body-Not-Kept', String(w.bytes));
    answer(method, res, call.callNum, outcome, d.log);
  };
}

const INFLATE: Record<string, (b: Buffer, o: { maxOutputLength: number }) => Promise<Buffer>> = {
  gzip: promisify(gunzip),
  'x-gzip': promisify(gunzip),
  deflate: promisify(inflate),
  br: promisify(brotliDecompress),
};

// The request's body as bytes, at most `limit` (413 past it), inflated when it came compressed (as
// express's body parsers inflate gzip, deflate and br; another encoding is a 415).
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  const inflate = encoding === 'identity' ? undefined : INFLATE[encoding];
  if (encoding !== 'identity' && !inflate) {
    req.resume();
    throw new HttpError(415, `unsupported content encoding "${encoding}"`);
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    throw new HttpError(413, 'request body too large');
  }
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (e?: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onAborted);
      if (e) {
        req.resume(); // what is left is read and dropped, so that the answer can still be sent
        reject(e);
      } else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) return done(new HttpError(413, 'request body too large'));
      chunks.push(c);
    };
    const onEnd = () => done();
    const onError = (e: Error) => done(new HttpError(400, `request body not read: ${e.message}`));
    const onAborted = () => done(new HttpError(400, 'request aborted'));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onAborted);
  });
  if (!inflate) return raw;
  try {
    return await inflate(raw, { maxOutputLength: limit });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new HttpError(413, 'request body too large');
    throw new HttpError(400, `request body not inflated (${encoding}): ${(e as Error).message}`);
  }
}

// The namespace a web path names, as this caller may reach it: a key's own only (another is, for it, a
// namespace with no such function), any for the operator or an anonymous caller (who reaches public
// functions only).
function namespaceOf(asked: string | undefined, scope: Scope, anonymous: boolean, name: string): string {
  if (asked === undefined) return scope.namespace;
  const ns = namespaceSchema.safeParse(asked);
  if (!ns.success || (!anonymous && !scope.operator && ns.data !== scope.namespace)) throw new NotFoundError(`function ${name} not found`);
  return ns.data;
}

// A flag in the query, sent once: ?redundant, ?redundant=true or =1.
function flag(query: string, name: string): boolean {
  if (query === '') return false;
  const v = new URLSearchParams(query).getAll(name);
  return v.length === 1 && (v[0] === 'true' || v[0] === '1' || v[0] === '');
}

function rawQuery(req: IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q < 0 ? '' : url.slice(q + 1);
}

// The request's headers as the function gets them: names in lower case, repeated ones joined, hop-by-hop
// ones and those the Connection header names left out, and the platform's own token kept from the code.
function forwardHeaders(req: IncomingMessage, dropAuthorization: boolean): Record<string, string> {
  const named = String(req.headers.connection ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.includes(name) || (dropAuthorization && name === 'authorization')) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

// The params of a function in the JSON contract: a JSON body, else the query (a function in another
// convention reads the request itself). A body sent as JSON must be JSON, as the JSON contract and the
// Express-like platforms have it; a function whose format is not set explicitly may be in the JSON
// contract, so its JSON bodies keep that contract's 1 MiB limit.
function paramsOf(req: IncomingMessage, body: Buffer, fn: FunctionMeta): unknown {
  const format = fn.settings.format ?? 'auto';
  // An image function's server reads the request itself: its body is never held to the JSON contract.
  const raw = format === 'lambda' || format === 'lambda-v1' || fn.image !== undefined;
  const sentAsJson =
    /^application\/([\w.+-]*\+)?json\b/i.test(req.headers['content-type'] ?? '') || req.headers['content-type'] === undefined;
  if (body.length > PARAMS_LIMIT) {
    if ((format === 'auto' || format === 'json') && sentAsJson)
      throw new HttpError(413, `a JSON body is at most 1 MiB for a function in the JSON contract (its format is ${format})`);
  } else if (body.length > 0) {
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch (e) {
      if (!raw && (format === 'json' || /json/i.test(req.headers['content-type'] ?? '')))
        throw new HttpError(400, `bad JSON in request body: ${(e as Error).message}`);
    }
  }
  const q: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(rawQuery(req))) {
    const had = q[k];
    q[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  return q;
}

function answer(method: string, res: ServerResponse, callNum: number, o: CallOutcome | null, log: Logger): void {
  if (!o) throw new HttpError(504, `call ${callNum} has not finished yet; poll GET /call/${callNum}`);
  res.setHeader('X-Zfaas-Status', o.status);
  if (o.status === 'DONE' && o.response) {
    const w = o.response;
    writeHeaders(res, w.headers, callNum, log);
    res.statusCode = w.status;
    const noBody = method === 'HEAD' || w.status === 204 || w.status === 304 || (w.status >= 100 && w.status < 200);
    if (noBody || w.body === undefined) res.end();
    else res.end(Buffer.from(w.body, 'base64'));
    return;
  }
  if (o.status === 'DONE') {
    let json = false;
    try {
      JSON.parse(o.result);
      json = o.result.trim() !== '';
    } catch {
      json = false;
    }
    res.statusCode = 200;
    res.setHeader('Content-Type', json ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(o.result));
    res.end(o.result);
    return;
  }
  // The caller learns that the call failed and how to read it; the function's stack stays in the record.
  const error = (o.error ?? o.status).split('\n')[0]!.slice(0, 500);
  const fault = faultOf(o) ?? 'function';
  sendJson(res, FAULTS[fault].http, { error, status: o.status, fault, callNum });
}
