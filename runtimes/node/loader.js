#!/usr/bin/env node
/*
 * zfaas node loader: keeps a function warm inside its container.
 *
 * Warm mode (default): JSON lines on stdin, JSON lines on stdout, one message a line.
 *   {"op":"load","dir":"/ws","handler":null|"file.export","env":{}?} -> {"op":"loaded","ok":true}
 *                                                           | {"op":"loaded","ok":false,"error":"..."}
 *   {"op":"call","id":N,"params":<json>} -> {"op":"result","id":N,"ok":true,"result":"<str>","logs":"..."}
 *                                         | {"op":"result","id":N,"ok":false,"error":"...","logs":"..."}
 *     A result longer than RESULT_LIMIT characters is cut there and the reply says "truncated":true;
 *     a call that leaves processes running in the container says how many in "stray":N.
 *   {"op":"ping"}                        -> {"op":"pong"}
 *   anything else                        -> {"op":"error","error":"...","id":<id if any>}
 * Calls run one at a time, in order. What the function writes (console.*, process.stdout/stderr)
 * during a call is captured into "logs"; between calls it goes to stderr; never to the protocol.
 *
 * Run-once mode (`loader.js --once`, the `none` policy): function dir = $ZFAAS_DIR or the cwd,
 * handler = $ZFAAS_HANDLER if set; params = all of stdin (else $ZFAAS_PARAMS, else {}).
 * Prints the result string to stdout (no newline added) and exits 0; the function's output goes to
 * stderr; an exception prints the stack to stderr and exits 1; no handler file exits 2.
 *
 * Entry: handler "FILE.EXPORT" (last dot separates; FILE may hold slashes) -> FILE(.js|.cjs|.mjs)
 * and that export; else package.json "main", else index.js. Exports: module.exports = fn,
 * exports.handler, exports.main, ESM default. Handlers of arity 2 get a Lambda-like context,
 * of arity 3 also a callback. No dependencies; Node 18+.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { pathToFileURL } = require('url');

const LOG_LIMIT = 64 * 1024;
const RESULT_LIMIT = 6 * 1024 * 1024; // as the per-call path keeps (common/docker.ts)
const ERR_LIMIT = 8 * 1024;
const LOADER_FILE = __filename;

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
  const timeout = Number(process.env.ZFAAS_TIMEOUT || 30) * 1000;
  const start = Date.now();
  return {
    awsRequestId: String(id),
    requestId: String(id),
    functionName: process.env.ZFAAS_FUNCTION || '',
    functionVersion: process.env.ZFAAS_FUNCTION_VERSION || '',
    memoryLimitInMB: process.env.ZFAAS_MEMORY || '',
    getRemainingTimeInMillis: () => Math.max(0, timeout - (Date.now() - start)),
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
      .filter((l) => !l.includes(LOADER_FILE) && !/\(node:internal|at node:internal|at new Promise \(<anonymous>\)/.test(l))
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
function strayProcesses() {
  try {
    let n = 0;
    for (const name of fs.readdirSync('/proc')) {
      if (name.charCodeAt(0) >= 48 && name.charCodeAt(0) <= 57 && name !== '1' && name !== String(process.pid)) n++;
    }
    return n;
  } catch (_) {
    return 0;
  }
}

function strayError(e) {
  if (current) current.reject(e);
  else realStderrWrite(`zfaas loader: uncaught error outside a call: ${formatError(e)}\n`);
}

// ------------------------------------------------------------------ warm mode

function serve() {
  redirectOutput(false);
  process.on('uncaughtException', strayError);
  process.on('unhandledRejection', (r) => strayError(r instanceof Error ? r : new Error('unhandled rejection: ' + formatError(r))));
  const send = (msg) => realStdoutWrite(JSON.stringify(msg) + '\n');

  let fn = null;
  let chain = Promise.resolve();
  const handle = async (msg) => {
    const op = msg.op;
    if (op === 'ping') {
      send({ op: 'pong' });
    } else if (op === 'load') {
      process.env.ZFAAS_PARAMS = '{}';
      // A stem cell learns its function (and the function's environment) only when it is given one.
      if (msg.env && typeof msg.env === 'object') for (const [k, v] of Object.entries(msg.env)) process.env[k] = String(v);
      try {
        fn = await loadFunction(msg.dir || '/ws', msg.handler || null);
        send({ op: 'loaded', ok: true });
      } catch (e) {
        fn = null;
        send({ op: 'loaded', ok: false, error: e instanceof NoHandler ? e.message : formatError(e) });
      }
    } else if (op === 'call') {
      const id = msg.id;
      if (!fn) {
        send({ op: 'result', id, ok: false, error: 'no function loaded', logs: '' });
        return;
      }
      const params = msg.params === undefined ? null : msg.params;
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
      const stray = strayProcesses();
      if (stray > 0) reply.stray = stray;
      send(reply);
    } else {
      const reply = { op: 'error', error: `unknown op ${JSON.stringify(op)}` };
      if (msg.id !== undefined) reply.id = msg.id;
      send(reply);
    }
  };

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  rl.on('line', (line) => {
    line = line.trim();
    if (!line) return;
    let msg;
    try {
      msg = JSON.parse(line);
      if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('message is not an object');
    } catch (e) {
      const text = `bad message: ${e.message}`;
      chain = chain.then(() => send({ op: 'error', error: text }));
      return;
    }
    chain = chain.then(() => handle(msg)).catch((e) => realStderrWrite(`zfaas loader: ${formatError(e)}\n`));
  });
  rl.on('close', () => {
    chain.then(() => process.exit(0));
  });
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
