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
