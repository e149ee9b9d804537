// The loader protocol, version 5: how a node talks to the loader that keeps a function warm inside its
// container (runtimes/node/loader.js, runtimes/python/loader.py). The loaders check what they are sent
// by hand (they run inside the container, with no dependencies), with the constants and patterns below:
// runtimes/build/loaders.ts writes them into runtimes/loader-protocol.json and into each built loader, and
// a test fails while those are not current. The node validates every reply with these schemas, because
// whatever comes out of a container is untrusted input. runtimes/conformance.test.ts runs every loader
// over these messages.
//
// Transport: JSON lines (one message a line, UTF-8, "\n"). The node listens on a unix socket in a folder
// bind-mounted read-only into the container (ZFAAS_LINE names it inside); the loader dials in and says
// hello. Without ZFAAS_LINE a loader speaks the same lines on stdin/stdout (its self-test, benchmarks).
//
//   loader -> node   {"op":"hello","v":3,"pid":N}                        once, first
//   node -> loader   {"op":"load","dir","handler","env","format"?}       -> {"op":"loaded","ok":true,"format"}
//                                                                           | {"op":"loaded","ok":false,"error"}
//   node -> loader   {"op":"call","id":N,"params","env"}                 -> {"op":"result","id":N,"ok":true,"result","logs"}
//                                                                           | {"op":"result","id":N,"ok":false,"error","logs"}
//                                                                           (version 5: each result says `took`)
//                    a web call may first stream its answer (version 3):    {"op":"head","id":N,"status","headers"} once,
//                                                                           then {"op":"chunk","id":N,"data"} (base64) each
//                                                                           write, then its result (http.body empty,
//                                                                           `streamed`: the bytes the chunks carried)
//   node -> loader   {"op":"ping"}                                       -> {"op":"pong"}
//   node -> loader   {"op":"secrets","dir","files","keep"}               -> {"op":"secretsSet","ok":true}
//                                                                           | {"op":"secretsSet","ok":false,"error"}
//   node -> loader   {"op":"cancel","id":N}                              (v3) -> the call's result, ok:false, CANCELLED
//   anything it cannot read                                              -> {"op":"error","error","id"?}
//
// Several calls at once (version 3). A `load` may say `concurrency` N (a function's containerConcurrency):
// the node may then send up to N `call`s before their results, which the loader answers as each ends,
// matched by id. Each call sees its own per-call env and has its own logs (the node loader: an
// AsyncLocalStorage view of process.env and of the output; the python loader: contextvars, coroutines on
// one asyncio loop). `cancel` ends one call: its result comes at once, ok:false with the error CANCELLED;
// a cancel of a call that already ended is ignored. Without `concurrency` (or with 1) nothing changes:
//
// One request at a time: the node never sends the next before the reply. A call's `env` holds what is
// per call (ZFAAS_CALL, ZFAAS_ATTEMPT, ZFAAS_REPLICA, ZFAAS_DEADLINE): set for that call only, so warm and cold runs
// see the same variables. A result longer than RESULT_LIMIT characters is cut and says `truncated`; a
// call that leaves processes running in the container says how many in `stray` (the node then discards
// the container). A reply that does not parse, is longer than MAX_LINE, or answers something that was
// not asked, ends the call in ERROR and the container is discarded.
//
// Versions. Any change to a message is a new version, and the node says which versions it speaks with
// (OLDEST_LOADER_PROTOCOL to LOADER_PROTOCOL). Version 2 declares what loaders of version 1 had come to
// send: `format` in `loaded`, and the `secrets` request. A version 1 loader still works with this node:
// it may leave `format` out (the node does not need it), and one without secrets answers `error` to them,
// after which the node discards its container; a loader of a version the node does not speak is refused.
// Version 3 adds `concurrency` in `load` and the `cancel` request (above); the node sends neither to a
// loader of version 1 or 2, and gives its containers one call at a time.
//
// Version 3 adds streamed answers: a web call's function that writes its response as it goes (Lambda's
// awslambda.streamifyResponse, gcf's res.write before res.end, a Python generator) has it sent at once, the
// head (status, headers) first, then each write as a chunk of at most STREAM_CHUNK_LIMIT bytes, at most
// STREAM_LIMIT bytes in all; the call's `result` follows as ever, its http.body empty and `streamed` the
// number of bytes the chunks carried. A loader that never streams speaks version 3 as it spoke 2.
//
// Version 4 changes no message: it says a call's `env` (and ZFAAS_PARAMS) does not grow the loader's
// process. The C library keeps every value setenv was ever given, so a loader that sets each call's
// variables with it grows with every call (by the size of its params, where it sets ZFAAS_PARAMS). The node
// loader keeps them in a view of process.env (which a process the call starts inherits); the python loader
// points the environment at buffers of its own with putenv, and frees each once a later value replaced it.
// The node replaces a container whose loader speaks an older version after RECYCLE_AFTER_CALLS calls
// (instance/session.ts), and keeps one of version 4 as long as it is used. A loader of an older version
// whose process a call's variables do not grow either says `steady: true` in its hello (the go loader,
// which rebuilds Go's own table of variables now and then; the java loader, which changes its map in place).
//
// Version 5 adds `took` to every `result`: the microseconds from the loader reading the call to its
// result being ready, as the loader's own clock measured them. The node compares it with the call's round
// trip as it saw it: a function whose calls spend most of that time outside the function (in the node, on
// the line, waiting for the machine's CPUs) is served no faster by more containers, and waits for one of its
// own instead of making another (instance/placement.ts). Without `took` (an older loader) the node makes
// containers as before. A loader of an older version may say it too (the go and java loaders, of version 2,
// do).
//
// Secrets. A function whose settings name secrets reads each as the file SECRETS_DIR/NAME, on a tmpfs owned by the
// function's uid (0500; the loader makes it 0700 while it writes). Before a call whose secrets' versions
// differ from what the container holds, the node sends `secrets`: `files` maps a name to its new value
// (base64), each written to a temporary file (0400) and renamed over the old one, so a file is never seen
// half-written; every file whose name is not in `keep` is removed. Values travel only over this line:
// never in the environment, a command line or a label.
//
// Web calls. A function has a calling convention, its `format` (sent with `load`; `auto` lets the loader
// tell it from the handler's shape where that is unambiguous, and `loaded` says which it chose):
//   json       handler(params) -> any value; the value is the answer (JSON), as always
//   lambda     AWS Lambda: handler(event, context[, callback]) with an API Gateway HTTP API event
//              (payload 2.0); `lambda-v1` sends the REST API event (payload 1.0)
//   openwhisk  Apache OpenWhisk (web) actions: main(args) with __ow_method, __ow_headers, __ow_path,
//              __ow_query, __ow_body beside the query and body parameters
//   openfaas   OpenFaaS templates: node (event, context) with context.status().headers().succeed()/fail();
//              python3-http handle(event, context) -> {statusCode, body, headers}
//   gcf        Google Cloud Functions: node (req, res), Express-like; python fn(request), Flask-like; and
//              CloudEvent functions registered with the Functions Framework
// A call made through the web path carries `http`, the request as it came (body as base64); a json function
// ignores it (the node turned the request into its params); in any other format the loader gives it to the
// function in that convention and answers with `http`, the response the function chose (body as base64);
// a plain value where a response was expected (Lambda payload 2.0, OpenWhisk) becomes a 200 JSON response,
// as API Gateway and OpenWhisk make it, and is also the `result`. A response the function shaped wrongly
// (a status that is not a number, a header that is not a string, CR or LF in a header, base64 that does not
// decode) is a failed call, `ok:false`, whose error starts with "malformed response:" (or "response too
// large:"). The node checks every response again before it answers (HttpResponseSchema, header names that
// are tokens, no CR or LF) and answers 502 for one that is not right.
import { z } from 'zod';

export const LOADER_PROTOCOL = 5;
export const CONCURRENT_PROTOCOL = 3; // the first version that takes several calls at once and `cancel`
export const ENV_VIEW_PROTOCOL = 4; // the first version whose process a call's variables do not grow
export const TOOK_PROTOCOL = 5; // the first version whose results say `took`
export const TOOK_LIMIT = 24 * 3600 * 1e6; // µs: more than any call's timeout
export const CANCELLED = 'cancelled'; // a cancelled call's error
export const OLDEST_LOADER_PROTOCOL = 1;
export const RESULT_LIMIT = 6 * 1024 * 1024; // characters of a result the loaders keep
export const LOG_LIMIT = 64 * 1024; // characters of a call's logs the loaders keep
export const STREAM_CHUNK_LIMIT = 256 * 1024; // bytes one `chunk` carries (a longer write is sent in pieces)
export const STREAM_LIMIT = 64 * 1024 * 1024; // bytes a call may stream in all: past this it fails
// JSON escaping can make a line up to six times longer than what it carries; past this it is broken.
export const MAX_LINE = 48 * 1024 * 1024;
export const LINE_ENV = 'ZFAAS_LINE'; // where the loader finds the node's socket inside the container
export const LINE_DIR = '/run/zfaas'; // the folder mounted read-only into the container
export const LINE_FILE = 'line.sock';
export const SECRETS_DIR = '/var/zfaas/secrets'; // a tmpfs in every function container (container-spec.ts)
// What the loaders check names and values against, unanchored so that each language anchors them its own
// way (the same syntax in JavaScript's and Python's regular expressions).
export const PATTERNS = {
  envName: '[A-Za-z_][A-Za-z0-9_]*', // a call's and a load's `env` names
  headerToken: "[!#$%&'*+.^_`|~0-9A-Za-z-]+", // a header name (RFC 9110 token)
  secretName: '[A-Za-z0-9][A-Za-z0-9._-]{0,63}', // as SECRET_NAME_RE in common/model.ts: no "/", no leading dot
  base64: '[A-Za-z0-9+/]*={0,2}', // secrets' values and web bodies
} as const;
/** A pattern that must match the whole string. */
export const whole = (pattern: string): RegExp => new RegExp(`^(?:${pattern})$`);
export const HEADER_TOKEN_RE = whole(PATTERNS.headerToken);
export const BASE64_RE = whole(PATTERNS.base64);

const secretName = z.string().regex(whole(PATTERNS.secretName));

const envSchema = z.record(z.string().regex(whole(PATTERNS.envName)), z.string());

export const FORMATS = ['auto', 'json', 'lambda', 'lambda-v1', 'openwhisk', 'openfaas', 'gcf'] as const;
export const FormatSchema = z.enum(FORMATS);
export type Format = z.infer<typeof FormatSchema>;

// Headers that belong to one connection, not to the request or response a proxy passes on (RFC 9110
// 7.6.1), with those the Connection header names; both the API and the node leave them out.
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

// A web request as the node received it (hop-by-hop headers already removed).
export const HttpRequestSchema = z.object({
  method: z.string(),
  path: z.string(), // below the function: "/" or "/users/1"
  query: z.string(), // the raw query string, without "?"
  headers: z.record(z.string(), z.string()), // names in lower case; repeated ones joined with ", "
  body: z.string(), // base64
  sourceIp: z.string(),
});
export type HttpRequest = z.infer<typeof HttpRequestSchema>;

// The response a function chose.
export const HttpResponseSchema = z.object({
  status: z.number().int().min(100).max(599),
  headers: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
  body: z.string(), // base64
});
export type HttpResponse = z.infer<typeof HttpResponseSchema>;

export const LoadRequestSchema = z.object({
  op: z.literal('load'),
  dir: z.string(),
  handler: z.string().nullable(),
  env: envSchema,
  format: FormatSchema.optional(), // default auto
  concurrency: z.number().int().min(1).optional(), // since version 3: calls that may run at once (default 1)
});
export type LoadRequest = z.infer<typeof LoadRequestSchema>;
export const CallRequestSchema = z.object({
  op: z.literal('call'),
  id: z.number().int().min(1),
  params: z.unknown(),
  env: envSchema,
  http: HttpRequestSchema.optional(),
});
export type CallRequest = z.infer<typeof CallRequestSchema>;
export const SecretsRequestSchema = z.object({
  op: z.literal('secrets'),
  dir: z.string(),
  files: z.record(secretName, z.string().regex(BASE64_RE)), // base64 values, new or changed
  keep: z.array(secretName).max(32), // every file the folder holds after this; others are removed
});
export type SecretsRequest = z.infer<typeof SecretsRequestSchema>;
export type LoaderRequest = LoadRequest | CallRequest | SecretsRequest | { op: 'ping' };
// Since version 3: ends one running call, which answers with its result (ok:false, error CANCELLED); no
// reply of its own (a call that already ended is not answered twice).
export const CancelRequestSchema = z.object({ op: z.literal('cancel'), id: z.number().int().min(1) });
export type CancelRequest = z.infer<typeof CancelRequestSchema>;

export const HelloSchema = z.object({
  op: z.literal('hello'),
  v: z.number().int(),
  pid: z.number().int().optional(),
  steady: z.boolean().optional(), // a loader older than ENV_VIEW_PROTOCOL that does not grow with calls either
});

export const LoadedSchema = z.object({
  op: z.literal('loaded'),
  ok: z.boolean(),
  format: FormatSchema.exclude(['auto']).optional(), // the format the function got (auto told from its shape); since version 2
  error: z
    .string()
    .max(64 * 1024)
    .optional(),
});
export const ResultSchema = z.object({
  op: z.literal('result'),
  id: z.number().int(),
  ok: z.boolean(),
  result: z.string().max(RESULT_LIMIT).optional(),
  error: z
    .string()
    .max(64 * 1024)
    .optional(),
  // With ok:false: `response`, the function answered but its response could not be carried (malformed, too
  // large); unset, the function itself failed. The node answers a web caller 502 or 500 by it.
  fault: z.enum(['response']).optional(),
  logs: z
    .string()
    .max(LOG_LIMIT + 256)
    .optional(),
  truncated: z.boolean().optional(),
  stray: z.number().int().min(0).optional(),
  http: z.unknown().optional(), // the response the function chose: checked against HttpResponseSchema by the node
  streamed: z.number().int().min(0).max(STREAM_LIMIT).optional(), // since version 3: the bytes its chunks carried
  took: z.number().int().min(0).max(TOOK_LIMIT).optional(), // since version 5: µs from reading the call to its result
});
export type LoaderResult = z.infer<typeof ResultSchema>;
// A streamed answer's head, before its chunks (version 3); checked like a response by the node.
export const HeadSchema = z.object({
  op: z.literal('head'),
  id: z.number().int(),
  status: z.number().int().min(100).max(599),
  headers: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
});
export type StreamHead = z.infer<typeof HeadSchema>;
// One write of a streamed answer: base64 of at most STREAM_CHUNK_LIMIT bytes.
export const ChunkSchema = z.object({
  op: z.literal('chunk'),
  id: z.number().int(),
  data: z
    .string()
    .max(Math.ceil(STREAM_CHUNK_LIMIT / 3) * 4)
    .regex(BASE64_RE),
});
export type StreamChunk = z.infer<typeof ChunkSchema>;
export const PongSchema = z.object({ op: z.literal('pong') });
export const SecretsSetSchema = z.object({
  op: z.literal('secretsSet'),
  ok: z.boolean(),
  error: z
    .string()
    .max(64 * 1024)
    .optional(),
});
export const LoaderErrorSchema = z.object({ op: z.literal('error'), error: z.string().max(64 * 1024), id: z.number().int().optional() });

export const LoaderReplySchema = z.discriminatedUnion('op', [
  HelloSchema,
  LoadedSchema,
  ResultSchema,
  HeadSchema,
  ChunkSchema,
  PongSchema,
  SecretsSetSchema,
  LoaderErrorSchema,
]);
export type LoaderReply = z.infer<typeof LoaderReplySchema>;

// What each request is answered by: a reply of another kind (or another call's id) is out of order.
export const expectedReply = { load: 'loaded', call: 'result', ping: 'pong', secrets: 'secretsSet' } as const satisfies Record<
  LoaderRequest['op'],
  LoaderReply['op']
>;
