#!/usr/bin/env node
/*
 * zfaas node loader: keeps a function warm inside its container. No dependencies; Node 18+.
 *
 * Warm mode (default) speaks the loader protocol, version 1: protocol/loader.ts is the spec (messages,
 * limits, transport). In short: with $ZFAAS_LINE set it dials that unix socket (retrying for up to 5 s,
 * then exit 1) and exits 0 when the connection ends; without it, it speaks on stdin/stdout and exits 0
 * at the end of stdin. Either way it says {"op":"hello","v":1,"pid":N} first, then answers load, call
 * and ping one at a time; a request it cannot read gets {"op":"error"} and it carries on. A call's
 * `env` is set in process.env for that call only. What the function writes (console.*,
 * process.stdout/stderr) during a call is captured into "logs"; outside a call it goes to stderr;
 * never to the protocol.
 *
 * Run-once mode (`loader.js --once`, the `none` policy): function dir = $ZFAAS_DIR or the cwd,
 * handler = $ZFAAS_HANDLER if set; params = all of stdin (else $ZFAAS_PARAMS, else {}).
 * Prints the result string to stdout (no newline added) and exits 0; the function's output goes to
 * stderr; an exception prints the stack to stderr and exits 1; no handler file exits 2.
 *
 * Entry: handler "FILE.EXPORT" (last dot separates; FILE may hold slashes) -> FILE(.js|.cjs|.mjs)
 * and that export; else package.json "main", else index.js. Exports: module.exports = fn,
 * exports.handler, exports.main, ESM default. Handlers of arity 2 get a Lambda-like context
 * (getRemainingTimeInMillis counts down to $ZFAAS_DEADLINE, else to $ZFAAS_TIMEOUT seconds after the
 * call started), of arity 3 also a callback.
 */
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const { pathToFileURL } = require('url');

// as protocol/loader.ts has them (LOADER_PROTOCOL, LOG_LIMIT, RESULT_LIMIT, LINE_ENV)
const PROTOCOL = 1;
const LOG_LIMIT = 64 * 1024;
const RESULT_LIMIT = 6 * 1024 * 1024;
const LINE_ENV = 'ZFAAS_LINE'; // the node's unix socket, when it has one
const CONNECT_FOR_MS = 5000; // how long to keep dialing it
const ERR_LIMIT = 8 * 1024;
const LOADER_FILE = __filename;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INTERNAL_FRAME = /\(node:internal|at node:internal|at new Promise \(<anonymous>\)/;

class NoHandler extends Error {}

// ------------------------------------------------------------------ output plumbing

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

// ------------------------------------------------------------------ loading

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

async function importFile(file) {
  if (isEsm(file)) return import(pathToFileURL(file).href);
  try {
    return require(file);
  } catch (e) {
    if (e && e.code === 'ERR_REQUIRE_ESM') return import(pathToFileURL(file).href);
    throw e;
  }
}

function pickExport(mod, name) {
  const cands = [];
  if (name) {
    cands.push(mod && mod[name]);
    if (mod && mod.default && typeof mod.default === 'object') cands.push(mod.default[name]);
    if (name === 'default') cands.push(mod);
  } else {
    cands.push(mod);
    if (mod) cands.push(mod.handler, mod.main, mod.default);
    if (mod && mod.default && typeof mod.default === 'object') cands.push(mod.default.handler, mod.default.main);
  }
  return cands.find((f) => typeof f === 'function') || null;
}

async function loadFunction(dir, handler) {
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
      if (!file)
        throw new NoHandler(`no handler found in ${dir}: expected package.json "main" or index.js, or a handler setting FILE.EXPORT`);
    }
  }
  const mod = await importFile(file);
  const fn = pickExport(mod, exportName);
  if (!fn) {
    const rel = path.relative(dir, file);
    throw new NoHandler(
      exportName
        ? `${rel} has no exported function "${exportName}"`
        : `${rel} exports no function (module.exports = fn, exports.handler or exports.main)`,
    );
  }
  return fn;
}

// ------------------------------------------------------------------ calling

let current = null; // { reject } of the running call, for stray async errors

function makeContext(id) {
  // read now: a call's own variables (ZFAAS_DEADLINE) are gone from process.env once it returns
  const deadline = Number(process.env.ZFAAS_DEADLINE); // epoch ms
  const end = deadline > 0 ? deadline : Date.now() + Number(process.env.ZFAAS_TIMEOUT || 30) * 1000;
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

// Processes in this container other than init (pid 1) and this loader: what a call left running.
// One readdir of /proc (its pid entries are the only ones starting with a digit).
const SELF = String(process.pid);
function strayProcesses() {
  let names;
  try {
    names = fs.readdirSync('/proc');
  } catch (_) {
    return 0;
  }
  let n = 0;
  for (let i = 0; i < names.length; i++) {
    const c = names[i].charCodeAt(0);
    if (c >= 48 && c <= 57 && names[i] !== '1' && names[i] !== SELF) n++;
  }
  return n;
}

function strayError(e) {
  if (current) current.reject(e);
  else realStderrWrite(`zfaas loader: uncaught error outside a call: ${formatError(e)}\n`);
}

// ------------------------------------------------------------------ warm mode

// A request's `env`: an object of strings named like environment variables (no NUL: setenv cannot hold it).
function isEnv(env) {
  if (env === null || typeof env !== 'object' || Array.isArray(env)) return false;
  for (const k in env) {
    const v = env[k];
    if (typeof v !== 'string' || !ENV_NAME.test(k) || v.includes('\0')) return false;
  }
  return true;
}

// Sets a call's own variables; returns what restoreEnv puts back (undefined: the variable was not set).
function setEnv(env) {
  const keys = Object.keys(env);
  if (keys.length === 0) return null;
  const prev = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const old = process.env[keys[i]];
    prev[i] = typeof old === 'string' ? old : undefined;
    process.env[keys[i]] = env[keys[i]];
  }
  return { keys, prev };
}

function restoreEnv(saved) {
  if (!saved) return;
  for (let i = saved.keys.length - 1; i >= 0; i--) {
    if (saved.prev[i] === undefined) delete process.env[saved.keys[i]];
    else process.env[saved.keys[i]] = saved.prev[i];
  }
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
  const ENV_EXPECTED = 'an object of strings named [A-Za-z_][A-Za-z0-9_]*';

  let fn = null;
  let chain = Promise.resolve();
  const handle = async (msg) => {
    const op = msg.op;
    if (op === 'call') {
      const id = msg.id;
      if (!Number.isInteger(id) || id < 1) return refuse('call needs id: a positive integer', id);
      const env = msg.env === undefined ? {} : msg.env;
      if (!isEnv(env)) return refuse(`call needs env: ${ENV_EXPECTED}`, id);
      if (!fn) {
        send({ op: 'result', id, ok: false, error: 'no function loaded', logs: '' });
        return;
      }
      const params = msg.params === undefined ? null : msg.params;
      const saved = setEnv(env);
      process.env.ZFAAS_PARAMS = JSON.stringify(params);
      startCapture();
      let reply;
      try {
        const value = await invoke(fn, params, id);
        let result = toResult(value);
        reply = { op: 'result', id, ok: true, result };
        if (result.length > RESULT_LIMIT) {
          result = result.slice(0, RESULT_LIMIT);
          reply.result = result;
          reply.truncated = true;
        }
      } catch (e) {
        reply = { op: 'result', id, ok: false, error: formatError(e) };
      }
      reply.logs = stopCapture();
      restoreEnv(saved);
      const stray = strayProcesses();
      if (stray > 0) reply.stray = stray;
      send(reply);
    } else if (op === 'ping') {
      send({ op: 'pong' });
    } else if (op === 'load') {
      if (typeof msg.dir !== 'string') return refuse('load needs dir: a string');
      if (msg.handler !== null && typeof msg.handler !== 'string') return refuse('load needs handler: a string or null');
      if (!isEnv(msg.env)) return refuse(`load needs env: ${ENV_EXPECTED}`);
      process.env.ZFAAS_PARAMS = '{}';
      // A stem cell learns its function (and the function's environment) only when it is given one.
      for (const k of Object.keys(msg.env)) process.env[k] = msg.env[k];
      try {
        fn = await loadFunction(msg.dir || '/ws', msg.handler);
        send({ op: 'loaded', ok: true });
      } catch (e) {
        fn = null;
        send({ op: 'loaded', ok: false, error: e instanceof NoHandler ? e.message : formatError(e) });
      }
    } else {
      let what;
      if (op === undefined || op === null) what = 'no op';
      else if (typeof op === 'string') what = 'unknown op ' + JSON.stringify(op.length > 40 ? op.slice(0, 40) + '...' : op);
      else what = 'op of type ' + typeof op;
      refuse(`${what}: expected "load", "call" or "ping"`, msg.id);
    }
  };

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
      chain = chain.then(() => handle(msg)).catch((e) => realStderrWrite(`zfaas loader: ${formatError(e)}\n`));
    },
    () => chain.then(onEnd),
  );
}

// ------------------------------------------------------------------ run-once mode

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
  let fn;
  try {
    fn = await loadFunction(process.env.ZFAAS_DIR || process.cwd(), process.env.ZFAAS_HANDLER || null);
  } catch (e) {
    return fail(e instanceof NoHandler ? 2 : 1, e instanceof NoHandler ? `zfaas: ${e.message}` : formatError(e));
  }
  let result;
  try {
    result = toResult(await invoke(fn, params, 1));
  } catch (e) {
    return fail(1, formatError(e));
  }
  // The platform keeps the first 6 MiB of a result: one character more tells it there was more.
  if (result.length > RESULT_LIMIT + 1) result = result.slice(0, RESULT_LIMIT + 1);
  realStdoutWrite(result, () => process.exit(0));
}

if (process.argv.slice(2).includes('--once')) once();
else serve();
