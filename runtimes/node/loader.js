#!/usr/bin/env node
/*
 * zfaas node loader: keeps a function warm inside its container. No dependencies; Node 18+.
 * Built from the modules in runtimes/node/src by `npm run loaders` (runtimes/build/loaders.ts): edit
 * those, not the built runtimes/node/loader.js.
 *
 * Warm mode (default) speaks the loader protocol (version PROTOCOL): protocol/loader.ts is the spec (messages,
 * limits, transport). In short: with $ZFAAS_LINE set it dials that unix socket (retrying for up to 5 s,
 * then exit 1) and exits 0 when the connection ends; without it, it speaks on stdin/stdout and exits 0
 * at the end of stdin. Either way it says {"op":"hello","v":PROTOCOL,"pid":N} first, then answers load, call,
 * secrets and ping one at a time; a request it cannot read gets {"op":"error"} and it carries on. A call's
 * `env` is its own in process.env, a view of its variables over the shared ones, for that call only (never
 * set in the process's environment, version 4). After a load with concurrency N > 1 (version 3) calls run
 * at once, each in its own AsyncLocalStorage context (its own view; its output goes to its own logs), and
 * `cancel` {id} answers one running call cancelled. What the function writes (console.*,
 * process.stdout/stderr) during a call is captured into "logs"; outside a call it goes to stderr;
 * never to the protocol.
 *
 * Run-once mode (`loader.js --once`, the `none` policy): function dir = $ZFAAS_DIR or the cwd,
 * handler = $ZFAAS_HANDLER if set, format = $ZFAAS_FORMAT if set (else auto; always a call without
 * `http`, see Formats below); params = all of stdin (else $ZFAAS_PARAMS, else {}).
 * Prints the result string to stdout (no newline added) and exits 0; the function's output goes to
 * stderr; an exception prints the stack to stderr and exits 1; no handler file exits 2.
 *
 * Entry: handler "FILE.EXPORT" (last dot separates; FILE may hold slashes) -> FILE(.js|.cjs|.mjs)
 * and that export; else package.json "main", else index.js. Exports: module.exports = fn,
 * exports.handler, exports.main, ESM default. Handlers of arity 2 get a Lambda-like context
 * (getRemainingTimeInMillis counts down to $ZFAAS_DEADLINE, else to $ZFAAS_TIMEOUT seconds after the
 * call started), of arity 3 also a callback.
 *
 * Formats (protocol/loader.ts, "Web calls"): `load` names the function's calling convention (`format`,
 * default auto) and `loaded` says which one it got. auto decides only where the shape is unambiguous: a
 * plain script (exports nothing, defines a top-level `function main`) -> openwhisk; an exported function
 * whose first parameters are (req, res) or (request, response) -> gcf; anything else -> json.
 *   json       handler(params) as above; a call's `http` is not used (the node made params of it).
 *   lambda     AWS Lambda handler(event, context[, callback]) (async, callback, context.done/succeed/fail
 *              or a plain return). Web calls get an API Gateway HTTP API event, payload 2.0 (`lambda-v1`:
 *              the REST API event, payload 1.0); an answer with statusCode is the response, any other
 *              value is 200 application/json (payload 1.0: a malformed answer).
 *   openwhisk  main(args); web calls: args = query + JSON/form body parameters + __ow_method, __ow_headers,
 *              __ow_path, __ow_query, __ow_body; an answer with statusCode/headers/body is the response
 *              (a string body is base64 under a binary content-type), any other value is 200 JSON. Plain
 *              scripts load: their source is compiled with a line that exports main.
 *   openfaas   the OpenFaaS node templates: handler(event, context[, callback]), event {body, headers,
 *              method, query, path}, context.status().headers().succeed(v)/.fail(v) or a returned value.
 *   gcf        Google Cloud Functions: (req, res), Express-like; the call ends when the response does
 *              (send, json, end, sendStatus, redirect), also after the function returned. A function
 *              registered with functions.cloudEvent gets a CloudEvent: a call's params (structured mode)
 *              or a web request (ce-* headers and the body as data, or a JSON body); a web caller gets its
 *              value (none: 204). Registered functions (functions.http / functions.cloudEvent, through the
 *              archive's own @google-cloud/functions-framework or, without one, a stand-in of that name)
 *              are found by name (the handler's, $FUNCTION_TARGET, the only one registered, or the
 *              deployed function's) and are gcf under auto.
 * Streamed answers (protocol version 3, stream.js): in a web call, a handler wrapped by
 * awslambda.streamifyResponse (lambda; auto finds it) and gcf's res.write before res.end send the head at
 * the first write, then each write as a chunk, before the result (whose http.body is then empty).
 * Web answers come back as `http` {status, headers, body (base64)}; a response the function shaped wrongly
 * fails the call, "malformed response: <what>". A call without `http` passes params as the event (openfaas:
 * event.body; gcf: req.body of a POST) and answers the value (openfaas, gcf: the body; a status >= 400 fails).
 */
'use strict';

// ---- generated from protocol/loader.ts by runtimes/build/loaders.ts: do not edit
const PROTOCOL = 5;
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

// ---- node/src/base.js
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

// ---- node/src/capture.js
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

// ---- node/src/framework.js
// Google's Functions Framework: functions.http(name, fn) and functions.cloudEvent(name, fn) register a function
// by name when its module loads. An archive that vendors @google-cloud/functions-framework registers in that
// package's own registry, which is read after the load; one that does not gets, for that one module name,
// a stand-in offering the same two calls (and nothing else), so Google's samples load unchanged.
// Both are read by name (getRegisteredFunction); Node resolves the package as usual, so a copy in a folder
// above the function's (node_modules of a parent) counts as vendored.
const FF_NAME = '@google-cloud/functions-framework';
// The stand-in's key in require's cache: no file is ever read from it.
const FF_STAND_IN = path.join(path.dirname(LOADER_FILE), '.zfaas-functions-framework.js');
// What the real package keeps its registry in (build/src/function_registry.js: getRegisteredFunction(name)).
const FF_REGISTRY_FILE = /[\\/]@google-cloud[\\/]functions-framework[\\/]build[\\/]src[\\/]function_registry\.js$/;
// As the real package accepts names.
const FF_FUNCTION_NAME = /^[A-Za-z0-9-]+$/;

const ffRegistry = new Map(); // name -> { fn, kind: 'http' | 'cloudevent' }, what the stand-in was told

function ffRegister(kind) {
  return (name, fn) => {
    if (typeof name !== 'string' || !FF_FUNCTION_NAME.test(name)) throw new Error(`Invalid function name: ${name}`);
    if (typeof fn !== 'function')
      throw new TypeError(`functions.${kind === 'http' ? 'http' : 'cloudEvent'}("${name}", fn) needs a function`);
    ffRegistry.set(name, { fn, kind });
  };
}

function ffStandIn() {
  const m = new Module(FF_STAND_IN, null);
  m.filename = FF_STAND_IN;
  m.loaded = true;
  m.exports = Object.freeze({ http: ffRegister('http'), cloudEvent: ffRegister('cloudevent') });
  return m;
}

// `require('@google-cloud/functions-framework')` resolves to the stand-in only where Node finds no such package.
// Where it finds one, the real registry's two calls are wrapped as it loads (before the package's entry
// hands them out), so that the names registered through it are known too.
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  let file;
  try {
    file = resolveFilename.call(this, request, ...rest);
  } catch (e) {
    if (request !== FF_NAME || !e || e.code !== 'MODULE_NOT_FOUND') throw e;
    if (!require.cache[FF_STAND_IN]) require.cache[FF_STAND_IN] = ffStandIn();
    return FF_STAND_IN;
  }
  if (typeof file === 'string' && FF_REGISTRY_FILE.test(file) && !ffWatched.has(file)) ffWatch(file);
  return file;
};

const ffWatched = new Set(); // the real registries' files, each watched once
const ffRealRegistries = []; // getRegisteredFunction of each copy of the real package loaded
const ffRealNames = new Set(); // what was registered through them

function ffWatch(file) {
  ffWatched.add(file);
  let reg;
  try {
    reg = require(file);
  } catch (_) {
    return; // the package's own require says what is wrong
  }
  if (!reg || typeof reg.getRegisteredFunction !== 'function') return;
  ffRealRegistries.push(reg.getRegisteredFunction);
  for (const call of ['http', 'cloudEvent']) {
    const register = reg[call];
    if (typeof register !== 'function') continue;
    try {
      reg[call] = function (name) {
        const r = register.apply(this, arguments);
        ffRealNames.add(name);
        return r;
      };
    } catch (_) {
      /* a read-only export: its names are found by name only */
    }
  }
}

// -> { fn, kind } registered under `name`, or null
function ffLookup(name) {
  const own = ffRegistry.get(name);
  if (own) return own;
  for (const get of ffRealRegistries) {
    const r = get(name);
    if (r && typeof r.userFunction === 'function' && (r.signatureType === 'http' || r.signatureType === 'cloudevent'))
      return { fn: r.userFunction, kind: r.signatureType };
  }
  return null;
}

// The registration a function loaded without a name means: the only one made, else the one named as the
// function is deployed (what gcloud takes for the entry point when none is given).
function ffDefault() {
  const names = new Set([...ffRegistry.keys(), ...ffRealNames]);
  if (names.size === 1) return ffLookup(names.values().next().value);
  const own = process.env.ZFAAS_FUNCTION;
  return own && FF_FUNCTION_NAME.test(own) ? ffLookup(own) : null;
}

// ES modules resolve without require: before the first import of a function's module, a resolve hook gives
// `import ... from '@google-cloud/functions-framework'` the same stand-in where Node finds no package.
// (Module.register: Node 18.19 and later; without it an ES module must vendor the package.)
const FF_GLOBAL = Symbol.for('zfaas.functionsFramework');
let ffHooked = false;
function ffHookImports() {
  if (ffHooked || typeof Module.register !== 'function') return;
  ffHooked = true;
  globalThis[FF_GLOBAL] = ffStandIn().exports;
  const standIn =
    'data:text/javascript,' +
    encodeURIComponent(
      "const ff = globalThis[Symbol.for('zfaas.functionsFramework')];\n" +
        'export const http = ff.http;\nexport const cloudEvent = ff.cloudEvent;\nexport default ff;\n',
    );
  const hooks =
    'export async function resolve(specifier, context, next) {\n' +
    '  try {\n    return await next(specifier, context);\n  } catch (e) {\n' +
    `    if (specifier === ${JSON.stringify(FF_NAME)} && e && e.code === 'ERR_MODULE_NOT_FOUND')\n` +
    `      return { url: ${JSON.stringify(standIn)}, format: 'module', shortCircuit: true };\n` +
    '    throw e;\n  }\n}\n';
  Module.register('data:text/javascript,' + encodeURIComponent(hooks));
}

// ---- node/src/load.js
// Loading a function: its entry file (CommonJS, ESM or a plain script), its export, and the format its shape says.
function tryFile(base) {
  for (const cand of [base, base + '.js', base + '.cjs', base + '.mjs', path.join(base, 'index.js')]) {
    try {
      if (fs.statSync(cand).isFile()) return cand;
    } catch (_) {
      /* next */
    }
  }
  return null;
}

function isEsm(file) {
  if (file.endsWith('.mjs')) return true;
  if (file.endsWith('.cjs')) return false;
  // nearest package.json with "type": "module"
  let dir = path.dirname(file);
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8')).type === 'module';
      } catch (_) {
        return false;
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return false;
    dir = up;
  }
}

// A plain script (OpenWhisk's style: a top-level `function main`, no exports) is compiled with this line
// appended: it exports main, and marks the module, when the script itself exported nothing.
const PLAIN_MAIN = Symbol.for('zfaas.plainMain');
const PLAIN_TAIL =
  "\n;if (typeof main === 'function' && module.exports !== null && typeof module.exports === 'object' &&" +
  " Object.keys(module.exports).length === 0) { module.exports = main; module[Symbol.for('zfaas.plainMain')] = true; }\n";

function requirePlain(file) {
  let real = file;
  try {
    real = fs.realpathSync(file); // the name require compiles it under
  } catch (_) {
    /* require says what is wrong */
  }
  const proto = Module.prototype;
  const compile = proto._compile;
  proto._compile = function (content, filename, ...rest) {
    if (filename === real) {
      proto._compile = compile;
      content += PLAIN_TAIL;
    }
    return compile.call(this, content, filename, ...rest);
  };
  let mod;
  try {
    mod = require(real);
  } finally {
    proto._compile = compile;
  }
  const m = require.cache[real];
  return { mod, plain: !!(m && m[PLAIN_MAIN]) };
}

function importEsm(file) {
  ffHookImports();
  return import(pathToFileURL(file).href);
}

async function importFile(file, plainMain) {
  if (isEsm(file)) return { mod: await importEsm(file), plain: false };
  try {
    return plainMain ? requirePlain(file) : { mod: require(file), plain: false };
  } catch (e) {
    if (e && e.code === 'ERR_REQUIRE_ESM') return { mod: await importEsm(file), plain: false };
    throw e;
  }
}

function pickExport(mod, name, format) {
  const cands = [];
  if (name) {
    cands.push(mod && mod[name]);
    if (mod && mod.default && typeof mod.default === 'object') cands.push(mod.default[name]);
    if (name === 'default') cands.push(mod);
  } else {
    const order = format === 'openwhisk' ? ['main', 'handler'] : ['handler', 'main'];
    cands.push(mod);
    if (mod) cands.push(mod[order[0]], mod[order[1]], mod.default);
    if (mod && mod.default && typeof mod.default === 'object') cands.push(mod.default[order[0]], mod.default[order[1]]);
  }
  return cands.find((f) => typeof f === 'function') || null;
}

// The one function a module exports (Cloud Functions name theirs: exports.myFunction = (req, res) => ...).
function soleFunction(mod) {
  if (!mod || typeof mod !== 'object') return null;
  let found = null;
  for (const k of Object.keys(mod)) {
    let f = mod[k];
    if (k === 'default' && f && typeof f === 'object') f = soleFunction(f);
    if (typeof f !== 'function' || f === found) continue;
    if (found) return null;
    found = f;
  }
  return found;
}

// The names of a function's first two parameters (null: destructured or rest), from its source.
function firstParams(fn) {
  let src;
  try {
    src = Function.prototype.toString.call(fn);
  } catch (_) {
    return [];
  }
  const arrow = /^(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(src);
  if (arrow) return [arrow[1]];
  if (/^class\b/.test(src)) return [];
  let i = src.indexOf('(');
  if (i === -1) return [];
  const parts = [];
  let cur = '';
  let depth = 0;
  for (i++; i < src.length && parts.length < 2; i++) {
    const c = src[i];
    if (c === '/' && (src[i + 1] === '*' || src[i + 1] === '/')) {
      const e = src[i + 1] === '*' ? src.indexOf('*/', i + 2) + 1 : src.indexOf('\n', i);
      if (e <= 0) break;
      i = e;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      i = j;
      cur += '_';
    } else if (c === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else if ((c === ')' || c === ']' || c === '}') && depth === 0) {
      parts.push(cur);
      break;
    } else {
      if (c === '(' || c === '[' || c === '{') depth++;
      else if (c === ')' || c === ']' || c === '}') depth--;
      cur += c;
    }
  }
  return parts.map((p) => {
    const m = /^\s*([A-Za-z_$][\w$]*)/.exec(p);
    return m ? m[1] : null;
  });
}

function isReqRes(fn) {
  const [a, b] = firstParams(fn);
  return (a === 'req' && b === 'res') || (a === 'request' && b === 'response');
}

// -> { fn, format, kind }: the function, its format (`format` as asked; auto: the one its shape or its
// registration says) and, for gcf, its kind: 'http' (req, res) or 'cloudevent' (a CloudEvent)
async function loadFunction(dir, handler, format = 'auto') {
  dir = path.resolve(dir || '.');
  let st;
  try {
    st = fs.statSync(dir);
  } catch (_) {
    st = null;
  }
  if (!st || !st.isDirectory()) throw new NoHandler(`function directory ${dir} does not exist`);
  process.chdir(dir);

  let file;
  let exportName = null;
  if (handler) {
    handler = String(handler).trim();
    const dot = handler.lastIndexOf('.');
    if (dot <= 0 || dot === handler.length - 1) throw new NoHandler(`handler "${handler}" is not of the form FILE.EXPORT`);
    const filePart = handler.slice(0, dot);
    exportName = handler.slice(dot + 1);
    file = tryFile(path.resolve(dir, filePart));
    if (!file) throw new NoHandler(`handler file ${filePart}(.js|.cjs|.mjs) not found in ${dir}`);
  } else {
    let main = null;
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        main = JSON.parse(fs.readFileSync(pj, 'utf8')).main || null;
      } catch (e) {
        throw new NoHandler(`cannot parse ${pj}: ${e.message}`);
      }
    }
    if (main) {
      file = tryFile(path.resolve(dir, main));
      if (!file) throw new NoHandler(`package.json main "${main}" not found in ${dir}`);
    } else {
      file = tryFile(path.join(dir, 'index.js')) || tryFile(path.join(dir, 'index.mjs'));
      if (!file && format === 'openfaas') file = tryFile(path.join(dir, 'handler.js')); // the templates' file
      if (!file)
        throw new NoHandler(`no handler found in ${dir}: expected package.json "main" or index.js, or a handler setting FILE.EXPORT`);
    }
    // the Functions Framework's way of naming the entry point
    if ((format === 'gcf' || format === 'auto') && process.env.FUNCTION_TARGET) exportName = process.env.FUNCTION_TARGET;
  }
  const plainMain = format === 'auto' || format === 'openwhisk';
  const { mod, plain } = await importFile(file, plainMain);
  // A function registered with the Functions Framework comes first, as the framework has it.
  const reg = exportName ? ffLookup(exportName) : ffDefault();
  if (reg) {
    const gcf = format === 'auto' || format === 'gcf';
    return { fn: reg.fn, format: gcf ? 'gcf' : format, kind: gcf ? reg.kind : 'http' };
  }
  let fn = plain && (!exportName || exportName === 'main') ? mod : pickExport(mod, exportName, format);
  if (!fn && !exportName && (format === 'gcf' || format === 'auto')) {
    const only = soleFunction(mod);
    if (only && (format === 'gcf' || isReqRes(only))) fn = only;
  }
  if (!fn) {
    const rel = path.relative(dir, file);
    throw new NoHandler(
      exportName
        ? `${rel} has no exported function "${exportName}", nor one registered under that name with functions.http or functions.cloudEvent`
        : `${rel} exports no function (module.exports = fn, exports.handler or exports.main${plainMain ? ', or a plain script with a top-level function main' : ''}) and registers none with functions.http or functions.cloudEvent`,
    );
  }
  // awslambda.streamifyResponse marks a Lambda handler (stream.js)
  if (format === 'auto') format = plain ? 'openwhisk' : isReqRes(fn) ? 'gcf' : isStreamified(fn) ? 'lambda' : 'json';
  return { fn, format, kind: 'http' };
}

// ---- node/src/call.js
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

// ---- node/src/formats/http.js
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

// ---- node/src/formats/lambda.js
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

// ---- node/src/formats/openwhisk.js
// Apache OpenWhisk web actions: main(args) with the __ow_* fields, and the response it makes of an answer.
// A web action's arguments: query parameters, then the body's (a JSON object or a form), then __ow_*.
function owArgs(h) {
  const args = parseQuery(h.query, 'last');
  if (h.body) {
    const b = eventBody(h);
    if (!b.base64) {
      const mt = mediaType(h.headers['content-type']);
      if (mt === 'application/json' || mt.endsWith('+json')) {
        let v = null;
        try {
          v = JSON.parse(b.text);
        } catch (_) {
          /* not an object: only in __ow_body */
        }
        if (v && typeof v === 'object' && !Array.isArray(v)) assignParams(args, v);
      } else if (mt === 'application/x-www-form-urlencoded') assignParams(args, parseQuery(b.text, 'last'));
    }
    args.__ow_body = b.text;
  }
  args.__ow_method = h.method.toLowerCase();
  args.__ow_headers = h.headers;
  args.__ow_path = h.path === '/' ? '' : h.path;
  args.__ow_query = h.query;
  return args;
}

function owResponse(v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || !('statusCode' in v || 'headers' in v || 'body' in v))
    return jsonAnswer(v, JSON.stringify(v === undefined ? {} : v));
  const explicit = v.statusCode === undefined || v.statusCode === null ? 0 : statusOf(v.statusCode, 'statusCode');
  const headers = {};
  addHeaders(headers, v.headers, 'headers', true);
  const ct = headers['content-type'];
  const body = v.body;
  let buf = EMPTY;
  if (typeof body === 'string') {
    const mt = mediaType(ct);
    if (isBinary(mt)) buf = fromBase64(body, `body is not valid base64 (content-type ${mt} is binary: its body must be base64)`);
    else {
      buf = Buffer.from(body, 'utf8');
      if (ct === undefined && buf.length) headers['content-type'] = 'text/html; charset=utf-8';
    }
  } else if (body !== undefined && body !== null) {
    buf = Buffer.from(JSON.stringify(body) || '', 'utf8');
    if (ct === undefined) headers['content-type'] = 'application/json';
  }
  return { status: explicit || (buf.length ? 200 : 204), headers, body: buf };
}

function callOne(fn, arg) {
  return new Promise((resolve, reject) => {
    current = { reject };
    Promise.resolve(fn(arg)).then(resolve, reject);
  }).finally(() => {
    current = null;
  });
}

// ---- node/src/formats/express.js
// Express-like requests and responses, as Google Cloud Functions (gcf) give them to a (req, res) function.
// req.body as Express's body parsers leave it: JSON, text and forms parsed, the rest as bytes; none: {}.
function parsedBody(raw, mt) {
  if (raw.length === 0) return {};
  if (mt === 'application/json' || mt.endsWith('+json')) return JSON.parse(raw.toString('utf8'));
  if (mt.startsWith('text/')) return raw.toString('utf8');
  if (mt === 'application/x-www-form-urlencoded') return parseQuery(raw.toString('utf8'), 'array');
  return raw;
}

// -> { raw, body } or { bad }: the 400 the framework answers for a JSON body that does not parse
function expressBody(h, defaultType) {
  const raw = h.body ? Buffer.from(h.body, 'base64') : EMPTY;
  try {
    return { raw, body: parsedBody(raw, mediaType(h.headers['content-type']) || defaultType) };
  } catch (e) {
    const text = `Bad Request: the body is not valid JSON (${e.message})\n`;
    return { bad: { status: 400, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from(text, 'utf8') } };
  }
}

const TYPES = {
  html: 'text/html',
  htm: 'text/html',
  text: 'text/plain',
  txt: 'text/plain',
  css: 'text/css',
  csv: 'text/csv',
  md: 'text/markdown',
  json: 'application/json',
  js: 'application/javascript',
  xml: 'application/xml',
  form: 'application/x-www-form-urlencoded',
  urlencoded: 'application/x-www-form-urlencoded',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  ico: 'image/x-icon',
  pdf: 'application/pdf',
  zip: 'application/zip',
  wasm: 'application/wasm',
  mp3: 'audio/mpeg',
  mp4: 'video/mp4',
  bin: 'application/octet-stream',
};
const lookupType = (t) =>
  String(t).includes('/') ? String(t) : TYPES[String(t).replace(/^\./, '').toLowerCase()] || 'application/octet-stream';
const HAS_CHARSET = /;\s*charset\s*=/i;
// Express adds the charset of text types to a Content-Type that has none
const withCharset = (ct) =>
  !HAS_CHARSET.test(ct) && /^\s*(?:text\/|application\/(?:json|javascript)\s*(?:;|$))/i.test(ct) ? ct + '; charset=utf-8' : ct;
// and a string body makes it utf-8
const utf8Charset = (ct) => (HAS_CHARSET.test(ct) ? ct.replace(/(;\s*charset\s*=\s*)[^;]*/i, '$1utf-8') : ct + '; charset=utf-8');

class WebRequest {
  constructor(h, body, raw, query) {
    this.method = h.method;
    this.headers = h.headers;
    this.url = h.query ? `${h.path}?${h.query}` : h.path;
    this.originalUrl = this.url;
    this.baseUrl = '';
    this.path = h.path;
    this.query = query;
    this.params = {};
    this.body = body;
    this.rawBody = raw;
    this.ip = h.sourceIp;
    this.ips = [];
    this.protocol = 'http';
    this.secure = false;
    this.hostname = (h.headers.host || '').replace(/:\d+$/, '');
  }

  get(name) {
    const k = String(name).toLowerCase();
    if (k === 'referer' || k === 'referrer') return this.headers.referrer || this.headers.referer;
    return this.headers[k];
  }

  header(name) {
    return this.get(name);
  }

  is(...types) {
    const mt = mediaType(this.headers['content-type']);
    if (!mt) return null;
    for (const t of types.flat()) {
      const want = lookupType(t).replace(/\*\//, '');
      if (mt === want || (want.endsWith('/*') && mt.startsWith(want.slice(0, -1))) || (want.startsWith('+') && mt.endsWith(want))) return t;
    }
    return false;
  }
}

function headersSentError() {
  const e = new Error('Cannot set headers after they are sent to the client');
  e.code = 'ERR_HTTP_HEADERS_SENT';
  return e;
}

// A response as Express (over node's http.ServerResponse) lets a function make it; `onFinish` hears when
// it is finished (send, json, end, sendStatus, redirect).
class WebResponse extends EventEmitter {
  constructor(method, onFinish) {
    super();
    this.statusCode = 200;
    this.statusMessage = '';
    this.headersSent = false;
    this.finished = false;
    this.writableEnded = false;
    this.writableFinished = false;
    this.locals = {};
    this._method = method;
    this._onFinish = onFinish;
    this._headers = Object.create(null); // lower-case name -> value
    this._names = Object.create(null); // lower-case name -> the name as set
    this._chunks = [];
  }

  setHeader(name, value) {
    if (this.headersSent) throw headersSentError();
    const k = String(name).toLowerCase();
    this._headers[k] = value;
    this._names[k] = String(name);
    return this;
  }

  getHeader(name) {
    return this._headers[String(name).toLowerCase()];
  }

  getHeaders() {
    const out = {};
    for (const k in this._headers) setKey(out, k, this._headers[k]);
    return out;
  }

  getHeaderNames() {
    return Object.keys(this._headers);
  }

  hasHeader(name) {
    return String(name).toLowerCase() in this._headers;
  }

  removeHeader(name) {
    if (this.headersSent) throw headersSentError();
    delete this._headers[String(name).toLowerCase()];
  }

  writeHead(code, message, headers) {
    if (typeof message === 'string') this.statusMessage = message;
    else headers = message;
    this.statusCode = code;
    if (Array.isArray(headers)) for (let i = 0; i + 1 < headers.length; i += 2) this.setHeader(headers[i], headers[i + 1]);
    else if (headers) for (const k of Object.keys(headers)) this.setHeader(k, headers[k]);
    this.headersSent = true;
    return this;
  }

  write(chunk, encoding, cb) {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.finished) throw new Error('write after end');
    this._push(chunk, encoding);
    if (this._stream) this._flushStream(); // a web call: the head, then each write, as they come
    this.headersSent = true;
    if (typeof cb === 'function') process.nextTick(cb);
    return true;
  }

  end(chunk, encoding, cb) {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (!this.finished) {
      if (chunk !== undefined && chunk !== null) this._push(chunk, encoding);
      if (this._stream && this._stream.headSent) this._flushStream();
      this._finish();
    }
    if (typeof cb === 'function') process.nextTick(cb);
    return this;
  }

  status(code) {
    this.statusCode = code;
    return this;
  }

  set(field, value) {
    if (value === undefined && field !== null && typeof field === 'object') {
      for (const k of Object.keys(field)) this.set(k, field[k]);
      return this;
    }
    let v = Array.isArray(value) ? value.map(String) : String(value);
    if (String(field).toLowerCase() === 'content-type') {
      if (Array.isArray(v)) throw new TypeError('Content-Type cannot be set to an Array');
      v = withCharset(v);
    }
    return this.setHeader(field, v);
  }

  header(field, value) {
    return this.set(field, value);
  }

  get(field) {
    return this.getHeader(field);
  }

  append(field, value) {
    const prev = this.get(field);
    return this.set(field, prev === undefined ? value : [].concat(prev, value));
  }

  type(t) {
    return this.set('Content-Type', lookupType(t));
  }

  contentType(t) {
    return this.type(t);
  }

  location(url) {
    return this.set('Location', url);
  }

  vary(field) {
    return this.append('Vary', field);
  }

  cookie(name, value, opts = {}) {
    let c = `${name}=${encodeURIComponent(typeof value === 'object' ? 'j:' + JSON.stringify(value) : String(value))}`;
    if (opts.maxAge !== undefined) {
      const ms = Number(opts.maxAge);
      c += `; Max-Age=${Math.floor(ms / 1000)}; Expires=${new Date(Date.now() + ms).toUTCString()}`;
    } else if (opts.expires) c += `; Expires=${new Date(opts.expires).toUTCString()}`;
    if (opts.domain) c += `; Domain=${opts.domain}`;
    c += `; Path=${opts.path || '/'}`;
    if (opts.httpOnly) c += '; HttpOnly';
    if (opts.secure) c += '; Secure';
    if (opts.sameSite) c += `; SameSite=${opts.sameSite === true ? 'Strict' : opts.sameSite[0].toUpperCase() + opts.sameSite.slice(1)}`;
    return this.append('Set-Cookie', c);
  }

  clearCookie(name, opts = {}) {
    return this.cookie(name, '', { ...opts, maxAge: undefined, expires: 1 });
  }

  redirect(a, b) {
    const [code, url] = typeof a === 'number' ? [a, b] : [typeof b === 'number' ? b : 302, a];
    this.statusCode = code;
    this.location(url).type('txt');
    return this.send(`${statusText(code) || 'Found'}. Redirecting to ${url}`);
  }

  send(body) {
    let chunk = body;
    if (typeof chunk === 'number' && arguments.length === 1) {
      // Express 4: res.send(status)
      if (this.get('Content-Type') === undefined) this.type('txt');
      this.statusCode = chunk;
      chunk = statusText(chunk) || String(chunk);
    }
    switch (typeof chunk) {
      case 'string':
        if (this.get('Content-Type') === undefined) this.type('html');
        break;
      case 'boolean':
      case 'number':
      case 'object':
        if (chunk === null) chunk = '';
        else if (chunk instanceof Uint8Array) {
          if (this.get('Content-Type') === undefined) this.type('bin');
        } else return this.json(chunk);
        break;
    }
    if (typeof chunk === 'string') {
      const ct = this.get('Content-Type');
      if (typeof ct === 'string') this.setHeader('Content-Type', utf8Charset(ct));
    }
    return this.end(chunk);
  }

  json(obj) {
    const body = JSON.stringify(obj);
    if (this.get('Content-Type') === undefined) this.set('Content-Type', 'application/json');
    return this.send(body);
  }

  sendStatus(code) {
    this.statusCode = code;
    this.type('txt');
    return this.send(statusText(code) || String(code));
  }

  _push(chunk, encoding) {
    if (typeof chunk === 'string') this._chunks.push(Buffer.from(chunk, encoding || 'utf8'));
    else if (chunk instanceof Uint8Array) this._chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    else throw new TypeError(`the chunk must be a string, a Buffer or a Uint8Array, got ${describe(chunk)}`);
  }

  _finish() {
    this.finished = this.writableEnded = this.writableFinished = this.headersSent = true;
    this._onFinish(this);
    process.nextTick(() => {
      this.emit('finish');
      this.emit('close');
    });
  }

  // Streams what was written so far (the head first, once): write() was called in a web call.
  _flushStream() {
    const st = this._stream;
    if (!st.headSent) {
      const a = this._answer('statusCode');
      this._chunks = [];
      streamHead(st, a.status, a.headers);
      if (a.body.length) streamWrite(st, a.body);
      return;
    }
    const chunks = this._chunks;
    this._chunks = [];
    if (this._method !== 'HEAD') for (const c of chunks) streamWrite(st, c);
  }

  // The response as the protocol carries it (throws a ReplyError for a malformed one).
  _answer(field) {
    const status = statusOf(this.statusCode, field);
    const headers = {};
    for (const k in this._headers) {
      const v = this._headers[k];
      if (v !== undefined) headers[headerName(this._names[k])] = headerValue(this._names[k], v, true);
    }
    const n = this._chunks.length;
    let body = n === 0 ? EMPTY : n === 1 ? this._chunks[0] : Buffer.concat(this._chunks);
    if (status === 204 || status === 304) {
      delete headers['content-type'];
      delete headers['content-length'];
      delete headers['transfer-encoding'];
      body = EMPTY;
    } else if (this._method === 'HEAD') body = EMPTY;
    return { status, headers, body };
  }
}

// Runs a (req, res) function: its answer is the response once finished, whenever that is.
function runGcf(fn, req) {
  return new Promise((resolve, reject) => {
    current = { reject };
    let settled = false;
    const res = new WebResponse(req.method, (r) => {
      if (settled) return;
      settled = true;
      try {
        resolve(r._answer('statusCode'));
      } catch (e) {
        reject(e);
      }
    });
    const failed = (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      } else process.stderr.write(`zfaas: the function failed after its response was sent: ${formatError(e)}\n`);
    };
    res._stream = streaming; // a web call's: res.write streams (stream.js)
    try {
      const r = fn(req, res);
      if (r && typeof r.then === 'function') r.then(null, failed);
    } catch (e) {
      failed(e);
    }
  }).finally(() => {
    current = null;
  });
}

// ---- node/src/formats/cloudevent.js
// CloudEvent functions (registered with functions.cloudEvent): the event is a call's params (structured mode),
// or a web request carrying it in binary mode (ce-* headers, the data as the body) or in structured mode
// (a JSON body); a web caller gets what the Functions Framework answers: 204 for no value, else the value.
const CE_REQUIRED = ['specversion', 'id', 'source', 'type'];
const CE_EXPECTED =
  'a CloudEvent: a JSON object with the string attributes specversion, id, source and type (structured mode), ' +
  'or a request with the headers ce-specversion, ce-id, ce-source and ce-type and the data as its body (binary mode)';

// What is wrong with `v` as a CloudEvent in structured mode, or null.
function ceProblem(v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return `got ${describe(v)}`;
  const missing = CE_REQUIRED.filter((k) => typeof v[k] !== 'string' || v[k] === '');
  return missing.length ? `${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing or not a non-empty string` : null;
}

// A structured-mode event as the function gets it: its attributes, and its data (data_base64 decoded).
function ceStructured(v) {
  const event = {};
  assignParams(event, v);
  if (typeof v.data_base64 === 'string' && v.data === undefined) {
    event.data = Buffer.from(v.data_base64, 'base64');
    delete event.data_base64;
  }
  return event;
}

const ceHeaderValue = (v) => {
  try {
    return decodeURIComponent(v); // the HTTP binding percent-encodes what a header cannot carry
  } catch (_) {
    return v;
  }
};

// -> { event } or { bad }: the event of a web request, binary mode first.
function ceFromWeb(h) {
  const hd = h.headers;
  if (CE_REQUIRED.every((k) => typeof hd['ce-' + k] === 'string')) {
    const event = {};
    for (const k of Object.keys(hd)) if (k.startsWith('ce-') && k.length > 3) setKey(event, k.slice(3), ceHeaderValue(hd[k]));
    if (hd['content-type']) event.datacontenttype = hd['content-type'];
    const b = expressBody(h, '');
    if (b.bad) return b;
    if (b.raw.length > 0) event.data = b.body;
    return { event };
  }
  const mt = mediaType(hd['content-type']);
  let problem = `got neither the ce-* headers nor a JSON body (content type ${mt || 'none'})`;
  if (mt === 'application/json' || mt.endsWith('+json')) {
    const b = expressBody(h, '');
    if (b.bad) return b;
    problem = ceProblem(b.body);
    if (!problem) return { event: ceStructured(b.body) };
  }
  const text = `Bad Request: expected ${CE_EXPECTED}; ${problem}\n`;
  return { bad: { status: 400, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from(text, 'utf8') } };
}

// Runs the function on the event: its value (a callback's, when it takes one as the framework allows).
function runCloudEvent(fn, event) {
  return new Promise((resolve, reject) => {
    current = { reject };
    let done = false;
    const cb = (err, value) => {
      if (done) return;
      done = true;
      if (err) reject(err);
      else resolve(value);
    };
    try {
      const r = fn.length > 1 ? fn(event, cb) : fn(event);
      if (fn.length <= 1 || (r && typeof r.then === 'function'))
        Promise.resolve(r).then(
          (v) => cb(null, v),
          (e) => cb(e || new Error('rejected')),
        );
    } catch (e) {
      cb(e);
    }
  }).finally(() => {
    current = null;
  });
}

// The framework's answer to a value: none is 204, a number is JSON, anything else as res.send sends it.
function ceAnswer(value) {
  let answer = null;
  const res = new WebResponse('POST', (r) => (answer = r._answer('the answer')));
  if (value === undefined || value === null) res.sendStatus(204);
  else if (typeof value === 'number') res.json(value);
  else res.send(value);
  answer.value = value;
  return answer;
}

function cloudEventRunner(fn) {
  return {
    web: (h) => {
      const got = ceFromWeb(h);
      if (got.bad) return Promise.resolve(got.bad);
      return runCloudEvent(fn, got.event).then(ceAnswer);
    },
    direct: (params) => {
      const problem = ceProblem(params);
      if (problem) return Promise.reject(new ReplyError(`the params must be ${CE_EXPECTED}; ${problem}`));
      return runCloudEvent(fn, ceStructured(params));
    },
  };
}

// ---- node/src/formats/openfaas.js
// OpenFaaS's node templates: handler(event, context[, callback]) and its context.status().headers().succeed().
// The context of the OpenFaaS node templates.
class FaasContext {
  constructor(answer) {
    this.statusCode = 200;
    this.headerValues = {};
    this.cbCalled = 0;
    this.cb = answer;
  }

  status(code) {
    if (!code) return this.statusCode;
    this.statusCode = code;
    return this;
  }

  headers(value) {
    if (!value) return this.headerValues;
    this.headerValues = value;
    return this;
  }

  succeed(value) {
    this.cbCalled++;
    this.cb(undefined, value);
  }

  fail(value) {
    if (Number(this.statusCode) === 200) this.statusCode = 500;
    this.cbCalled++;
    this.cb(value);
  }
}

// Runs an OpenFaaS handler(event, context, callback): its answer is the first of succeed/fail/callback, or
// the value its promise gives when it called none of them.
function runOpenfaas(fn, event, method) {
  return new Promise((resolve, reject) => {
    current = { reject };
    let answered = false;
    const res = new WebResponse(method, () => {});
    const answer = (err, value) => {
      if (answered) return;
      answered = true;
      try {
        if (err) res.status(ctx.statusCode).send(typeof err.toString === 'function' ? err.toString() : String(err));
        else {
          const hv = ctx.headerValues;
          if (hv !== undefined && hv !== null && (typeof hv !== 'object' || Array.isArray(hv)))
            throw malformed(`headers must be an object, got ${describe(hv)}`);
          if (hv) res.set(hv);
          res.status(ctx.statusCode);
          if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
            if (res.get('Content-Type') === undefined) res.set('Content-Type', 'application/json');
            res.send(JSON.stringify(value));
          } else res.send(typeof value === 'number' ? String(value) : value);
        }
        resolve(res._answer('status'));
      } catch (e) {
        reject(e);
      }
    };
    const ctx = new FaasContext(answer);
    try {
      const r = fn(event, ctx, answer);
      Promise.resolve(r).then(
        (v) => ctx.cbCalled || ctx.succeed(v),
        (e) => answered || ((answered = true), reject(e)),
      );
    } catch (e) {
      answered = true;
      reject(e);
    }
  }).finally(() => {
    current = null;
  });
}

// ---- node/src/formats/runner.js
// Which format runs a call: the web form with `http`, the direct one without.
// A call without `http` to a function that answers HTTP: the body is the result; a status >= 400 fails.
function bodyResult(r) {
  const text = r.body.toString('utf8');
  if (r.status >= 400)
    throw new ReplyError(`the function answered ${r.status}: ${text.length > 2000 ? text.slice(0, 2000) + '...' : text}`);
  return text;
}

// What a format does with a call: web(http, id) -> {status, headers, body: Buffer, value?} for calls with
// `http` (null: the format does not use it), direct(params, id) -> the value for the others. `kind` tells
// gcf's two forms apart: 'http' (req, res) or 'cloudevent' (a registered CloudEvent function).
function makeRunner(fn, format, kind) {
  switch (format) {
    case 'lambda':
    case 'lambda-v1': {
      const info = lambdaInfo();
      const v1 = format === 'lambda-v1';
      const event = v1 ? lambdaEventV1 : lambdaEventV2;
      return {
        web: (h, id) => {
          const rid = requestId(id);
          if (isStreamified(fn)) return runStreamingLambda(fn, event(h, rid, info), lambdaContext(info, rid), true);
          return runLambda(fn, event(h, rid, info), lambdaContext(info, rid)).then((v) => lambdaResponse(v, v1));
        },
        direct: (params, id) => (isStreamified(fn) ? runStreamingLambda : runLambda)(fn, params, lambdaContext(info, requestId(id))),
      };
    }
    case 'openwhisk':
      return { web: (h) => callOne(fn, owArgs(h)).then(owResponse), direct: (params) => callOne(fn, params) };
    case 'openfaas':
      return {
        web: (h) => {
          const b = expressBody(h, 'text/plain'); // the template's default type
          if (b.bad) return Promise.resolve(b.bad);
          const event = { body: b.body, headers: h.headers, method: h.method, query: parseQuery(h.query, 'array'), path: h.path };
          return runOpenfaas(fn, event, h.method);
        },
        direct: (params) => runOpenfaas(fn, { body: params, headers: {}, method: 'POST', query: {}, path: '/' }, 'POST').then(bodyResult),
      };
    case 'gcf':
      if (kind === 'cloudevent') return cloudEventRunner(fn);
      return {
        web: (h) => {
          const b = expressBody(h, '');
          if (b.bad) return Promise.resolve(b.bad);
          return runGcf(fn, new WebRequest(h, b.body, b.raw, parseQuery(h.query, 'array')));
        },
        direct: (params) => {
          const raw = Buffer.from(JSON.stringify(params), 'utf8');
          const h = { method: 'POST', path: '/', query: '', headers: { 'content-type': 'application/json' }, sourceIp: '' };
          return runGcf(fn, new WebRequest(h, params, raw, {})).then(bodyResult);
        },
      };
    default:
      return { web: null, direct: (params, id) => invoke(fn, params, id) };
  }
}

// ---- node/src/stream.js
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

// ---- node/src/concurrent.js
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

// ---- node/src/warm.js
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

// ---- node/src/secrets.js
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

// ---- node/src/once.js
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

// ---- node/src/main.js
// Warm unless asked to run once.
if (process.argv.slice(2).includes('--once')) once();
else serve();
