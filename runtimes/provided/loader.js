#!/usr/bin/env node
/*
 * zfaas provided loader: serves the AWS Lambda Runtime API inside a `provided` runtime's container, for a
 * function whose archive holds an executable `bootstrap` (a custom runtime, as Lambda's provided.al2023
 * runs it). No dependencies; Node 18+. Built from runtimes/provided/src and the node loader's shared
 * modules by `npm run loaders` (runtimes/build/loaders.ts): edit those, not runtimes/provided/loader.js.
 *
 * It speaks the loader protocol (protocol/loader.ts) with the node as the node loader does. `load` starts the
 * function's bootstrap as its child, with AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001, LAMBDA_TASK_ROOT (the
 * function's folder), _HANDLER (the handler setting) and AWS_LAMBDA_FUNCTION_NAME/_VERSION/_MEMORY_SIZE,
 * and answers once the bootstrap asks for its first invocation (or fails, if it posts to /init/error or
 * exits first). Each call is one invocation: GET /2018-06-01/runtime/invocation/next answers with the
 * params as the event and the headers Lambda-Runtime-Aws-Request-Id, Lambda-Runtime-Deadline-Ms,
 * Lambda-Runtime-Invoked-Function-Arn and Lambda-Runtime-Trace-Id; POST .../invocation/ID/response is the
 * call's result, .../invocation/ID/error its failure. One invocation at a time; the bootstrap stays warm
 * between calls, and one that exited is started again for the next call. What it prints is the call's logs.
 * Run-once mode (`--once`) serves one invocation of the params on stdin and prints the response.
 */
'use strict';

// ---- generated from protocol/loader.ts by runtimes/build/loaders.ts: do not edit
const PROTOCOL = 2;
const LOG_LIMIT = 65536;
const RESULT_LIMIT = 6291456;
const STREAM_CHUNK_LIMIT = 262144;
const STREAM_LIMIT = 67108864;
const CANCELLED = "cancelled"; // a cancelled call's error
const LINE_ENV = "ZFAAS_LINE"; // the node's unix socket, when it has one
const FORMATS = ["auto","json","lambda","lambda-v1","openwhisk","openfaas","gcf"];
const ENV_NAME = new RegExp("^(?:[A-Za-z_][A-Za-z0-9_]*)$");
const TOKEN = new RegExp("^(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$");
const SECRET_NAME = new RegExp("^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63})$");
const BASE64 = new RegExp("^(?:[A-Za-z0-9+/]*={0,2})$");

// ---- ./node/src/base.js
// The loader's own settings and the errors it words itself; Node's modules it uses.
const fs = require('fs');
const net = require('net');
const path = require('path');
const Module = require('module');
const { EventEmitter } = require('events');
const { pathToFileURL } = require('url');

const CONNECT_FOR_MS = 5000; // how long to keep dialing it
const ERR_LIMIT = 8 * 1024;
const LOADER_FILE = __filename;
const INTERNAL_FRAME = /\(node:internal|at node:internal|at new Promise \(<anonymous>\)/;

class NoHandler extends Error {}
// An error the loader words itself: its message is all it says.
class ReplyError extends Error {}
// The function answered, but with a response that cannot be carried (malformed, too large): the call's
// result says `fault: 'response'`, and a web caller gets 502 instead of 500.
class ResponseError extends ReplyError {}

// ---- ./node/src/capture.js
// Output capture: what a function writes (console.*, process.stdout/stderr) during a call goes into the call's
// `logs` (bounded, keeping the end); outside a call it goes to stderr; never to the protocol.
const realStdoutWrite = process.stdout.write.bind(process.stdout);
const realStderrWrite = process.stderr.write.bind(process.stderr);

let collecting = false;
let chunks = [];
let size = 0;
let dropped = 0;

function captureWrite(chunk, encoding, cb) {
  if (typeof encoding === 'function') {
    cb = encoding;
    encoding = undefined;
  }
  if (!collecting) return realStderrWrite(chunk, encoding, cb);
  let s;
  if (typeof chunk === 'string') s = chunk;
  else if (chunk instanceof Uint8Array) s = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
  else s = String(chunk);
  chunks.push(s);
  size += s.length;
  if (size > 2 * LOG_LIMIT) {
    let text = chunks.join('');
    dropped += text.length - LOG_LIMIT;
    text = text.slice(-LOG_LIMIT);
    chunks = [text];
    size = text.length;
  }
  if (typeof cb === 'function') process.nextTick(cb);
  return true;
}

function startCapture() {
  chunks = [];
  size = 0;
  dropped = 0;
  collecting = true;
}

function stopCapture() {
  collecting = false;
  let text = chunks.join('');
  let d = dropped;
  if (text.length > LOG_LIMIT) {
    d += text.length - LOG_LIMIT;
    text = text.slice(-LOG_LIMIT);
  }
  chunks = [];
  size = 0;
  dropped = 0;
  return d ? `[... ${d} characters of logs truncated ...]\n` + text : text;
}

function redirectOutput(toStderrOnly) {
  // console.* look up stream.write on every call, so replacing the method catches them too.
  process.stdout.write = toStderrOnly ? realStderrWrite : captureWrite;
  if (!toStderrOnly) process.stderr.write = captureWrite;
}

// ---- ./node/src/call.js
// Calling a function: a Lambda-like context, its value or error as a reply, and the processes a call left running.
let current = null; // { reject } of the running call, for stray async errors

// When a call's own variables are gone (read at the start of the call): ZFAAS_DEADLINE, else ZFAAS_TIMEOUT s.
function callEnd() {
  const deadline = Number(process.env.ZFAAS_DEADLINE); // epoch ms
  return deadline > 0 ? deadline : Date.now() + Number(process.env.ZFAAS_TIMEOUT || 30) * 1000;
}

function makeContext(id) {
  const end = callEnd(); // read now: a call's own variables (ZFAAS_DEADLINE) are gone once it returns
  return {
    awsRequestId: String(id),
    requestId: String(id),
    functionName: process.env.ZFAAS_FUNCTION || '',
    functionVersion: process.env.ZFAAS_FUNCTION_VERSION || '',
    memoryLimitInMB: process.env.ZFAAS_MEMORY || '',
    getRemainingTimeInMillis: () => Math.max(0, end - Date.now()),
    callbackWaitsForEmptyEventLoop: false,
  };
}

function invoke(fn, params, id) {
  return new Promise((resolve, reject) => {
    current = { reject };
    try {
      if (fn.length >= 3) {
        let done = false;
        const cb = (err, value) => {
          if (done) return;
          done = true;
          if (err) reject(err);
          else resolve(value);
        };
        const r = fn(params, makeContext(id), cb);
        if (r && typeof r.then === 'function')
          r.then(
            (v) => cb(null, v),
            (e) => cb(e || new Error('rejected')),
          );
      } else if (fn.length === 2) {
        Promise.resolve(fn(params, makeContext(id))).then(resolve, reject);
      } else {
        Promise.resolve(fn(params)).then(resolve, reject);
      }
    } catch (e) {
      reject(e);
    }
  }).finally(() => {
    current = null;
  });
}

function toResult(value) {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  const s = JSON.stringify(value);
  return s === undefined ? '' : s;
}

function formatError(e) {
  if (e instanceof Error) {
    let stack = String(e.stack || `${e.name}: ${e.message}`);
    stack = stack
      .split('\n')
      .filter((l) => !l.includes(LOADER_FILE) && !INTERNAL_FRAME.test(l))
      .join('\n');
    const head = `${e.name || 'Error'}: ${e.message}`;
    if (!stack.startsWith(head)) stack = head + '\n' + stack;
    if (stack.length > ERR_LIMIT) stack = stack.slice(0, 512) + '\n...\n' + stack.slice(-(ERR_LIMIT - 512));
    return stack;
  }
  try {
    return 'thrown: ' + (typeof e === 'string' ? e : JSON.stringify(e));
  } catch (_) {
    return 'thrown: ' + String(e);
  }
}

// A call's reply with the function's value as its result.
function valueReply(id, value) {
  const result = toResult(value);
  const reply = { op: 'result', id, ok: true, result };
  if (result.length > RESULT_LIMIT) {
    reply.result = result.slice(0, RESULT_LIMIT);
    reply.truncated = true;
  }
  return reply;
}

// A web call's reply: the response (and the value, when the function answered a plain one).
function webReply(id, r) {
  if (r.body.length > RESULT_LIMIT)
    throw new ResponseError(`response too large: its body is ${r.body.length} bytes, at most ${RESULT_LIMIT}`);
  const reply = r.value === undefined ? { op: 'result', id, ok: true } : valueReply(id, r.value);
  reply.http = { status: r.status, headers: r.headers, body: r.body.toString('base64') };
  return reply;
}

const errorText = (e) => (e instanceof ReplyError ? e.message : formatError(e));

// Processes in this container other than init (pid 1) and this loader: what a call left running.
// One readdir of /proc (its pid entries are the only ones starting with a digit). A loader that keeps a
// process of its own (the provided runtime's bootstrap) names it in ownRoot: it and what descends from it
// are not strays. The readdir is skipped while the container's task count (its pids cgroup, read again
// through one open file: one system call instead of five) is what it was after the last look that found
// none, and that look is less than RESCAN_MS old: a call that starts a process changes the count, unless
// it also ends a thread that was running before it; the next look within RESCAN_MS finds that one too.
const SELF = String(process.pid);
const RESCAN_MS = 250;
let ownRoot = null;
let tasksFd; // undefined: not opened yet; null: no pids cgroup to read
const tasksBuf = Buffer.alloc(32);
let cleanTasks = -1; // the task count when the last look found no stray
let cleanAt = 0;

function taskCount() {
  if (tasksFd === undefined) {
    tasksFd = null;
    for (const f of ['/sys/fs/cgroup/pids.current', '/sys/fs/cgroup/pids/pids.current']) {
      try {
        tasksFd = fs.openSync(f, 'r');
        break;
      } catch (_) {
        // another cgroup layout, or none
      }
    }
  }
  if (tasksFd === null) return -1;
  try {
    const n = Number(tasksBuf.toString('latin1', 0, fs.readSync(tasksFd, tasksBuf, 0, tasksBuf.length, 0)).trim());
    return Number.isInteger(n) && n > 0 ? n : -1;
  } catch (_) {
    return -1;
  }
}

function strayProcesses() {
  const tasks = taskCount();
  const now = Date.now();
  if (tasks > 0 && tasks === cleanTasks && now - cleanAt < RESCAN_MS) return 0;
  const n = scanProcesses();
  if (n === 0) [cleanTasks, cleanAt] = [tasks, now];
  return n;
}

function scanProcesses() {
  let names;
  try {
    names = fs.readdirSync('/proc');
  } catch (_) {
    return 0;
  }
  let n = 0;
  for (let i = 0; i < names.length; i++) {
    const c = names[i].charCodeAt(0);
    if (c >= 48 && c <= 57 && names[i] !== '1' && names[i] !== SELF && !(ownRoot && descendsFrom(names[i], ownRoot))) n++;
  }
  return n;
}

// Whether process `pid` is `root` or below it (its parents, from /proc/PID/stat).
function descendsFrom(pid, root) {
  for (let hops = 0; pid && pid !== '0' && pid !== '1' && hops < 64; hops++) {
    if (pid === root) return true;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch (_) {
      return true; // gone already: not left running
    }
    pid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
  }
  return false;
}

function strayError(e) {
  const mine = concurrentCallOf(); // concurrent.js
  if (mine) mine.fail(e);
  else if (current) current.reject(e);
  else realStderrWrite(`zfaas loader: uncaught error outside a call: ${formatError(e)}\n`);
}

// ---- ./node/src/formats/http.js
// What every web format shares: request bodies and queries as platforms give them, and the checks of the
// response a function shaped (status, header names and values, base64).
const EMPTY = Buffer.alloc(0);
const isUtf8 =
  require('buffer').isUtf8 ||
  ((b) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(b);
      return true;
    } catch (_) {
      return false;
    }
  });
const statusText = (code) => require('http').STATUS_CODES[code];
const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

// sets obj[k] = v, also for k = "__proto__" (an own property, not the object's prototype)
function setKey(obj, k, v) {
  if (k === '__proto__') Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
  else obj[k] = v;
}

function assignParams(into, from) {
  for (const k of Object.keys(from)) setKey(into, k, from[k]);
}

// A query string as an object; a repeated name keeps its last value (join 'last'), all of them in an array
// ('array') or them joined by the string `join`.
function parseQuery(q, join) {
  const out = {};
  if (!q) return out;
  for (const [k, v] of new URLSearchParams(q)) {
    if (!hasOwn(out, k)) setKey(out, k, v);
    else if (join === 'last') out[k] = v;
    else if (join === 'array') out[k] = Array.isArray(out[k]) ? out[k].concat(v) : [out[k], v];
    else out[k] += join + v;
  }
  return out;
}

function mediaType(ct) {
  if (Array.isArray(ct)) ct = ct[0];
  if (typeof ct !== 'string' || !ct) return '';
  const i = ct.indexOf(';');
  return (i === -1 ? ct : ct.slice(0, i)).trim().toLowerCase();
}
const TEXTUAL = /^text\/|json|xml|javascript|x-www-form-urlencoded/;
const BINARY = /^(?:image|audio|video|font)\/|^application\/(?:octet-stream|pdf|zip|gzip|x-gzip|x-tar|wasm)$/;
const isBinary = (mt) => BINARY.test(mt) && !mt.endsWith('+xml');

// A request body for an event: the text when its content type is textual and it is valid UTF-8, else base64.
function eventBody(h) {
  if (TEXTUAL.test(mediaType(h.headers['content-type']))) {
    const buf = Buffer.from(h.body, 'base64');
    if (isUtf8(buf)) return { text: buf.toString('utf8'), base64: false };
  }
  return { text: h.body, base64: true };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n) => (n < 10 ? '0' + n : String(n));
function clfTime(ms) {
  const d = new Date(ms);
  const time = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
  return `${pad2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${time} +0000`;
}

// ---- checking what a function answered

const malformed = (what) => new ResponseError('malformed response: ' + what);

function describe(v) {
  if (v === undefined || v === null) return String(v);
  if (Array.isArray(v)) return 'an array';
  if (Buffer.isBuffer(v)) return 'a Buffer';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 60) + '...' : v);
  return String(v);
}

function statusOf(v, field) {
  const n = typeof v === 'string' && /^\d{3}$/.test(v) ? Number(v) : v;
  if (Number.isInteger(n) && n >= 100 && n <= 599) return n;
  throw malformed(`${field} must be an integer from 100 to 599, got ${describe(v)}`);
}

const CRLF = /[\r\n]/;
const BAD_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

function headerName(name) {
  if (CRLF.test(name)) throw malformed(`header name ${JSON.stringify(name)} contains CR or LF`);
  if (!TOKEN.test(name)) throw malformed(`header name ${JSON.stringify(name)} is not a valid token`);
  return name.toLowerCase();
}

// A header's value as the protocol carries it: a string or an array of strings. Numbers (and, where the
// platform allows them, booleans) become strings.
function headerValue(name, v, bools) {
  const one = (x) => {
    if (typeof x === 'string') {
      if (CRLF.test(x)) throw malformed(`header ${JSON.stringify(name)} contains CR or LF`);
      if (BAD_VALUE_CHAR.test(x)) throw malformed(`header ${JSON.stringify(name)} contains a control character or one beyond U+00FF`);
      return x;
    }
    if ((typeof x === 'number' && Number.isFinite(x)) || (bools && typeof x === 'boolean')) return String(x);
    throw malformed(`header ${JSON.stringify(name)} must be a string, a number or an array of them, got ${describe(v)}`);
  };
  if (!Array.isArray(v)) return one(v);
  const out = new Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = one(v[i]);
  return out;
}

// Adds a response's headers object to `out` (names in lower case; set-cookie values add up).
function addHeaders(out, obj, field, bools) {
  if (obj === undefined || obj === null) return;
  if (typeof obj !== 'object' || Array.isArray(obj)) throw malformed(`${field} must be an object, got ${describe(obj)}`);
  for (const name of Object.keys(obj)) {
    const v = obj[name];
    if (v === undefined) continue; // as JSON leaves it out
    const key = headerName(name);
    const value = headerValue(name, v, bools);
    out[key] = key === 'set-cookie' && out[key] !== undefined ? [].concat(out[key], value) : value;
  }
}

function fromBase64(s, what) {
  const t = /\s/.test(s) ? s.replace(/\s+/g, '') : s;
  if (!BASE64.test(t) || t.length % 4 === 1 || (t.endsWith('=') && t.length % 4 !== 0)) throw malformed(what);
  return Buffer.from(t, 'base64');
}

const jsonAnswer = (v, text) => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(text === undefined ? 'null' : text, 'utf8'),
  value: v,
});

// ---- ./node/src/formats/lambda.js
// AWS Lambda behind API Gateway: the HTTP API event (payload 2.0), the REST API event (payload 1.0), the
// context, and the response API Gateway makes of a Lambda's answer.
const ACCOUNT = '000000000000';

// What a Lambda context says of the function: fixed at load.
function lambdaInfo() {
  const name = process.env.ZFAAS_FUNCTION || process.env.AWS_LAMBDA_FUNCTION_NAME || 'function';
  const version = process.env.ZFAAS_FUNCTION_VERSION || '$LATEST';
  const d = new Date();
  let host = 'zfaas';
  try {
    host = require('os').hostname();
  } catch (_) {
    /* keep */
  }
  return {
    name,
    version,
    arn: `arn:aws:lambda:${process.env.AWS_REGION || 'local'}:${ACCOUNT}:function:${name}`,
    memory: process.env.ZFAAS_MEMORY || '128',
    group: `/aws/lambda/${name}`,
    stream: `${d.getUTCFullYear()}/${pad2(d.getUTCMonth() + 1)}/${pad2(d.getUTCDate())}/[${version}]${host}`,
  };
}

const requestId = (id) => process.env.ZFAAS_CALL || String(id);

function lambdaContext(info, rid) {
  const end = callEnd();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: info.name,
    functionVersion: info.version,
    invokedFunctionArn: info.arn,
    memoryLimitInMB: info.memory,
    awsRequestId: rid,
    logGroupName: info.group,
    logStreamName: info.stream,
    identity: undefined,
    clientContext: undefined,
    getRemainingTimeInMillis: () => Math.max(0, end - Date.now()),
    done: undefined, // set by runLambda
    succeed: undefined,
    fail: undefined,
  };
}

// Runs a Lambda handler: its answer is the first of callback(err, value), context.done/succeed/fail, the
// promise it returns, or (with fewer than 3 parameters) the value it returns.
function runLambda(fn, event, ctx) {
  return new Promise((resolve, reject) => {
    current = { reject };
    let done = false;
    const settle = (err, value) => {
      if (done) return;
      done = true;
      if (err !== undefined && err !== null) reject(err);
      else resolve(value);
    };
    ctx.done = settle;
    ctx.succeed = (value) => settle(null, value);
    ctx.fail = (err) => settle(err === undefined || err === null ? new Error('context.fail()') : err);
    try {
      const r = fn(event, ctx, settle);
      if (r && typeof r.then === 'function')
        r.then(
          (v) => settle(null, v),
          (e) => settle(e === undefined || e === null ? new Error('rejected') : e),
        );
      else if (fn.length < 3) settle(null, r);
    } catch (e) {
      settle(e === undefined || e === null ? new Error('threw ' + e) : e);
    }
  }).finally(() => {
    current = null;
  });
}

function hostOf(h) {
  const host = (h.headers.host || 'localhost').replace(/:\d+$/, '');
  return { domainName: host, domainPrefix: host.split('.')[0] };
}

// API Gateway HTTP API, payload format 2.0
function lambdaEventV2(h, rid, info) {
  const now = Date.now();
  const headers = {};
  let cookies = null;
  for (const k in h.headers) {
    if (k === 'cookie') cookies = h.headers[k].split(/;\s*/).filter(Boolean);
    else setKey(headers, k, h.headers[k]);
  }
  const ev = { version: '2.0', routeKey: '$default', rawPath: h.path, rawQueryString: h.query };
  if (cookies && cookies.length) ev.cookies = cookies;
  ev.headers = headers;
  if (h.query) ev.queryStringParameters = parseQuery(h.query, ',');
  const { domainName, domainPrefix } = hostOf(h);
  ev.requestContext = {
    accountId: ACCOUNT,
    apiId: info.name,
    domainName,
    domainPrefix,
    http: { method: h.method, path: h.path, protocol: 'HTTP/1.1', sourceIp: h.sourceIp, userAgent: headers['user-agent'] || '' },
    requestId: rid,
    routeKey: '$default',
    stage: '$default',
    time: clfTime(now),
    timeEpoch: now,
  };
  if (h.body) {
    const b = eventBody(h);
    ev.body = b.text;
    ev.isBase64Encoded = b.base64;
  } else ev.isBase64Encoded = false;
  return ev;
}

// API Gateway REST API (proxy resource), payload format 1.0
function lambdaEventV1(h, rid, info) {
  const now = Date.now();
  let headers = null;
  let multiHeaders = null;
  for (const k in h.headers) {
    if (!headers) {
      headers = {};
      multiHeaders = {};
    }
    setKey(headers, k, h.headers[k]);
    setKey(multiHeaders, k, [h.headers[k]]);
  }
  let query = null;
  let multiQuery = null;
  if (h.query) {
    query = {};
    multiQuery = {};
    for (const [k, v] of new URLSearchParams(h.query)) {
      setKey(query, k, v);
      if (hasOwn(multiQuery, k)) multiQuery[k].push(v);
      else setKey(multiQuery, k, [v]);
    }
  }
  const root = h.path === '/' || h.path === '';
  const resource = root ? '/' : '/{proxy+}';
  const b = h.body ? eventBody(h) : null;
  const { domainName, domainPrefix } = hostOf(h);
  const nulls = { accessKey: null, accountId: null, caller: null, cognitoAuthenticationProvider: null, cognitoAuthenticationType: null };
  return {
    resource,
    path: h.path,
    httpMethod: h.method,
    headers,
    multiValueHeaders: multiHeaders,
    queryStringParameters: query,
    multiValueQueryStringParameters: multiQuery,
    pathParameters: root ? null : { proxy: h.path.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: ACCOUNT,
      apiId: info.name,
      domainName,
      domainPrefix,
      extendedRequestId: rid,
      httpMethod: h.method,
      identity: {
        ...nulls,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: h.sourceIp,
        user: null,
        userAgent: h.headers['user-agent'] || null,
        userArn: null,
      },
      path: h.path,
      protocol: 'HTTP/1.1',
      requestId: rid,
      requestTime: clfTime(now),
      requestTimeEpoch: now,
      resourceId: null,
      resourcePath: resource,
      stage: '$default',
    },
    body: b ? b.text : null,
    isBase64Encoded: b ? b.base64 : false,
  };
}

// The response API Gateway makes of a Lambda's answer.
function lambdaResponse(v, v1) {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || !('statusCode' in v)) {
    if (v1)
      throw malformed(
        `statusCode is missing: payload 1.0 needs {statusCode, headers, body} (API Gateway: "Malformed Lambda proxy response"), got ${describe(v)}`,
      );
    // payload 2.0: the value is the body, as JSON (a string as it is)
    return jsonAnswer(v, typeof v === 'string' ? v : JSON.stringify(v));
  }
  const status = statusOf(v.statusCode, 'statusCode');
  const headers = {};
  addHeaders(headers, v.headers, 'headers', false);
  if (v1 && v.multiValueHeaders !== undefined && v.multiValueHeaders !== null) {
    const multi = v.multiValueHeaders;
    if (typeof multi !== 'object' || Array.isArray(multi)) throw malformed(`multiValueHeaders must be an object, got ${describe(multi)}`);
    for (const name of Object.keys(multi)) {
      const key = headerName(name);
      if (!Array.isArray(multi[name]))
        throw malformed(`multiValueHeaders[${JSON.stringify(name)}] must be an array, got ${describe(multi[name])}`);
      headers[key] = headerValue(name, multi[name], false); // API Gateway: these win over `headers`
    }
  }
  if (!v1 && v.cookies !== undefined && v.cookies !== null) {
    if (!Array.isArray(v.cookies) || v.cookies.some((c) => typeof c !== 'string'))
      throw malformed(`cookies must be an array of strings, got ${describe(v.cookies)}`);
    const set = headerValue('set-cookie', v.cookies, false);
    if (set.length) headers['set-cookie'] = headers['set-cookie'] === undefined ? set : [].concat(headers['set-cookie'], set);
  }
  const body = v.body;
  let buf = EMPTY;
  if (body !== undefined && body !== null) {
    if (typeof body !== 'string') throw malformed(`body must be a string, got ${describe(body)}`);
    if (v.isBase64Encoded === true) buf = fromBase64(body, 'isBase64Encoded is true but body is not valid base64');
    else buf = Buffer.from(body, 'utf8');
  }
  return { status, headers, body: buf };
}

// ---- ./provided/src/runtime-api.js
// The Lambda Runtime API on 127.0.0.1:9001 (ZFAAS_RUNTIME_API_PORT for tests on a host), the bootstrap it
// serves, and the runner a call uses: each call one invocation, its response the result.
const http = require('http');
const { randomBytes, randomUUID } = require('crypto');
const { spawn } = require('child_process');

const API_HOST = '127.0.0.1';
const API_PORT = Number(process.env.ZFAAS_RUNTIME_API_PORT) || 9001;
const API_PATH = '/2018-06-01/runtime';
const REGION = 'local';
const INVOCATION = new RegExp(`^${API_PATH}/invocation/([^/]+)/(response|error)$`);

const rt = {
  dir: null,
  handler: null,
  server: null,
  child: null, // the bootstrap
  exited: null, // how it ended, once it has
  initError: null, // what it posted to /init/error
  onReady: null, // settles the wait for its first /next
  nexts: [], // its /next requests waiting for an invocation
  queued: null, // an invocation waiting for its /next
  running: null, // { id, resolve, reject } of the invocation it is working on
};

const arn = () => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${process.env.ZFAAS_FUNCTION || 'function'}`;

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// The request's body (at most RESULT_LIMIT bytes: more is refused, as Lambda refuses a response over 6 MB).
function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let size = 0;
    req.on('data', (d) => {
      size += d.length;
      if (size <= RESULT_LIMIT) parts.push(d);
    });
    req.on('end', () =>
      size > RESULT_LIMIT
        ? reject(new ResponseError(`response too large: ${size} bytes, at most ${RESULT_LIMIT}`))
        : resolve(Buffer.concat(parts)),
    );
    req.on('error', reject);
  });
}

function deliver(res, inv) {
  res.writeHead(200, {
    'content-type': 'application/json',
    'lambda-runtime-aws-request-id': inv.id,
    'lambda-runtime-deadline-ms': String(inv.deadline),
    'lambda-runtime-invoked-function-arn': arn(),
    'lambda-runtime-trace-id': `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')};Sampled=0`,
  });
  res.end(inv.body);
}

// What the runtime said went wrong: {errorMessage, errorType} as Lambda's runtimes post it, else the text.
function errorOf(body, typeHeader) {
  let type = typeHeader || 'Unhandled';
  let message = body.toString('utf8');
  try {
    const e = JSON.parse(message);
    if (e && typeof e === 'object') {
      if (typeof e.errorType === 'string') type = e.errorType;
      if (typeof e.errorMessage === 'string') message = e.errorMessage;
    }
  } catch (_) {
    /* plain text */
  }
  return `${type}: ${message}`;
}

async function route(req, res) {
  const url = req.url.split('?')[0];
  if (req.method === 'GET' && url === `${API_PATH}/invocation/next`) {
    if (rt.onReady) rt.onReady(null);
    const inv = rt.queued;
    rt.queued = null;
    if (inv) deliver(res, inv);
    else rt.nexts.push(res);
    return;
  }
  if (req.method === 'POST' && url === `${API_PATH}/init/error`) {
    rt.initError = errorOf(await readBody(req), req.headers['lambda-runtime-function-error-type']);
    reply(res, 202, { status: 'OK' });
    if (rt.onReady) rt.onReady(new NoHandler(`the bootstrap failed to initialise: ${rt.initError}`));
    if (rt.child && !rt.exited) rt.child.kill('SIGKILL'); // as Lambda ends a runtime that failed its init
    return;
  }
  const m = req.method === 'POST' ? INVOCATION.exec(url) : null;
  if (!m) return reply(res, 404, { errorMessage: `no such route: ${req.method} ${url}`, errorType: 'InvalidRequest' });
  const running = rt.running;
  if (!running || running.id !== decodeURIComponent(m[1]))
    return reply(res, 400, { errorMessage: `no invocation ${m[1]} is running`, errorType: 'InvalidRequestID' });
  let body;
  try {
    body = await readBody(req);
  } catch (e) {
    rt.running = null;
    running.reject(e);
    return reply(res, 413, { errorMessage: e.message, errorType: 'RequestEntityTooLarge' });
  }
  rt.running = null;
  reply(res, 202, { status: 'OK' });
  // What it printed before it answered may still sit in its pipes: two turns of the event loop read it
  // into this call's logs.
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  if (m[2] === 'response') running.resolve(body.toString('utf8'));
  else running.reject(new ReplyError(errorOf(body, req.headers['lambda-runtime-function-error-type'])));
}

function listen() {
  if (rt.server) return Promise.resolve();
  const server = http.createServer((req, res) => {
    route(req, res).catch((e) => {
      if (!res.headersSent) reply(res, 500, { errorMessage: String(e && e.message), errorType: 'ServiceException' });
    });
  });
  // /next waits as long as there is no invocation: no timeout of Node's may end it.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.timeout = 0;
  server.keepAliveTimeout = 0;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(API_PORT, API_HOST, () => {
      server.removeListener('error', reject);
      rt.server = server;
      resolve();
    });
  });
}

// Starts the bootstrap; resolves once it asks for its first invocation, rejects if it fails to start.
function startBootstrap() {
  const file = path.join(rt.dir, 'bootstrap');
  rt.exited = null;
  rt.initError = null;
  const env = {
    ...process.env,
    AWS_LAMBDA_RUNTIME_API: `${API_HOST}:${API_PORT}`,
    LAMBDA_TASK_ROOT: rt.dir,
    LAMBDA_RUNTIME_DIR: path.dirname(LOADER_FILE),
    _HANDLER: rt.handler || '',
    AWS_LAMBDA_FUNCTION_NAME: process.env.ZFAAS_FUNCTION || 'function',
    AWS_LAMBDA_FUNCTION_VERSION: process.env.ZFAAS_FUNCTION_VERSION || '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: process.env.ZFAAS_MEMORY || '',
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
  };
  delete env.ZFAAS_RUNTIME_API_PORT;
  return new Promise((resolve, reject) => {
    let settled = false;
    rt.onReady = (e) => {
      if (settled) return;
      settled = true;
      rt.onReady = null;
      if (e) reject(e);
      else resolve();
    };
    let child;
    try {
      child = spawn(file, [], { cwd: rt.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      rt.onReady(new NoHandler(`cannot start ${file}: ${e.message}`));
      return;
    }
    rt.child = child;
    child.stdout.on('data', (d) => process.stdout.write(d));
    child.stderr.on('data', (d) => process.stderr.write(d));
    child.on('error', (e) => {
      const why = e.code === 'EACCES' ? 'it is not executable (chmod +x bootstrap)' : e.message;
      rt.exited = why;
      if (rt.onReady) rt.onReady(new NoHandler(`cannot start ${file}: ${why}`));
    });
    child.on('spawn', () => {
      ownRoot = String(child.pid);
    });
    child.on('exit', (code, signal) => {
      rt.exited = signal ? `killed by ${signal}` : `exit code ${code}`;
      for (const res of rt.nexts.splice(0)) res.destroy();
      if (rt.onReady)
        rt.onReady(
          new NoHandler(`the bootstrap ended (${rt.exited}) before it asked for an invocation${rt.initError ? `: ${rt.initError}` : ''}`),
        );
      if (rt.running) {
        const r = rt.running;
        rt.running = null;
        r.reject(new ReplyError(`the bootstrap ended (${rt.exited}) before it answered the invocation`));
      }
    });
  });
}

process.on('exit', () => {
  if (rt.child && !rt.exited) rt.child.kill('SIGKILL');
});

const PROVIDED_FORMATS = ['auto', 'json', 'lambda', 'lambda-v1'];

// -> { fn, format, kind } as the node loader's loadFunction: here the bootstrap, started and ready. Its
// format says what a web call's event is: json, the params the node made of the request; lambda and
// lambda-v1, API Gateway's event (payload 2.0 and 1.0), its response made of the bootstrap's answer.
async function loadFunction(dir, handler, format = 'auto') {
  if (!PROVIDED_FORMATS.includes(format))
    throw new NoHandler(
      `a provided function speaks the Lambda Runtime API: its format is json, lambda or lambda-v1 (or auto), not ${format}`,
    );
  dir = path.resolve(dir || '.');
  const file = path.join(dir, 'bootstrap');
  let st;
  try {
    st = fs.statSync(file);
  } catch (_) {
    st = null;
  }
  if (!st || !st.isFile())
    throw new NoHandler(`no bootstrap in ${dir}: a provided function's archive holds an executable file named bootstrap`);
  rt.dir = dir;
  rt.handler = handler || null;
  process.chdir(dir);
  await listen();
  await startBootstrap();
  return { fn: null, format: format === 'auto' ? 'json' : format, kind: 'provided' };
}

// One invocation of the bootstrap: the params are its event, its response the call's result.
async function invokeBootstrap(params) {
  if (rt.exited) {
    // as Lambda starts a new runtime after one ended; one that cannot start fails this call
    await startBootstrap().catch((e) => {
      throw new ReplyError(e.message);
    });
  }
  const inv = { id: randomUUID(), body: JSON.stringify(params === undefined ? null : params), deadline: callEnd() };
  return new Promise((resolve, reject) => {
    current = { reject };
    rt.running = { id: inv.id, resolve, reject };
    const res = rt.nexts.shift();
    if (res) deliver(res, inv);
    else rt.queued = inv;
  }).finally(() => {
    current = null;
    rt.queued = null;
  });
}

// The bootstrap's answer to an API Gateway event, as API Gateway reads it: JSON, else a string body.
function answerOf(body) {
  try {
    return JSON.parse(body);
  } catch (_) {
    return body;
  }
}

function makeRunner(fn, format) {
  const direct = (params) => invokeBootstrap(params);
  if (format !== 'lambda' && format !== 'lambda-v1') return { web: null, direct };
  const v1 = format === 'lambda-v1';
  const info = lambdaInfo();
  const event = v1 ? lambdaEventV1 : lambdaEventV2;
  return { web: (h, id) => invokeBootstrap(event(h, requestId(id), info)).then((body) => lambdaResponse(answerOf(body), v1)), direct };
}

// ---- ./node/src/stream.js
// Streamed answers (protocol version 3): a web call's function that writes its response as it goes has
// the head ({"op":"head"}) sent at its first write, then each write as {"op":"chunk"} (base64, at most
// STREAM_CHUNK_LIMIT bytes a message), before the call's result, whose http.body is then empty and whose
// `streamed` counts the bytes sent. Lambda's form is awslambda.streamifyResponse (the global below, as
// Lambda's Node runtime has it); gcf's is res.write before res.end (formats/express.js).
let streaming = null; // the web call running now, which may stream: { id, send, headSent, bytes }

// A web call begins: it may stream until closeStream.
function openStream(s, id) {
  streaming = { id, send: s.send, headSent: false, bytes: 0 };
  return streaming;
}

// The call ended: a streamed answer's result carries no body (what the function still gave is sent as a
// last chunk) and says how many bytes went.
function closeStream(st, reply) {
  if (streaming === st) streaming = null;
  if (!st.headSent || !reply.ok || !reply.http) return reply;
  try {
    const rest = Buffer.from(reply.http.body, 'base64');
    if (rest.length) streamWrite(st, rest);
  } catch (e) {
    return { op: 'result', id: reply.id, ok: false, error: errorText(e), fault: 'response' };
  }
  reply.http.body = '';
  reply.streamed = st.bytes;
  return reply;
}

// Sends the head, once: status and headers checked as any response's are.
function streamHead(st, status, headers) {
  if (st.headSent) return;
  const checked = {};
  addHeaders(checked, headers, 'headers', true);
  st.headSent = true;
  st.send({ op: 'head', id: st.id, status: statusOf(status, 'statusCode'), headers: checked });
}

// Sends a write as chunks, after the head.
function streamWrite(st, buf) {
  if (!st.headSent) throw new Error('zfaas: a chunk before the head');
  if (st.bytes + buf.length > STREAM_LIMIT)
    throw new ResponseError(`response too large: a streamed answer is at most ${STREAM_LIMIT} bytes`);
  st.bytes += buf.length;
  for (let at = 0; at < buf.length; at += STREAM_CHUNK_LIMIT)
    st.send({ op: 'chunk', id: st.id, data: buf.subarray(at, at + STREAM_CHUNK_LIMIT).toString('base64') });
}

// ---- Lambda response streaming: awslambda.streamifyResponse(async (event, responseStream, context) => ...)
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const STREAM_RESPONSE = 'response';
const isStreamified = (fn) => typeof fn === 'function' && fn[HANDLER_STREAMING] === STREAM_RESPONSE;

// The responseStream a streaming handler writes to: a Writable. Without a web call (or before its first
// write) it keeps what is written, for a call's value.
class LambdaResponseStream extends require('stream').Writable {
  constructor(st) {
    super();
    this._st = st;
    this._prelude = null; // HttpResponseStream.from's {statusCode, headers, cookies}
    this._contentType = null;
    this._kept = [];
  }

  setContentType(ct) {
    this._contentType = String(ct);
  }

  _head() {
    if (!this._st || this._st.headSent) return;
    const p = this._prelude || {};
    const headers = {};
    addHeaders(headers, p.headers, 'headers', false);
    if (Array.isArray(p.cookies) && p.cookies.length) headers['set-cookie'] = headerValue('set-cookie', p.cookies, false);
    if (headers['content-type'] === undefined) headers['content-type'] = this._contentType || 'application/octet-stream';
    streamHead(this._st, p.statusCode === undefined ? 200 : p.statusCode, headers);
  }

  _write(chunk, _encoding, cb) {
    try {
      if (this._st) {
        this._head();
        streamWrite(this._st, chunk);
      } else this._kept.push(chunk);
      cb();
    } catch (e) {
      cb(e);
    }
  }

  _final(cb) {
    try {
      this._head();
      cb();
    } catch (e) {
      cb(e);
    }
  }
}

globalThis.awslambda = {
  streamifyResponse(handler) {
    if (typeof handler !== 'function') throw new TypeError('awslambda.streamifyResponse needs a function');
    handler[HANDLER_STREAMING] = STREAM_RESPONSE;
    return handler;
  },
  HttpResponseStream: {
    // The stream with its HTTP status and headers: they go with its first write.
    from(stream, prelude) {
      if (stream instanceof LambdaResponseStream) stream._prelude = prelude || {};
      return stream;
    },
  },
};

// Runs a streaming handler; the call ends when its promise settles and the stream has ended (ended for it
// if it had not). A web call's answer is the head it sent (or, where it cannot stream, as with several
// calls at once in its container, the whole response); another call's value is what it wrote.
function runStreamingLambda(fn, event, ctx, web) {
  const st = web ? streaming : null;
  const out = new LambdaResponseStream(st);
  return new Promise((resolve, reject) => {
    current = { reject };
    out.on('error', reject);
    const ended = () => {
      const p = out._prelude || {};
      const status = statusOf(p.statusCode === undefined ? 200 : p.statusCode, 'statusCode');
      if (st) return resolve({ status, headers: {}, body: EMPTY });
      const body = Buffer.concat(out._kept);
      if (!web) return resolve(body.toString('utf8'));
      const headers = {};
      addHeaders(headers, p.headers, 'headers', false);
      if (headers['content-type'] === undefined) headers['content-type'] = out._contentType || 'application/octet-stream';
      resolve({ status, headers, body });
    };
    let r;
    try {
      r = fn(event, out, ctx);
    } catch (e) {
      return reject(e);
    }
    Promise.resolve(r).then(() => {
      if (out.writableFinished) return ended();
      out.once('finish', ended);
      if (!out.writableEnded) out.end();
    }, reject);
  }).finally(() => {
    current = null;
  });
}

// ---- ./node/src/concurrent.js
// Several calls at once (protocol version 3: a `load` with `concurrency` N > 1). Each call runs inside an
// AsyncLocalStorage context that holds its own variables and its own logs: process.env becomes a view (the
// call's own variables over the shared ones, which is what a child process started in the call inherits
// too) and output written during a call goes into that call's logs. A `cancel` answers a running call at
// once (ok:false, CANCELLED); what the function still does after it is not the call's any more. A function
// that is not async runs to its end before the next call starts (one event loop), with its own view too.
const { AsyncLocalStorage } = require('async_hooks');

const callStore = new AsyncLocalStorage();
const running = new Map(); // id -> the call's context, while it runs

// A call's output, bounded as the sequential capture is (the last LOG_LIMIT characters).
class CallLogs {
  constructor() {
    this.chunks = [];
    this.size = 0;
    this.dropped = 0;
  }

  add(s) {
    this.chunks.push(s);
    this.size += s.length;
    if (this.size > 2 * LOG_LIMIT) {
      let text = this.chunks.join('');
      this.dropped += text.length - LOG_LIMIT;
      text = text.slice(-LOG_LIMIT);
      this.chunks = [text];
      this.size = text.length;
    }
  }

  text() {
    let text = this.chunks.join('');
    let d = this.dropped;
    if (text.length > LOG_LIMIT) {
      d += text.length - LOG_LIMIT;
      text = text.slice(-LOG_LIMIT);
    }
    return d ? `[... ${d} characters of logs truncated ...]\n` + text : text;
  }
}

// The call that runs alone (one call at a time), while it runs: its variables are in the view too.
let aloneCall = null;

// The running call's context: the one that runs alone, else the one this code runs in (calls at once).
function currentCall() {
  const c = aloneCall || callStore.getStore();
  return c && !c.done ? c : null;
}

// The running call's context when `name` is one of its own variables.
function ownerOf(name) {
  const c = currentCall();
  return c && typeof name === 'string' && Object.prototype.hasOwnProperty.call(c.env, name) ? c : null;
}

// One call at a time: the call's variables are its own in the view from now until leaveAlone().
function enterAlone(env, params) {
  aloneCall = { env: { ...env, ZFAAS_PARAMS: JSON.stringify(params) }, done: false };
}

function leaveAlone() {
  if (aloneCall) aloneCall.done = true;
  aloneCall = null;
}

let viewing = false;
// process.env as a view: inside a call, its own variables (an undefined one: deleted in that call); the rest
// shared. A call's variables never reach the process's real environment: the C library keeps every value
// setenv is given until the process ends, so setting them there would grow the loader with every call.
function installEnvView() {
  if (viewing) return;
  viewing = true;
  const shared = process.env;
  const desc = (v) => ({ value: v, writable: true, enumerable: true, configurable: true });
  process.env = new Proxy(shared, {
    get(t, k) {
      const c = ownerOf(k);
      return c ? c.env[k] : Reflect.get(t, k);
    },
    set(t, k, v) {
      const c = ownerOf(k);
      if (c) c.env[k] = String(v);
      else t[k] = v;
      return true;
    },
    has(t, k) {
      const c = ownerOf(k);
      return c ? c.env[k] !== undefined : Reflect.has(t, k);
    },
    deleteProperty(t, k) {
      const c = ownerOf(k);
      if (c) c.env[k] = undefined;
      else delete t[k];
      return true;
    },
    ownKeys(t) {
      const keys = new Set(Reflect.ownKeys(t));
      const c = currentCall();
      if (c)
        for (const k of Object.keys(c.env)) {
          if (c.env[k] === undefined) keys.delete(k);
          else keys.add(k);
        }
      return [...keys];
    },
    getOwnPropertyDescriptor(t, k) {
      const c = ownerOf(k);
      if (!c) return Reflect.getOwnPropertyDescriptor(t, k);
      return c.env[k] === undefined ? undefined : desc(c.env[k]);
    },
  });
}

// What is written during a call goes to that call's logs; outside any call, where the sequential capture sends it.
function concurrentWrite(chunk, encoding, cb) {
  const c = callStore.getStore();
  if (!c || c.done) return captureWrite(chunk, encoding, cb);
  if (typeof encoding === 'function') cb = encoding;
  let s;
  if (typeof chunk === 'string') s = chunk;
  else if (chunk instanceof Uint8Array) s = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
  else s = String(chunk);
  c.logs.add(s);
  if (typeof cb === 'function') process.nextTick(cb);
  return true;
}

// From the load that asked for concurrency on: every call in its own context.
function enterConcurrentMode() {
  installEnvView();
  process.stdout.write = concurrentWrite;
  process.stderr.write = concurrentWrite;
}

// Runs one call beside the others; its reply is sent when it ends or is cancelled, whichever comes first.
function runConcurrent(s, id, env, params, http, t0) {
  if (running.has(id)) return s.refuse(`call ${id} is already running`, id);
  const call = { env: { ...env, ZFAAS_PARAMS: JSON.stringify(params) }, logs: new CallLogs(), done: false, fail: null };
  running.set(id, call);
  const finish = (reply) => {
    if (call.done) return;
    call.done = true;
    running.delete(id);
    reply.logs = call.logs.text();
    // Processes another call started are not this one's strays: counted only when no call runs any more.
    if (running.size === 0) {
      const stray = strayProcesses();
      if (stray > 0) reply.stray = stray;
    }
    reply.took = tookSince(t0);
    s.send(reply);
  };
  call.cancel = () => finish({ op: 'result', id, ok: false, error: CANCELLED });
  return callStore.run(call, async () => {
    let reply;
    try {
      // An error thrown outside the function's own promise (a timer's callback) fails the call it came from.
      const failed = new Promise((_, reject) => (call.fail = reject));
      const work = (async () => (http ? webReply(id, await s.runner.web(http, id)) : valueReply(id, await s.runner.direct(params, id))))();
      reply = await Promise.race([work, failed]);
    } catch (e) {
      reply = { op: 'result', id, ok: false, error: errorText(e) };
      if (e instanceof ResponseError) reply.fault = 'response';
    }
    finish(reply);
  });
}

// `cancel` {id}: the running call answers CANCELLED now; one that already ended is not answered again.
function cancelCall(s, msg) {
  if (!Number.isInteger(msg.id) || msg.id < 1) return s.refuse('cancel needs id: a positive integer', msg.id);
  const c = running.get(msg.id);
  if (c) c.cancel();
}

// The call whose context an uncaught error came from, when calls run at once (else null).
function concurrentCallOf() {
  const c = callStore.getStore();
  return c && !c.done && c.fail ? c : null;
}

// ---- ./node/src/warm.js
// Warm mode: the loader protocol over the node's unix socket or stdin/stdout, one request at a time (or, after
// a load with concurrency > 1, several calls at once: concurrent.js).
// A request's `env`: an object of strings named like environment variables (no NUL: setenv cannot hold it).
function isEnv(env) {
  if (env === null || typeof env !== 'object' || Array.isArray(env)) return false;
  for (const k in env) {
    const v = env[k];
    if (typeof v !== 'string' || !ENV_NAME.test(k) || v.includes('\0')) return false;
  }
  return true;
}

// A call's `http`, as protocol/loader.ts has HttpRequestSchema.
function isHttp(h) {
  if (h === null || typeof h !== 'object' || Array.isArray(h)) return false;
  for (const k of ['method', 'path', 'query', 'body', 'sourceIp']) if (typeof h[k] !== 'string') return false;
  const hd = h.headers;
  if (hd === null || typeof hd !== 'object' || Array.isArray(hd)) return false;
  for (const k in hd) if (typeof hd[k] !== 'string') return false;
  return true;
}

// Calls onLine with each line of the stream (without its newline; a last line without one counts too),
// then onEnd once, at its end.
function readLines(stream, onLine, onEnd) {
  let parts = [];
  let ended = false;
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    let from = 0;
    let nl;
    while ((nl = chunk.indexOf('\n', from)) !== -1) {
      let line = chunk.slice(from, nl);
      if (parts.length) {
        parts.push(line);
        line = parts.join('');
        parts = [];
      }
      onLine(line);
      from = nl + 1;
    }
    if (from < chunk.length) parts.push(from ? chunk.slice(from) : chunk);
  });
  const end = () => {
    if (ended) return;
    ended = true;
    if (parts.length) onLine(parts.join(''));
    parts = [];
    onEnd();
  };
  stream.on('end', end);
  stream.on('error', end);
}

// Dials the node's unix socket, retrying for CONNECT_FOR_MS; cannot: a line on stderr and exit 1.
function dial(file, then) {
  const until = Date.now() + CONNECT_FOR_MS;
  let wait = 10;
  const attempt = () => {
    const sock = net.createConnection({ path: file, allowHalfOpen: true });
    const failed = (e) => {
      sock.destroy();
      if (Date.now() + wait <= until) {
        setTimeout(attempt, wait);
        wait = Math.min(2 * wait, 250);
        return;
      }
      realStderrWrite(`zfaas loader: cannot connect to ${LINE_ENV}=${file} (tried for ${CONNECT_FOR_MS / 1000} s): ${e.message}\n`, () =>
        process.exit(1),
      );
    };
    sock.once('error', failed);
    sock.once('connect', () => {
      sock.removeListener('error', failed);
      then(sock);
    });
  };
  attempt();
}

function serve() {
  installEnvView(); // a call's variables are a view over the process's (concurrent.js)
  const line = process.env[LINE_ENV];
  if (!line) {
    // stdin/stdout; stdout pipes and files are written synchronously, so exiting at the end loses nothing
    speak(
      process.stdin,
      (msg) => realStdoutWrite(JSON.stringify(msg) + '\n'),
      () => process.exit(0),
    );
    return;
  }
  delete process.env[LINE_ENV]; // the function sees the variables a cold run sees
  dial(line, (sock) => {
    sock.on('error', () => process.exit(0)); // the node is gone: nobody to answer
    sock.on('close', () => process.exit(0));
    speak(
      sock,
      (msg) => sock.write(JSON.stringify(msg) + '\n'),
      () => sock.end(), // the node hung up and its last request is answered: hang up too ('close' exits)
    );
  });
}

const ENV_EXPECTED = 'an object of strings named [A-Za-z_][A-Za-z0-9_]*';
const HTTP_EXPECTED = 'an object {method, path, query, headers (an object of strings), body (base64), sourceIp} of strings';

// A session holds what the requests share: `send`, `refuse` (the answer to what cannot be read) and the
// runner of the loaded function (makeRunner's; null until a load succeeds).

// A call: the function run with the call's own env and params, its output captured into the reply.
async function answerCall(s, msg) {
  const t0 = performance.now();
  const id = msg.id;
  if (!Number.isInteger(id) || id < 1) return s.refuse('call needs id: a positive integer', id);
  const env = msg.env === undefined ? {} : msg.env;
  if (!isEnv(env)) return s.refuse(`call needs env: ${ENV_EXPECTED}`, id);
  if (!s.runner) return s.send({ op: 'result', id, ok: false, error: 'no function loaded', logs: '', took: tookSince(t0) });
  // a json function never sees `http` (the node made its params of it)
  const http = s.runner.web && msg.http !== undefined ? msg.http : null;
  if (http && !isHttp(http)) return s.refuse(`call needs http: ${HTTP_EXPECTED}`, id);
  const params = msg.params === undefined ? null : msg.params;
  if (s.concurrency > 1) return runConcurrent(s, id, env, params, http, t0); // concurrent.js
  enterAlone(env, params); // the call's variables, in process.env's view (concurrent.js)
  startCapture();
  const st = http ? openStream(s, id) : null; // a web call may stream its answer (stream.js)
  let reply;
  try {
    reply = http ? webReply(id, await s.runner.web(http, id)) : valueReply(id, await s.runner.direct(params, id));
  } catch (e) {
    reply = { op: 'result', id, ok: false, error: errorText(e) };
    if (e instanceof ResponseError) reply.fault = 'response';
  }
  if (st) reply = closeStream(st, reply);
  reply.logs = stopCapture();
  leaveAlone();
  const stray = strayProcesses();
  if (stray > 0) reply.stray = stray;
  reply.took = tookSince(t0);
  s.send(reply);
}

// A result's `took`: whole microseconds since the call was read (the node compares it with its round trip).
function tookSince(t0) {
  return Math.max(0, Math.round((performance.now() - t0) * 1000));
}

function answerSecrets(s, msg) {
  const bad = secretsProblem(msg);
  if (bad) return s.refuse(`secrets needs ${bad}`);
  try {
    writeSecrets(msg.dir, msg.files, msg.keep);
    s.send({ op: 'secretsSet', ok: true });
  } catch (e) {
    // an errno message names a file, never a value
    s.send({ op: 'secretsSet', ok: false, error: String((e && e.message) || e).slice(0, 1000) });
  }
}

async function answerLoad(s, msg) {
  if (typeof msg.dir !== 'string') return s.refuse('load needs dir: a string');
  if (msg.handler !== null && typeof msg.handler !== 'string') return s.refuse('load needs handler: a string or null');
  if (!isEnv(msg.env)) return s.refuse(`load needs env: ${ENV_EXPECTED}`);
  const format = msg.format === undefined || msg.format === null ? 'auto' : msg.format;
  if (!FORMATS.includes(format)) return s.refuse(`load needs format: one of ${FORMATS.join(', ')}`);
  const n = msg.concurrency === undefined || msg.concurrency === null ? 1 : msg.concurrency;
  if (!Number.isInteger(n) || n < 1) return s.refuse('load needs concurrency: a positive integer');
  s.concurrency = n; // > 1: several calls at once (concurrent.js)
  if (s.concurrency > 1) enterConcurrentMode();
  process.env.ZFAAS_PARAMS = '{}';
  // A stem cell learns its function (and the function's environment) only when it is given one.
  for (const k of Object.keys(msg.env)) process.env[k] = msg.env[k];
  try {
    const loaded = await loadFunction(msg.dir || '/ws', msg.handler, format);
    s.runner = makeRunner(loaded.fn, loaded.format, loaded.kind);
    s.send({ op: 'loaded', ok: true, format: loaded.format });
  } catch (e) {
    s.runner = null;
    s.send({ op: 'loaded', ok: false, error: e instanceof NoHandler ? e.message : formatError(e) });
  }
}

function answerUnknown(s, msg) {
  const op = msg.op;
  let what;
  if (op === undefined || op === null) what = 'no op';
  else if (typeof op === 'string') what = 'unknown op ' + JSON.stringify(op.length > 40 ? op.slice(0, 40) + '...' : op);
  else what = 'op of type ' + typeof op;
  s.refuse(`${what}: expected "load", "call", "cancel", "secrets" or "ping"`, msg.id);
}

function answer(s, msg) {
  switch (msg.op) {
    case 'call':
      return answerCall(s, msg);
    case 'ping':
      return s.send({ op: 'pong' });
    case 'secrets':
      return answerSecrets(s, msg);
    case 'load':
      return answerLoad(s, msg);
    case 'cancel':
      return cancelCall(s, msg);
    default:
      return answerUnknown(s, msg);
  }
}

// The protocol over any line stream: hello first, then one request at a time, each answered in order.
function speak(input, send, onEnd) {
  redirectOutput(false);
  process.on('uncaughtException', strayError);
  process.on('unhandledRejection', (r) => strayError(r instanceof Error ? r : new Error('unhandled rejection: ' + formatError(r))));
  send({ op: 'hello', v: PROTOCOL, pid: process.pid });

  const refuse = (error, id) => {
    const reply = { op: 'error', error };
    if (Number.isInteger(id)) reply.id = id;
    send(reply);
  };
  const s = { send, refuse, runner: null, concurrency: 1 };
  let chain = Promise.resolve();
  const beside = new Set(); // calls running beside the chain (several at once), and cancels
  readLines(
    input,
    (text) => {
      text = text.trim();
      if (!text) return;
      let msg;
      try {
        msg = JSON.parse(text);
        if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('message is not an object');
      } catch (e) {
        const error = `bad message: ${String(e.message).slice(0, 200)}: expected a JSON object`;
        chain = chain.then(() => refuse(error));
        return;
      }
      const p = chain.then(() => answer(s, msg)).catch((e) => realStderrWrite(`zfaas loader: ${formatError(e)}\n`));
      // After what came before it, but the next request does not wait for it.
      if (msg.op === 'cancel' || (msg.op === 'call' && s.concurrency > 1)) {
        beside.add(p);
        p.finally(() => beside.delete(p));
      } else chain = p;
    },
    () => chain.then(() => Promise.all([...beside])).then(onEnd),
  );
}

// ---- ./node/src/secrets.js
// The `secrets` request: the function's secrets as files, replaced whole and never half-written.
// protocol/loader.ts, "Secrets": each value a file of the folder (0400), written to a temporary name and
// renamed over the old one; files not in `keep` removed. The folder is 0500 between writes.

function secretsProblem(msg) {
  if (typeof msg.dir !== 'string' || !msg.dir.startsWith('/')) return 'dir: an absolute path';
  if (!Array.isArray(msg.keep) || !msg.keep.every((n) => typeof n === 'string' && SECRET_NAME.test(n))) return 'keep: a list of names';
  if (!msg.files || typeof msg.files !== 'object' || Array.isArray(msg.files)) return 'files: an object of base64 strings';
  for (const [name, value] of Object.entries(msg.files)) {
    if (!msg.keep.includes(name)) return `files: ${JSON.stringify(name.slice(0, 64))} is not in keep`;
    if (typeof value !== 'string' || !BASE64.test(value) || value.length % 4 !== 0) return 'files: an object of base64 strings';
  }
  return null;
}

function writeSecrets(dir, files, keep) {
  fs.chmodSync(dir, 0o700);
  try {
    for (const name of Object.keys(files)) {
      const tmp = path.join(dir, `.${name}.tmp`); // a name never starts with a dot
      fs.rmSync(tmp, { force: true });
      const data = Buffer.from(files[name], 'base64');
      const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o400);
      try {
        for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, path.join(dir, name));
    }
    const wanted = new Set(keep);
    for (const f of fs.readdirSync(dir)) if (!wanted.has(f)) fs.rmSync(path.join(dir, f), { force: true, recursive: true });
  } finally {
    fs.chmodSync(dir, 0o500);
  }
}

// ---- ./node/src/once.js
// Run-once mode (`loader.js --once`, the `none` policy): one call from stdin, its result on stdout.
function readStdin() {
  return new Promise((resolve) => {
    if (process.stdin.isTTY) return resolve('');
    const parts = [];
    process.stdin.on('data', (d) => parts.push(d));
    process.stdin.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    process.stdin.on('error', () => resolve(Buffer.concat(parts).toString('utf8')));
  });
}

async function once() {
  // Docker hands the process non-blocking pipes: a write that does not fit would be queued in memory and
  // lost at exit. Blocking writes keep every print (the platform keeps the end) and the result whole.
  for (const s of [process.stdout, process.stderr]) {
    if (s._handle && typeof s._handle.setBlocking === 'function') s._handle.setBlocking(true);
  }
  redirectOutput(true); // the function's own prints go to stderr
  const fail = (code, text) => {
    realStderrWrite(text.endsWith('\n') ? text : text + '\n', () => process.exit(code));
  };
  process.on('uncaughtException', (e) => fail(1, formatError(e)));
  process.on('unhandledRejection', (r) => fail(1, formatError(r)));

  let raw = await readStdin();
  if (!raw.trim()) raw = (process.env.ZFAAS_PARAMS || '').trim() || '{}';
  let params;
  try {
    params = JSON.parse(raw);
  } catch (e) {
    return fail(1, `zfaas: params are not valid JSON: ${e.message}`);
  }
  process.env.ZFAAS_PARAMS = JSON.stringify(params);
  const format = process.env.ZFAAS_FORMAT || 'auto';
  if (!FORMATS.includes(format)) return fail(1, `zfaas: ZFAAS_FORMAT=${format} is not one of ${FORMATS.join(', ')}`);
  let runner;
  try {
    const loaded = await loadFunction(process.env.ZFAAS_DIR || process.cwd(), process.env.ZFAAS_HANDLER || null, format);
    runner = makeRunner(loaded.fn, loaded.format, loaded.kind);
  } catch (e) {
    return fail(e instanceof NoHandler ? 2 : 1, e instanceof NoHandler ? `zfaas: ${e.message}` : formatError(e));
  }
  let result;
  try {
    result = toResult(await runner.direct(params, 1));
  } catch (e) {
    return fail(1, errorText(e));
  }
  // The platform keeps the first 6 MiB of a result: one character more tells it there was more.
  if (result.length > RESULT_LIMIT + 1) result = result.slice(0, RESULT_LIMIT + 1);
  realStdoutWrite(result, () => process.exit(0));
}

// ---- ./node/src/main.js
// Warm unless asked to run once.
if (process.argv.slice(2).includes('--once')) once();
else serve();
